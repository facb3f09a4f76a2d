//! What `maskfr mask` writes beside its output: the sidecar (`OUT.masks.jsonl`, a header line
//! then one line per input image saying which mask it got; format in the project notes'
//! sidecar.md) and the list of bad images. Each goes to a temp file renamed into place whole.

use crate::choices::MaskInfo;
use maskfr_core::durable::AtomicFile;
use maskfr_core::{Error, Result};
use std::path::Path;

/// `s` as a JSON string literal.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An image's key in the sidecar: a path relative to the input folder, or a number (a
/// record key, an index in a `.bin`).
#[derive(Clone, Debug, PartialEq)]
pub enum Key {
    Path(String),
    Number(u64),
}

impl Key {
    fn json(&self) -> String {
        match self {
            Key::Path(p) => json_string(p),
            Key::Number(n) => n.to_string(),
        }
    }
}

/// One sidecar line.
pub fn line(key: &Key, info: Option<&MaskInfo>) -> String {
    match info {
        None => {
            format!(r#"{{"key": {}, "synthesizer": null, "kind": null, "color": null, "pattern": null}}"#, key.json())
        }
        Some(m) => format!(
            r##"{{"key": {}, "synthesizer": "{}", "kind": {}, "color": "#{:02x}{:02x}{:02x}", "pattern": {}}}"##,
            key.json(),
            m.synthesizer.name(),
            json_string(m.kind),
            m.color[0],
            m.color[1],
            m.color[2],
            json_string(&m.pattern)
        ),
    }
}

/// A text file written line by line to a temp file, renamed into place by `finish`; dropped
/// unfinished, the temp file goes.
pub struct LineFile(AtomicFile);

impl LineFile {
    pub fn create(path: &Path) -> Result<LineFile> {
        AtomicFile::create(path).map(LineFile).map_err(|e| Error(format!("{}: cannot create ({e})", path.display())))
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    pub fn write(&mut self, line: &str) -> Result<()> {
        self.0
            .write_all(format!("{line}\n").as_bytes())
            .map_err(|e| Error(format!("{}: write failed ({e})", self.0.path().display())))
    }

    pub fn finish(self) -> Result<()> {
        let path = self.0.path().to_path_buf();
        self.0.finish().map_err(|e| Error(format!("{}: {e}", path.display())))
    }
}
