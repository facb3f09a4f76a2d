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

    pub fn finish(mut self) -> std::io::Result<()> {
        let mut out = self.out.take().expect("AtomicFile finished twice");
        out.flush()?;
        out.get_ref().sync_all()?;
        rename_synced(&self.tmp, &self.path)
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.out.is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
