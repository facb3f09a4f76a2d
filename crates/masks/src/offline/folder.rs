//! An image folder masked into a folder: every file under IN at the same relative path under
//! OUT — JPEG/PNG images masked (on their landmarks from the user's file, else as aligned
//! faces), other files (pair lists, metadata) copied —
//! walked in sorted order, one folder listed at a time. OUT is built as `OUT.<pid>.tmp` (every
//! file and folder flushed to the disk) and renamed into place whole.

use super::{stream, with_suffix, Engine, Masked, OfflineConfig, Tally};
use crate::geometry::Point;
use crate::offline::sidecar::Key;
use maskfr_core::{Error, Result};
use maskfr_io::align::check_landmarks;
use maskfr_io::folder::read_image_file;
use maskfr_io::pack::LandmarkSet;
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

/// Folders nested deeper than this are refused (a link loop would never end).
const MAX_DEPTH: usize = 64;

fn is_image(name: &Path) -> bool {
    let n = name.as_os_str().as_bytes().to_ascii_lowercase();
    [&b".jpg"[..], b".jpeg", b".png"].iter().any(|ext| n.ends_with(ext))
}

/// Called with each sub-folder's relative path as the walk enters it.
type OnDir<'a> = Box<dyn FnMut(&Path) -> Result<()> + 'a>;

/// The files under a folder, depth first in sorted name order, as paths relative to it;
/// links are followed. `on_dir` sees each sub-folder before any file in it.
struct Walk<'a> {
    root: PathBuf,
    stack: Vec<(PathBuf, std::vec::IntoIter<(OsString, bool)>)>,
    on_dir: OnDir<'a>,
}

fn list(dir: &Path) -> Result<Vec<(OsString, bool)>> {
    let fail = |e: std::io::Error| Error(format!("{}: cannot list ({e})", dir.display()));
    let mut out = vec![];
    for e in std::fs::read_dir(dir).map_err(fail)? {
        let e = e.map_err(fail)?;
        let m = std::fs::metadata(e.path())
            .map_err(|x| Error(format!("{}: cannot read ({x}; a dangling link?)", e.path().display())))?;
        if m.is_dir() || m.is_file() {
            out.push((e.file_name(), m.is_dir()));
        }
    }
    out.sort();
    Ok(out)
}

impl<'a> Walk<'a> {
    fn new(root: &Path, on_dir: impl FnMut(&Path) -> Result<()> + 'a) -> Result<Walk<'a>> {
        let top = list(root)?.into_iter();
        Ok(Walk { root: root.to_path_buf(), stack: vec![(PathBuf::new(), top)], on_dir: Box::new(on_dir) })
    }
}

impl Iterator for Walk<'_> {
    type Item = Result<PathBuf>;
    fn next(&mut self) -> Option<Result<PathBuf>> {
        loop {
            let depth = self.stack.len();
            let (dir, names) = self.stack.last_mut()?;
            let Some((name, is_dir)) = names.next() else {
                self.stack.pop();
                continue;
            };
            let rel = dir.join(&name);
            if !is_dir {
                return Some(Ok(rel));
            }
            if depth >= MAX_DEPTH {
                let msg =
                    format!("{}: folders nested over {MAX_DEPTH} deep (a link loop?)", self.root.join(&rel).display());
                return Some(Err(Error(msg)));
            }
            let listed = (self.on_dir)(&rel).and_then(|_| list(&self.root.join(&rel)));
            match listed {
                Ok(names) => self.stack.push((rel, names.into_iter())),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// The temp output folder, removed unless renamed into place.
struct TempDir(PathBuf, bool);

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.1 {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn sync_dir(p: &Path) -> Result<()> {
    std::fs::File::open(p).and_then(|f| f.sync_all()).map_err(|e| Error(format!("{}: {e}", p.display())))
}

/// Writes `bytes` to a new file at `p` (flushed to the disk later, by [`sync_file`]).
fn write_new(p: &Path, bytes: &[u8]) -> Result<()> {
    let fail = |e: std::io::Error| Error(format!("{}: cannot write ({e})", p.display()));
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(p).map_err(fail)?;
    f.write_all(bytes).map_err(fail)
}

/// Flushes a written file to the disk. Called by the writer after a whole chunk is written:
/// the first flush commits the file system's journal with the chunk's other files in it, so
/// theirs cost little (a flush per file as it is written was most of the time: 2.6 ms each).
fn sync_file(p: &Path) -> Result<()> {
    std::fs::File::open(p).and_then(|f| f.sync_all()).map_err(|e| Error(format!("{}: cannot flush ({e})", p.display())))
}

/// A file written (to flush), and the image's mask when it is one.
enum Done {
    Image(PathBuf, Option<PathBuf>, Masked),
    Copied(PathBuf),
}

/// An image's landmarks from the user's set (checked as `pack` checks them), or None without one.
fn landmarks_of(set: Option<&LandmarkSet>, rel: &Path, what: &str) -> Result<Option<[Point; 5]>> {
    let Some(set) = set else { return Ok(None) };
    let l = set
        .points
        .get(rel)
        .ok_or_else(|| Error(format!("{what}: no landmarks for {} in {}", rel.display(), set.file.display())))?;
    check_landmarks(l, &format!("{what} (landmarks in {})", set.file.display()))?;
    Ok(Some(*l))
}

pub(crate) fn run(input: &Path, out: &Path, engine: &Engine, tally: &mut Tally, cfg: &OfflineConfig) -> Result<u64> {
    // Counted first (the progress's total), walked again as the files are written.
    let mut total = 0u64;
    for f in Walk::new(input, |_| Ok(()))? {
        total += u64::from(is_image(&f?));
    }
    tally.progress.total.store(total, Ordering::Relaxed);
    let tmp = TempDir(with_suffix(out, &format!(".{}.tmp", std::process::id())), false);
    let _ = std::fs::remove_dir_all(&tmp.0); // a stale one of an earlier run with this pid
    std::fs::create_dir(&tmp.0).map_err(|e| Error(format!("{}: cannot create ({e})", tmp.0.display())))?;
    let mut dirs = vec![tmp.0.clone()];
    let mut ordinal = 0u64;
    let entries = Walk::new(input, |rel| {
        let d = tmp.0.join(rel);
        std::fs::create_dir(&d).map_err(|e| Error(format!("{}: cannot create ({e})", d.display())))?;
        dirs.push(d);
        Ok(())
    })?
    .map(|f| {
        f.map(|rel| {
            let image = is_image(&rel).then(|| {
                ordinal += 1;
                ordinal - 1
            });
            (rel, image)
        })
    });
    let mut copied = 0u64;
    stream(
        entries,
        cfg.threads,
        |(rel, image)| {
            let (src, dst) = (input.join(rel), tmp.0.join(rel));
            let Some(ordinal) = *image else {
                let bytes = std::fs::read(&src).map_err(|e| Error(format!("{}: cannot read ({e})", src.display())))?;
                write_new(&dst, &bytes)?;
                return Ok(Done::Copied(dst));
            };
            let m = match read_image_file(&src) {
                Ok(bytes) => {
                    let what = src.display().to_string();
                    engine.mask(bytes, &what, landmarks_of(cfg.landmarks.as_ref(), rel, &what), ordinal)
                }
                // Too big or unreadable: listed as bad, and nothing to copy.
                Err(e) => Masked { bytes: vec![], info: None, bad: Some(e.0) },
            };
            let written = m.bad.is_none() || !m.bytes.is_empty();
            if written {
                write_new(&dst, &m.bytes)?;
            }
            Ok(Done::Image(rel.clone(), written.then_some(dst), Masked { bytes: vec![], ..m }))
        },
        |d| match d {
            Done::Image(rel, written, m) => {
                written.as_deref().map_or(Ok(()), sync_file)?;
                let key = rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
                tally.image(&Key::Path(key), &m)
            }
            Done::Copied(dst) => {
                copied += 1;
                sync_file(&dst)
            }
        },
    )?;
    tally.check()?;
    dirs.iter().rev().try_for_each(|d| sync_dir(d))?;
    let mut tmp = tmp;
    if out.exists() {
        // --overwrite (checked before): the old folder moves aside, the new one takes its name.
        let old = with_suffix(out, &format!(".{}.old", std::process::id()));
        std::fs::rename(out, &old).map_err(|e| Error(format!("{}: cannot move aside ({e})", out.display())))?;
        maskfr_core::durable::rename_synced(&tmp.0, out).map_err(|e| Error(format!("{}: {e}", out.display())))?;
        tmp.1 = true;
        std::fs::remove_dir_all(&old).map_err(|e| Error(format!("{}: cannot remove ({e})", old.display())))?;
    } else {
        maskfr_core::durable::rename_synced(&tmp.0, out).map_err(|e| Error(format!("{}: {e}", out.display())))?;
        tmp.1 = true;
    }
    Ok(copied)
}
