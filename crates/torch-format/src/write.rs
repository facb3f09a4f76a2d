//! Writing a state dict as `torch.save` does (zip format, pickle protocol 2): an
//! `OrderedDict` of `_rebuild_tensor_v2` over one typed storage per tensor, which
//! `torch.load(f, weights_only=True)` accepts. Written to a temp file, flushed, and renamed.

use crate::{fail, in_file, zip, Tensor};
use maskfr_core::Result;
use std::path::Path;

/// Pickle opcodes used here (the names of Python's `pickletools`).
const PROTO: u8 = 0x80;
const GLOBAL: u8 = b'c';
const EMPTY_TUPLE: u8 = b')';
const REDUCE: u8 = b'R';
const MARK: u8 = b'(';
const TUPLE: u8 = b't';
const SETITEMS: u8 = b'u';
const BINUNICODE: u8 = b'X';
const BININT: u8 = b'J';
const LONG1: u8 = 0x8a;
const NEWFALSE: u8 = 0x89;
const BINPERSID: u8 = b'Q';
const STOP: u8 = b'.';

struct Pickle(Vec<u8>);

impl Pickle {
    fn op(&mut self, op: u8) -> &mut Self {
        self.0.push(op);
        self
    }
    fn global(&mut self, module: &str, name: &str) -> &mut Self {
        self.0.push(GLOBAL);
        self.0.extend(format!("{module}\n{name}\n").as_bytes());
        self
    }
    fn str(&mut self, s: &str) -> &mut Self {
        self.0.push(BINUNICODE);
        self.0.extend((s.len() as u32).to_le_bytes());
        self.0.extend(s.as_bytes());
        self
    }
    fn int(&mut self, v: u64) -> &mut Self {
        if v <= i32::MAX as u64 {
            self.0.push(BININT);
            self.0.extend((v as i32).to_le_bytes());
        } else {
            // 8 bytes of two's complement: v < 2^63 keeps the sign bit clear
            self.0.extend([LONG1, 8]);
            self.0.extend(v.to_le_bytes());
        }
        self
    }
    fn ints(&mut self, vs: &[u64]) -> &mut Self {
        self.op(MARK);
        vs.iter().for_each(|&v| {
            self.int(v);
        });
        self.op(TUPLE)
    }
    fn ordered_dict(&mut self) -> &mut Self {
        self.global("collections", "OrderedDict").op(EMPTY_TUPLE).op(REDUCE)
    }
}

/// Writes `tensors` (contiguous, little-endian) as a `torch.save`d state dict to `path`.
pub fn write<D: AsRef<[u8]>>(path: &Path, tensors: &[Tensor<D>]) -> Result<()> {
    write_file(path, tensors).map_err(|e| in_file(path, e))
}

fn write_file<D: AsRef<[u8]>>(path: &Path, tensors: &[Tensor<D>]) -> Result<()> {
    // torch names the archive's folder after the file
    let archive =
        path.file_stem().and_then(|s| s.to_str()).filter(|s| !s.is_empty() && s.is_ascii()).unwrap_or("archive");
    let mut p = Pickle(vec![PROTO, 2]);
    p.ordered_dict().op(MARK);
    for (key, t) in tensors.iter().enumerate() {
        let numel = t.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        let bytes = t.data.as_ref().len();
        if numel.and_then(|n| n.checked_mul(t.dtype.size())) != Some(bytes as u64) {
            return Err(fail(format!("'{}': {bytes} bytes for a {} {:?} tensor", t.name, t.dtype.name(), t.shape)));
        }
        let mut stride: Vec<u64> = vec![1; t.shape.len()];
        for i in (0..t.shape.len().saturating_sub(1)).rev() {
            stride[i] = stride[i + 1] * t.shape[i + 1];
        }
        p.str(&t.name).global("torch._utils", "_rebuild_tensor_v2").op(MARK);
        p.op(MARK)
            .str("storage")
            .global("torch", t.dtype.storage())
            .str(&key.to_string())
            .str("cpu")
            .int(numel.unwrap())
            .op(TUPLE)
            .op(BINPERSID);
        p.int(0).ints(&t.shape).ints(&stride).op(NEWFALSE).ordered_dict().op(TUPLE).op(REDUCE);
    }
    p.op(SETITEMS).op(STOP);
    let mut entries: Vec<(String, &[u8])> =
        vec![(format!("{archive}/data.pkl"), &p.0), (format!("{archive}/byteorder"), b"little")];
    entries.extend(tensors.iter().enumerate().map(|(key, t)| (format!("{archive}/data/{key}"), t.data.as_ref())));
    entries.push((format!("{archive}/version"), b"3\n"));
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|s| s.to_str()).unwrap_or("out"),
        std::process::id()
    ));
    let out = std::fs::File::create(&tmp).map_err(|e| fail(format!("cannot create {}: {e}", tmp.display())))?;
    let written = zip::write(out, &entries).and_then(|_| {
        maskfr_core::durable::rename_synced(&tmp, path).map_err(|e| fail(format!("renaming {}: {e}", tmp.display())))
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}
