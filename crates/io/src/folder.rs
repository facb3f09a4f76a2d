//! Image folders: one sub-folder per identity (sorted names → labels 0, 1, …), JPEG/PNG files
//! inside. The index of a scanned folder is compact (every file name in one byte buffer): 42
//! million images are about 20 bytes each here, not a string object each on the JS heap.

use crate::image_codec::MAX_FILE_BYTES;
use crate::loader::{Sample, Source};
use crate::{err, Error, Result};
use rayon::prelude::*;
use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// An image file's bytes, its size checked before anything is read (a 10 GB file named .jpg
/// is refused, naming it) and the read bounded too (the file may grow meanwhile).
pub fn read_image_file(p: &Path) -> Result<Vec<u8>> {
    let fail = |e: std::io::Error| Error(format!("{}: cannot read ({e})", p.display()));
    let f = std::fs::File::open(p).map_err(fail)?;
    let size = f.metadata().map_err(fail)?.len();
    let too_big = |size: u64| {
        Error(format!("{}: {size} bytes, more than an image file may have ({} MiB)", p.display(), MAX_FILE_BYTES >> 20))
    };
    if size > MAX_FILE_BYTES {
        return Err(too_big(size));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(fail)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

fn list(dir: &Path) -> Result<Vec<(OsString, bool)>> {
    let fail = |e: std::io::Error| Error(format!("{}: cannot list ({e})", dir.display()));
    std::fs::read_dir(dir)
        .map_err(fail)?
        .map(|e| {
            let e = e.map_err(fail)?;
            let t = e.file_type().map_err(fail)?;
            // A linked identity folder counts (a subset made with `ln -s` keeps its labels);
            // a dangling link is named.
            let dir = if t.is_symlink() {
                std::fs::metadata(e.path())
                    .map_err(|x| Error(format!("{}: a link to nothing readable ({x})", e.path().display())))?
                    .is_dir()
            } else {
                t.is_dir()
            };
            Ok((e.file_name(), dir))
        })
        .collect()
}

/// The identity folders of `root`, sorted (label i is the i-th).
pub fn identity_folders(root: &Path) -> Result<Vec<OsString>> {
    if !root.is_dir() {
        return err(format!("{}: not a folder of identity folders", root.display()));
    }
    let mut ids: Vec<OsString> = list(root)?.into_iter().filter(|(_, dir)| *dir).map(|(n, _)| n).collect();
    if ids.is_empty() {
        return err(format!("{}: no identity folders (expected one sub-folder per identity)", root.display()));
    }
    ids.sort();
    Ok(ids)
}

fn is_image(name: &OsStr) -> bool {
    let n = name.as_bytes().to_ascii_lowercase();
    [&b".jpg"[..], b".jpeg", b".png"].iter().any(|ext| n.ends_with(ext))
}

/// The image files of one identity folder, sorted; a folder without any is an error.
pub fn images_in(dir: &Path) -> Result<Vec<OsString>> {
    let mut names: Vec<OsString> = list(dir)?.into_iter().filter(|(n, d)| !d && is_image(n)).map(|(n, _)| n).collect();
    if names.is_empty() {
        return err(format!("{}: identity folder without images (.jpg, .jpeg, .png)", dir.display()));
    }
    names.sort();
    Ok(names)
}

/// `f` of every identity folder, in parallel (a network file system answers each listing
/// slowly, but many at once). An error is the first failing folder's in sorted order, not
/// whichever a thread met first (rayon's short-circuit): the same input names the same one.
pub fn per_identity<T: Send>(ids: &[OsString], f: impl Fn(&OsString) -> Result<T> + Sync + Send) -> Result<Vec<T>> {
    let all: Vec<Result<T>> = ids.par_iter().map(f).collect();
    all.into_iter().collect()
}

/// A scanned image folder: sample i is an image file and its identity's label.
pub struct FolderIndex {
    root: PathBuf,
    identities: Vec<OsString>,
    /// Identity l's images are `[starts[l], starts[l + 1])`; one more entry than identities.
    starts: Vec<u64>,
    /// Every file name, concatenated; name i ends at `ends[i]`.
    names: Vec<u8>,
    ends: Vec<u64>,
}

impl FolderIndex {
    /// Lists every identity folder, in parallel.
    pub fn scan(root: &Path) -> Result<FolderIndex> {
        let identities = identity_folders(root)?;
        let listed: Vec<(Vec<u8>, Vec<u32>)> = per_identity(&identities, |id| {
            let names = images_in(&root.join(id))?;
            let lens = names.iter().map(|n| n.len() as u32).collect();
            Ok((names.into_iter().flat_map(OsString::into_vec).collect(), lens))
        })?;
        let mut ix = FolderIndex { root: root.into(), identities, starts: vec![0], names: vec![], ends: vec![] };
        for (bytes, lens) in listed {
            ix.names.extend_from_slice(&bytes);
            for l in lens {
                let end = ix.ends.last().copied().unwrap_or(0) + l as u64;
                ix.ends.push(end);
            }
            ix.starts.push(ix.ends.len() as u64);
        }
        Ok(ix)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn identities(&self) -> usize {
        self.identities.len()
    }

    /// Identity `label`'s folder name.
    pub fn identity(&self, label: usize) -> &OsStr {
        &self.identities[label]
    }

    pub fn label(&self, i: usize) -> usize {
        self.starts.partition_point(|&s| s <= i as u64) - 1
    }

    pub fn path(&self, i: usize) -> PathBuf {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        let name = OsStr::from_bytes(&self.names[start..self.ends[i] as usize]);
        self.root.join(&self.identities[self.label(i)]).join(name)
    }
}

impl Source for FolderIndex {
    fn len(&self) -> usize {
        self.ends.len()
    }
    fn read(&self, i: usize) -> Result<Sample> {
        Ok(Sample { label: self.label(i) as i32, bytes: read_image_file(&self.path(i))?, landmarks: None })
    }
    fn describe(&self, i: usize) -> String {
        self.path(i).display().to_string()
    }
    fn name(&self) -> String {
        self.root.display().to_string()
    }
}
