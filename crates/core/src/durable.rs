//! The last step of an atomic write: a temp file already flushed to the disk is renamed over
//! its target, then the folder is flushed, so the rename itself survives a power loss (else
//! the new name may come back pointing at nothing after a crash).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Renames `tmp` (already fsynced) to `target` and fsyncs `target`'s folder.
pub fn rename_synced(tmp: &Path, target: &Path) -> std::io::Result<()> {
    std::fs::rename(tmp, target)?;
    let dir = target.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    File::open(dir)?.sync_all()
}

/// A file written through a buffer to `PATH.<pid>.tmp`, renamed into place by `finish`
/// (flushed, fsynced, renamed, its folder fsynced); dropped unfinished, the temp file goes.
pub struct AtomicFile {
    path: PathBuf,
    tmp: PathBuf,
    out: Option<BufWriter<File>>,
}

impl AtomicFile {
    pub fn create(path: &Path) -> std::io::Result<AtomicFile> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".{}.tmp", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let _ = std::fs::remove_file(&tmp); // a stale one, or a link planted there: never written through
        let file = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        Ok(AtomicFile { path: path.to_path_buf(), tmp, out: Some(BufWriter::new(file)) })
    }

    /// The name it will have.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.out.as_mut().expect("AtomicFile written after finish").write_all(bytes)
    }

    /// Flushes, fsyncs and renames it into place; on failure the temp file goes too.
    pub fn finish(mut self) -> std::io::Result<()> {
        let mut out = self.out.take().expect("AtomicFile finished twice");
        let done =
            out.flush().and_then(|_| out.get_ref().sync_all()).and_then(|_| rename_synced(&self.tmp, &self.path));
        if done.is_err() {
            let _ = std::fs::remove_file(&self.tmp);
        }
        done
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.out.is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::AtomicFile;

    #[test]
    fn appears_whole_on_finish_and_not_at_all_when_dropped_or_failed() {
        let dir = std::env::temp_dir().join(format!("maskfr-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.txt");
        let mut f = AtomicFile::create(&path).unwrap();
        f.write_all(b"half").unwrap();
        assert!(!path.exists(), "nothing at the name before finish");
        drop(f);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "a dropped file leaves nothing");
        let mut f = AtomicFile::create(&path).unwrap();
        f.write_all(b"whole").unwrap();
        f.finish().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"whole");
        // A rename onto a non-empty folder fails: the temp file must not stay behind.
        let blocked = dir.join("blocked");
        std::fs::create_dir_all(blocked.join("inside")).unwrap();
        let mut f = AtomicFile::create(&blocked).unwrap();
        f.write_all(b"x").unwrap();
        assert!(f.finish().is_err());
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 2, "only out.txt and blocked/: {left:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
