//! MXNet RecordIO as InsightFace uses it, byte-exact with dmlc-core's writer.
//!
//! A record: magic `0xced7230a` (u32 LE), a length word (upper 3 bits: continuation flag,
//! lower 29: length), the data, zero padding to 4 bytes. The writer splits a payload at every
//! 4-aligned occurrence of the magic (flags 1 start, 2 middle, 3 end; the magic itself is
//! dropped and re-inserted by the reader). A payload starts with IRHeader `IfQQ`
//! (flag u32, label f32, id u64, id2 u64), then `flag` f32 labels if flag > 0, then the
//! encoded image. `.idx` lines are `key\toffset`. An image record may carry its face's five
//! landmarks as 11 labels: the identity, then x1, y1, …, x5, y5 (insightface's readers take
//! `label[0]` as the identity, so such a `.rec` trains there unchanged).

use crate::align::{check_landmarks, Point};
use crate::{err, Error, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub const MAGIC: u32 = 0xced7_230a;
const LEN_MASK: u32 = (1 << 29) - 1;
pub const HEADER_BYTES: usize = 24;

/// The IRHeader of a record, with its extra labels when `flag > 0`.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub flag: u32,
    pub label: f32,
    pub id: u64,
    pub id2: u64,
    /// `flag` labels stored after the header (MXNet then writes `label = 0`).
    pub labels: Vec<f32>,
}

impl Header {
    /// A header with one scalar label.
    pub fn scalar(label: f32, id: u64) -> Header {
        Header { flag: 0, label, id, id2: 0, labels: Vec::new() }
    }
    /// A header with a vector of labels (as `mxnet.recordio.pack` writes one).
    pub fn vector(labels: Vec<f32>, id: u64) -> Header {
        Header { flag: labels.len() as u32, label: 0.0, id, id2: 0, labels }
    }
    /// An image's header: its identity, with its five landmarks when it has them.
    pub fn image(label: f32, landmarks: Option<&[Point; 5]>, id: u64) -> Header {
        match landmarks {
            None => Header::scalar(label, id),
            Some(l) => {
                Header::vector(std::iter::once(label).chain(l.iter().flatten().map(|&v| v as f32)).collect(), id)
            }
        }
    }
    /// The identity: the first extra label when there are any, as insightface reads it.
    pub fn identity(&self) -> f32 {
        self.labels.first().copied().unwrap_or(self.label)
    }
    /// An image record's five landmarks: none with 0 or 1 labels, the 10 after the identity
    /// with 11; any other count, or landmarks not finite or degenerate, is an error naming
    /// the record (`what`).
    pub fn landmarks(&self, what: &str) -> Result<Option<[Point; 5]>> {
        match self.labels.len() {
            0 | 1 => Ok(None),
            LANDMARK_LABELS => {
                let l = &self.labels[1..];
                let pts = [0, 1, 2, 3, 4].map(|i| [l[2 * i] as f64, l[2 * i + 1] as f64]);
                check_landmarks(&pts, what)?;
                Ok(Some(pts))
            }
            n => err(format!(
                "{what}: {n} labels in the IRHeader: an image has 1 (its identity) or {LANDMARK_LABELS} (its identity and five landmarks x1, y1, …, x5, y5)"
            )),
        }
    }
}

/// Labels of an image record with landmarks: the identity and 10 coordinates.
pub const LANDMARK_LABELS: usize = 11;

/// `header ‖ labels ‖ body`, as `mxnet.recordio.pack`.
pub fn pack(h: &Header, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_BYTES + 4 * h.labels.len() + body.len());
    out.extend_from_slice(&h.flag.to_le_bytes());
    out.extend_from_slice(&h.label.to_le_bytes());
    out.extend_from_slice(&h.id.to_le_bytes());
    out.extend_from_slice(&h.id2.to_le_bytes());
    h.labels.iter().for_each(|l| out.extend_from_slice(&l.to_le_bytes()));
    out.extend_from_slice(body);
    out
}

/// Splits a payload into its header and body; `what` names the record in errors.
pub fn unpack<'a>(payload: &'a [u8], what: &str) -> Result<(Header, &'a [u8])> {
    if payload.len() < HEADER_BYTES {
        return err(format!("{what}: {} bytes, shorter than the 24-byte IRHeader", payload.len()));
    }
    let u32_at = |i: usize| u32::from_le_bytes(payload[i..i + 4].try_into().unwrap());
    let u64_at = |i: usize| u64::from_le_bytes(payload[i..i + 8].try_into().unwrap());
    let flag = u32_at(0);
    let extra = 4 * flag as usize;
    if payload.len() < HEADER_BYTES + extra {
        return err(format!(
            "{what}: IRHeader flag {flag} announces {flag} labels but the record has {} bytes",
            payload.len()
        ));
    }
    let labels = (0..flag as usize).map(|k| f32::from_bits(u32_at(HEADER_BYTES + 4 * k))).collect();
    let h = Header { flag, label: f32::from_bits(u32_at(4)), id: u64_at(8), id2: u64_at(16), labels };
    Ok((h, &payload[HEADER_BYTES + extra..]))
}

/// Appends `payload` as one logical record in dmlc-core's framing.
pub fn frame(payload: &[u8], out: &mut Vec<u8>) -> Result<()> {
    if payload.len() >= 1 << 29 {
        return err(format!("recordio: a {}-byte record exceeds the format's 2^29-byte limit", payload.len()));
    }
    let magic = MAGIC.to_le_bytes();
    let mut start = 0;
    let part = |out: &mut Vec<u8>, flag: u32, bytes: &[u8]| {
        out.extend_from_slice(&magic);
        out.extend_from_slice(&((flag << 29) | bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(bytes);
    };
    for i in (0..payload.len() / 4 * 4).step_by(4) {
        if payload[i..i + 4] == magic {
            part(out, if start == 0 { 1 } else { 2 }, &payload[start..i]);
            start = i + 4;
        }
    }
    part(out, if start == 0 { 0 } else { 3 }, &payload[start..]);
    out.resize(out.len() + (4 - payload.len() % 4) % 4, 0);
    Ok(())
}

/// A `.rec` file read with positional reads (shareable across threads), indexed by its
/// `.idx` when there is one, else by one sequential scan.
pub struct RecordFile {
    path: PathBuf,
    file: File,
    len: u64,
    /// (key, offset) of every record, in file order.
    index: Vec<(u64, u64)>,
    /// The index sorted by key (stable: a repeated key finds its first record), or None where
    /// the file's order already is (the usual case): a key is found in O(log n), not by a
    /// scan of a million entries per read.
    by_key: Option<Vec<(u64, u64)>>,
}

impl RecordFile {
    pub fn open(rec: &Path, idx: Option<&Path>) -> Result<RecordFile> {
        let file = File::open(rec).map_err(|e| Error(format!("{}: cannot open ({e})", rec.display())))?;
        let len = file.metadata().map_err(|e| Error(format!("{}: {e}", rec.display())))?.len();
        let mut r = RecordFile { path: rec.to_path_buf(), file, len, index: Vec::new(), by_key: None };
        r.index = match idx {
            Some(p) => r.read_idx(p)?,
            None => r.scan()?,
        };
        if !r.index.windows(2).all(|w| w[0].0 < w[1].0) {
            let mut sorted = r.index.clone();
            sorted.sort_by_key(|&(k, _)| k);
            r.by_key = Some(sorted);
        }
        Ok(r)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// (key, offset) of every record.
    pub fn index(&self) -> &[(u64, u64)] {
        &self.index
    }

    fn read_idx(&self, idx: &Path) -> Result<Vec<(u64, u64)>> {
        let text = std::fs::read_to_string(idx).map_err(|e| Error(format!("{}: cannot read ({e})", idx.display())))?;
        let mut out = Vec::new();
        for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let bad = || Error(format!("{}: line {}: expected 'key<TAB>offset', got {line:?}", idx.display(), n + 1));
            let (k, o) = line.split_once('\t').ok_or_else(bad)?;
            let (key, off) = (k.trim().parse::<u64>().map_err(|_| bad())?, o.trim().parse::<u64>().map_err(|_| bad())?);
            // checked: an offset near 2^64 would wrap past the comparison
            if off.checked_add(8).is_none_or(|end| end > self.len) {
                return err(format!(
                    "{}: line {}: offset {off} is past the end of {} ({} bytes)",
                    idx.display(),
                    n + 1,
                    self.path.display(),
                    self.len
                ));
            }
            out.push((key, off));
        }
        Ok(out)
    }

    /// Offsets of every logical record, keys numbered from 0 in file order.
    fn scan(&self) -> Result<Vec<(u64, u64)>> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < self.len {
            let (_, next) = self.read_framed(at)?;
            out.push((out.len() as u64, at));
            at = next;
        }
        Ok(out)
    }

    fn read_exact(&self, at: u64, n: usize) -> Result<Vec<u8>> {
        if at.checked_add(n as u64).is_none_or(|end| end > self.len) {
            return err(format!(
                "{}: record at offset {at}: truncated: needs {n} bytes, the file ends at {}",
                self.path.display(),
                self.len
            ));
        }
        let mut buf = vec![0u8; n];
        self.file
            .read_exact_at(&mut buf, at)
            .map_err(|e| Error(format!("{}: offset {at}: {e}", self.path.display())))?;
        Ok(buf)
    }

    /// The payload of the logical record starting at `at`, and the offset after it.
    fn read_framed(&self, mut at: u64) -> Result<(Vec<u8>, u64)> {
        let start = at;
        let mut payload = Vec::new();
        loop {
            let head = self.read_exact(at, 8)?;
            let magic = u32::from_le_bytes(head[0..4].try_into().unwrap());
            if magic != MAGIC {
                return err(format!(
                    "{}: offset {at}: bad magic {magic:#010x} (expected {MAGIC:#010x})",
                    self.path.display()
                ));
            }
            let word = u32::from_le_bytes(head[4..8].try_into().unwrap());
            let (flag, n) = (word >> 29, (word & LEN_MASK) as usize);
            let first = at == start;
            if first != (flag == 0 || flag == 1) || flag > 3 {
                let want = if first { "0 or 1 (a record's first part)" } else { "2 or 3 (a continuation)" };
                return err(format!(
                    "{}: offset {at}: continuation flag {flag} where {want} was expected",
                    self.path.display()
                ));
            }
            if !first {
                payload.extend_from_slice(&MAGIC.to_le_bytes()); // the writer dropped it at the split
            }
            payload.extend(self.read_exact(at + 8, n)?);
            at += 8 + n.div_ceil(4) as u64 * 4;
            if flag == 0 || flag == 3 {
                return Ok((payload, at.min(self.len)));
            }
        }
    }

    /// The payload of the record at file offset `at`.
    pub fn read_at(&self, at: u64) -> Result<Vec<u8>> {
        self.read_framed(at).map(|(p, _)| p)
    }

    fn offset(&self, key: u64) -> Option<u64> {
        let sorted = self.by_key.as_deref().unwrap_or(&self.index);
        sorted.get(sorted.partition_point(|&(k, _)| k < key)).filter(|(k, _)| *k == key).map(|(_, o)| *o)
    }

    pub fn has_key(&self, key: u64) -> bool {
        self.offset(key).is_some()
    }

    /// The payload of the record with `key`.
    pub fn read_key(&self, key: u64) -> Result<Vec<u8>> {
        match self.offset(key) {
            Some(o) => self.read_at(o),
            None => err(format!("{}: no record with key {key}", self.path.display())),
        }
    }
}

/// InsightFace's layout of a `.rec`: record 0 with flag 2 holds the image range `[1, a)` and
/// the identity range `[a, b)`, each identity record its `[start, end)` image keys. Without
/// that header every record is an image labelled by its IRHeader.
pub struct Layout {
    /// Image record keys, in file order.
    pub images: Vec<u64>,
    /// Each identity's `[start, end)` image keys (label i is identity i), or None.
    pub identities: Option<Vec<(u64, u64)>>,
}

impl Layout {
    pub fn of(file: &RecordFile) -> Result<Layout> {
        let what = |k: u64| format!("{}: record {k}", file.path().display());
        // Ranges are f32 labels in the file: each must be a whole number, and in order, before
        // it is used as a key range (a crafted 1e30 would make a re-pack try 2^64 keys).
        let ranges = |k: u64| -> Result<Option<(u64, u64)>> {
            let payload = file.read_key(k)?;
            let (h, _) = unpack(&payload, &what(k))?;
            if h.labels.len() < 2 {
                return Ok(None);
            }
            let key = |v: f32| (v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < 2f32.powi(53)).then_some(v as u64);
            match (key(h.labels[0]), key(h.labels[1])) {
                (Some(s), Some(e)) if s <= e => Ok(Some((s, e))),
                _ => {
                    err(format!("{}: the range [{}, {}) is not one of record keys", what(k), h.labels[0], h.labels[1]))
                }
            }
        };
        let keys = file.index().iter().map(|&(k, _)| k);
        let head = if file.has_key(0) { ranges(0)? } else { None };
        let Some((a, b)) = head else {
            return Ok(Layout { images: keys.collect(), identities: None });
        };
        if a < 1 {
            return err(format!("{}: the image range [1, {a}) is empty or reversed", what(0)));
        }
        let images = keys.clone().filter(|k| (1..a).contains(k)).collect();
        let identities = keys
            .filter(|k| (a..b).contains(k))
            .map(|k| {
                let (s, e) = ranges(k)?
                    .ok_or_else(|| Error(format!("{}: an identity record without its image range", what(k))))?;
                if s < 1 || e > a {
                    return err(format!("{}: identity images [{s}, {e}) outside the image range [1, {a})", what(k)));
                }
                Ok((s, e))
            })
            .collect::<Result<_>>()?;
        Ok(Layout { images, identities: Some(identities) })
    }
}

/// Writes `OUT.rec` and `OUT.idx` (keys in the order given), each to a temp file renamed on
/// [`RecordWriter::finish`]: an interrupted pack leaves no half-written dataset, and a writer
/// dropped unfinished removes its temp file.
pub struct RecordWriter {
    rec: PathBuf,
    idx: PathBuf,
    out: BufWriter<File>,
    /// The `.idx`, written as the records go (not held: 42M lines are most of a GiB).
    lines: BufWriter<File>,
    offset: u64,
    frame: Vec<u8>,
    /// The framed length of the first record, which [`RecordWriter::rewrite_first`] replaces.
    first_len: usize,
}

fn tmp(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(format!(".{}.tmp", std::process::id()));
    PathBuf::from(s)
}

impl RecordWriter {
    pub fn create(rec: &Path, idx: &Path) -> Result<RecordWriter> {
        let open = |p: &Path| {
            File::create(tmp(p)).map(BufWriter::new).map_err(|e| Error(format!("{}: cannot create ({e})", p.display())))
        };
        let out = open(rec)?;
        Ok(RecordWriter {
            rec: rec.into(),
            idx: idx.into(),
            out,
            lines: open(idx)?,
            offset: 0,
            frame: Vec::new(),
            first_len: 0,
        })
    }

    pub fn write(&mut self, key: u64, payload: &[u8]) -> Result<()> {
        self.frame.clear();
        frame(payload, &mut self.frame)?;
        if self.offset == 0 {
            self.first_len = self.frame.len();
        }
        self.out.write_all(&self.frame).map_err(|e| Error(format!("{}: write failed ({e})", self.rec.display())))?;
        writeln!(self.lines, "{key}\t{}", self.offset)
            .map_err(|e| Error(format!("{}: write failed ({e})", self.idx.display())))?;
        self.offset += self.frame.len() as u64;
        Ok(())
    }

    /// Replaces the first record's payload by one of the same framed length: a streamed
    /// dataset's header, whose counts are known only at the end.
    pub fn rewrite_first(&mut self, payload: &[u8]) -> Result<()> {
        self.frame.clear();
        frame(payload, &mut self.frame)?;
        if self.offset == 0 || self.frame.len() != self.first_len {
            return err(format!(
                "{}: the first record is {} bytes framed, its replacement {}",
                self.rec.display(),
                self.first_len,
                self.frame.len()
            ));
        }
        let fail = |e: std::io::Error| Error(format!("{}: write failed ({e})", self.rec.display()));
        self.out.flush().map_err(fail)?;
        self.out.get_ref().write_all_at(&self.frame, 0).map_err(fail)
    }

    /// Flushes both files to the disk before renaming them, then their folders: a power loss
    /// leaves the dataset whole or absent, never a name over a partial file.
    pub fn finish(mut self) -> Result<()> {
        let fail = |p: &Path, e: std::io::Error| Error(format!("{}: {e}", p.display()));
        self.out.flush().and_then(|_| self.out.get_ref().sync_all()).map_err(|e| fail(&self.rec, e))?;
        self.lines.flush().and_then(|_| self.lines.get_ref().sync_all()).map_err(|e| fail(&self.idx, e))?;
        for p in [&self.rec, &self.idx] {
            maskfr_core::durable::rename_synced(&tmp(p), p).map_err(|e| fail(p, e))?;
        }
        Ok(())
    }
}

impl Drop for RecordWriter {
    /// After `finish` the temp names are gone (renamed); otherwise the partial files go.
    fn drop(&mut self) {
        for p in [&self.rec, &self.idx] {
            let _ = std::fs::remove_file(tmp(p));
        }
    }
}
