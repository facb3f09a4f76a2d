//! The zip container of `torch.save` (torch ≥ 1.6): stored (uncompressed) entries, data
//! 64-byte aligned. Only what that format needs: no compression, no encryption, one disk.
//! Every offset and size read from the file is checked against the file's length before it
//! is used, so an entry can never point outside the archive.

use crate::fail;
use maskfr_core::Result;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;

const LOCAL: u32 = 0x0403_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const END: u32 = 0x0605_4b50;
const END64: u32 = 0x0606_4b50;
const END64_LOCATOR: u32 = 0x0706_4b50;
const END_LEN: usize = 22;
/// Where an entry's data starts, as torch aligns it (so it can be memory-mapped).
const ALIGN: u64 = 64;
/// Bytes read (then checksummed) at once: small enough to stay in L2.
const CHUNK: usize = 256 << 10;
/// The extra-field id torch pads with to reach that alignment ("FB").
const PAD_ID: u16 = 0x4246;

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// One stored entry: where its bytes lie in the file.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub start: u64,
    pub size: u64,
    crc: u32,
}

pub struct Archive {
    file: File,
    entries: HashMap<String, Entry>,
}

impl Archive {
    /// Opens a zip whose entries are all stored; `Ok(None)` when the file is not a zip at all.
    pub fn open(file: File) -> Result<Option<Archive>> {
        let len = file.metadata().map_err(|e| fail(format!("cannot stat: {e}")))?.len();
        let mut head = [0u8; 4];
        if len < 4 || file.read_exact_at(&mut head, 0).is_err() || u32::from_le_bytes(head) != LOCAL {
            return Ok(None);
        }
        let tail_len = len.min((END_LEN + 0xFFFF + 20) as u64);
        let tail = read_vec(&file, len - tail_len, tail_len)?;
        let end = (0..=tail.len().saturating_sub(END_LEN))
            .rev()
            .find(|&i| u32_at(&tail, i) == END)
            .ok_or_else(|| fail("a zip without its end-of-directory record (truncated?)"))?;
        let (mut count, mut cd_size, mut cd_at) =
            (u16_at(&tail, end + 10) as u64, u32_at(&tail, end + 12) as u64, u32_at(&tail, end + 16) as u64);
        if count == 0xFFFF || cd_size == 0xFFFF_FFFF || cd_at == 0xFFFF_FFFF {
            // Zip64: the real figures sit in a record the locator just before `end` points to.
            if end < 20 || u32_at(&tail, end - 20) != END64_LOCATOR {
                return Err(fail("a zip64 archive without its locator"));
            }
            let at = u64_at(&tail, end - 12);
            let rec = read_vec(&file, at, 56)?;
            if u32_at(&rec, 0) != END64 {
                return Err(fail(format!("no zip64 end record at byte {at}")));
            }
            (count, cd_size, cd_at) = (u64_at(&rec, 32), u64_at(&rec, 40), u64_at(&rec, 48));
        }
        let cd = read_vec(&file, cd_at, cd_size)?;
        let mut entries = HashMap::new();
        let mut p = 0usize;
        for _ in 0..count {
            if p + 46 > cd.len() || u32_at(&cd, p) != CENTRAL {
                return Err(fail(format!("central directory entry at byte {} is garbled", cd_at + p as u64)));
            }
            let (method, crc) = (u16_at(&cd, p + 10), u32_at(&cd, p + 16));
            let (mut csize, mut size) = (u32_at(&cd, p + 20) as u64, u32_at(&cd, p + 24) as u64);
            let (nlen, xlen, clen) =
                (u16_at(&cd, p + 28) as usize, u16_at(&cd, p + 30) as usize, u16_at(&cd, p + 32) as usize);
            let mut local = u32_at(&cd, p + 42) as u64;
            let next = p + 46 + nlen + xlen + clen;
            if next > cd.len() {
                return Err(fail("central directory runs past its declared size"));
            }
            let name = String::from_utf8_lossy(&cd[p + 46..p + 46 + nlen]).into_owned();
            zip64_sizes(&cd[p + 46 + nlen..p + 46 + nlen + xlen], &mut size, &mut csize, &mut local);
            if method != 0 || csize != size {
                return Err(fail(format!("entry '{name}' is compressed (method {method}); torch.save stores entries")));
            }
            let lh = read_vec(&file, local, 30)?;
            if u32_at(&lh, 0) != LOCAL {
                return Err(fail(format!("entry '{name}': no local header at byte {local}")));
            }
            let start = local + 30 + u16_at(&lh, 26) as u64 + u16_at(&lh, 28) as u64;
            if start.checked_add(size).is_none_or(|e| e > len) {
                return Err(fail(format!(
                    "entry '{name}' ({size} bytes from byte {start}) runs past the end of the {len}-byte file"
                )));
            }
            entries.insert(name, Entry { start, size, crc });
            p = next;
        }
        Ok(Some(Archive { file, entries }))
    }

    pub fn entry(&self, name: &str) -> Option<Entry> {
        self.entries.get(name).copied()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Reads the whole entry into `out` (exactly `e.size` bytes) and checks its CRC-32, a
    /// chunk at a time while the chunk is still in cache.
    pub fn read_into(&self, name: &str, e: Entry, out: &mut [u8]) -> Result<()> {
        debug_assert_eq!(out.len() as u64, e.size);
        let mut crc = crc32fast::Hasher::new();
        let mut at = e.start;
        for chunk in out.chunks_mut(CHUNK) {
            self.file.read_exact_at(chunk, at).map_err(|err| fail(format!("entry '{name}': {err}")))?;
            crc.update(chunk);
            at += chunk.len() as u64;
        }
        if crc.finalize() != e.crc {
            return Err(fail(format!("entry '{name}' fails its CRC-32 check (the file is damaged)")));
        }
        Ok(())
    }

    pub fn read(&self, name: &str, e: Entry) -> Result<Vec<u8>> {
        let mut v = vec![0u8; e.size as usize];
        self.read_into(name, e, &mut v)?;
        Ok(v)
    }
}

/// Replaces the 0xFFFFFFFF placeholders by the zip64 extra field's 8-byte values, in the
/// order the format fixes (size, compressed size, local header offset).
fn zip64_sizes(mut extra: &[u8], size: &mut u64, csize: &mut u64, local: &mut u64) {
    while extra.len() >= 4 {
        let (id, n) = (u16_at(extra, 0), u16_at(extra, 2) as usize);
        let body = &extra[4..extra.len().min(4 + n)];
        if id == 1 {
            let mut at = 0;
            for v in [size, csize, local] {
                if *v == 0xFFFF_FFFF && at + 8 <= body.len() {
                    *v = u64_at(body, at);
                    at += 8;
                }
            }
            return;
        }
        extra = &extra[(4 + n).min(extra.len())..];
    }
}

/// `n` bytes at `at`; the range is checked against the file first, so a garbled size never
/// sizes an allocation.
fn read_vec(file: &File, at: u64, n: u64) -> Result<Vec<u8>> {
    let len = file.metadata().map_err(|e| fail(format!("cannot stat: {e}")))?.len();
    if at.checked_add(n).is_none_or(|e| e > len) {
        return Err(fail(format!("a zip record of {n} bytes at byte {at} runs past the end of the {len}-byte file")));
    }
    let mut v = vec![0u8; n as usize];
    file.read_exact_at(&mut v, at).map_err(|e| fail(format!("reading {n} bytes at byte {at}: {e}")))?;
    Ok(v)
}

/// Writes `entries` (name, bytes) as a zip of stored, 64-byte aligned entries. Archives past
/// 4 GiB (zip64) are not written.
pub fn write(out: File, entries: &[(String, &[u8])]) -> Result<()> {
    let io = |e: std::io::Error| fail(format!("writing: {e}"));
    let mut w = BufWriter::with_capacity(1 << 20, out);
    let mut central = Vec::new();
    let mut at = 0u64;
    for (name, data) in entries {
        let crc = crc32fast::hash(data);
        let n = name.len() as u64;
        let pad = (ALIGN - (at + 30 + n + 4) % ALIGN) % ALIGN;
        let size = data.len() as u64;
        if at + 30 + n + 4 + pad + size >= 0xFFFF_FFFF {
            return Err(fail("the archive would pass 4 GiB, which needs zip64 (not written)"));
        }
        let fixed = |sig: u32| {
            let mut h = sig.to_le_bytes().to_vec();
            // version needed (2.0), flags, method (stored), time, date (1980-01-01)
            for v in [20u16, 0, 0, 0, 0x21] {
                h.extend(v.to_le_bytes());
            }
            for v in [crc, size as u32, size as u32] {
                h.extend(v.to_le_bytes());
            }
            h
        };
        let mut local = fixed(LOCAL);
        local.extend((n as u16).to_le_bytes());
        local.extend(((4 + pad) as u16).to_le_bytes());
        local.extend(name.as_bytes());
        local.extend(PAD_ID.to_le_bytes());
        local.extend((pad as u16).to_le_bytes());
        local.resize(local.len() + pad as usize, b'Z');
        w.write_all(&local).map_err(io)?;
        w.write_all(data).map_err(io)?;
        let mut c = CENTRAL.to_le_bytes().to_vec();
        c.extend(20u16.to_le_bytes()); // version made by
        c.extend(&fixed(CENTRAL)[4..]);
        for v in [n as u16, 0, 0, 0, 0] {
            c.extend(v.to_le_bytes()); // name, extra, comment lengths; disk; internal attributes
        }
        c.extend(0u32.to_le_bytes()); // external attributes
        c.extend((at as u32).to_le_bytes());
        c.extend(name.as_bytes());
        central.extend(c);
        at += local.len() as u64 + size;
    }
    if entries.len() > 0xFFFE || at + central.len() as u64 >= 0xFFFF_FFFF {
        return Err(fail("the archive would need zip64 (more than 65534 entries or past 4 GiB), which is not written"));
    }
    let mut end = END.to_le_bytes().to_vec();
    for v in [0u16, 0, entries.len() as u16, entries.len() as u16] {
        end.extend(v.to_le_bytes());
    }
    end.extend((central.len() as u32).to_le_bytes());
    end.extend((at as u32).to_le_bytes());
    end.extend(0u16.to_le_bytes());
    w.write_all(&central).map_err(io)?;
    w.write_all(&end).map_err(io)?;
    w.into_inner().map_err(|e| io(e.into_error()))?.sync_all().map_err(io)
}
