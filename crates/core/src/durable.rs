//! The last step of an atomic write: a temp file already flushed to the disk is renamed over
//! its target, then the folder is flushed, so the rename itself survives a power loss (else
//! the new name may come back pointing at nothing after a crash).

use std::fs::File;
use std::path::Path;

/// Renames `tmp` (already fsynced) to `target` and fsyncs `target`'s folder.
pub fn rename_synced(tmp: &Path, target: &Path) -> std::io::Result<()> {
    std::fs::rename(tmp, target)?;
    let dir = target.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    File::open(dir)?.sync_all()
}
