//! InsightFace verification sets (`lfw.bin`, `cfp_fp.bin`, …) in Rust: a pickle of
//! `(list of encoded images, list of bools)`, pair i at images (2i, 2i+1). The reader is the
//! twin of `ts/data/verification-bin.ts`: a strict interpreter of exactly the opcodes that
//! structure needs (Python 2 and 3 protocols); any other (GLOBAL, REDUCE, … which could run
//! code) is refused, never executed. The writer streams the images out one at a time, in the
//! bytes `encodeVerificationBin` writes, to a temp file renamed into place at the end.

use crate::{err, Error, Result};
use maskfr_core::durable::AtomicFile;
use std::ops::Range;
use std::path::Path;

/// A read verification set: the file's bytes and where each image lies in them (no copy).
pub struct VerificationBin {
    data: Vec<u8>,
    images: Vec<Range<usize>>,
    pub issame: Vec<bool>,
}

impl VerificationBin {
    /// Reads and parses `path` whole (a verification set is tens of MB).
    pub fn read(path: &Path) -> Result<VerificationBin> {
        let data = std::fs::read(path).map_err(|e| Error(format!("{}: cannot read ({e})", path.display())))?;
        VerificationBin::parse(data, &path.display().to_string())
    }

    pub fn parse(data: Vec<u8>, file: &str) -> Result<VerificationBin> {
        let (images, issame) = Parser { data: &data, at: 0, file }.run()?;
        Ok(VerificationBin { data, images, issame })
    }

    pub fn len(&self) -> usize {
        self.images.len()
    }

    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// Image `i`'s encoded bytes.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.data[self.images[i].clone()]
    }
}

#[derive(Clone)]
enum Value {
    Bytes(Range<usize>),
    Bool(bool),
    /// An index into the parser's lists (a memoized list is shared, as in Python).
    List(usize),
    Tuple(Vec<Value>),
    Mark,
}

struct Parser<'a> {
    data: &'a [u8],
    at: usize,
    file: &'a str,
}

fn opcode_name(op: u8) -> String {
    let known = [
        (0x63, "GLOBAL"),
        (0x93, "STACK_GLOBAL"),
        (0x52, "REDUCE"),
        (0x62, "BUILD"),
        (0x69, "INST"),
        (0x6f, "OBJ"),
        (0x81, "NEWOBJ"),
        (0x92, "NEWOBJ_EX"),
        (0x4b, "BININT1"),
        (0x4a, "BININT"),
        (0x4d, "BININT2"),
        (0x58, "BINUNICODE"),
        (0x8c, "SHORT_BINUNICODE"),
        (0x7d, "EMPTY_DICT"),
        (0x29, "EMPTY_TUPLE"),
        (0x4e, "NONE"),
        (0x47, "BINFLOAT"),
    ];
    known.iter().find(|(o, _)| *o == op).map_or(format!("{op:#x}"), |(_, n)| n.to_string())
}

impl Parser<'_> {
    fn fail<T>(&self, why: String) -> Result<T> {
        err(format!("{}: not an InsightFace verification pickle: {why}", self.file))
    }

    fn take(&mut self, n: usize) -> Result<Range<usize>> {
        if n > self.data.len() - self.at {
            return self.fail(format!("truncated at byte {} (needs {n} more of {})", self.at, self.data.len()));
        }
        self.at += n;
        Ok(self.at - n..self.at)
    }

    fn uint(&mut self, n: usize) -> Result<usize> {
        let r = self.take(n)?;
        let v = self.data[r].iter().rev().fold(0u64, |v, &b| (v << 8) | b as u64);
        usize::try_from(v).or_else(|_| self.fail(format!("length {v} at byte {}", self.at - n)))
    }

    fn run(mut self) -> Result<(Vec<Range<usize>>, Vec<bool>)> {
        let mut stack: Vec<Value> = vec![];
        let mut lists: Vec<Vec<Value>> = vec![];
        let mut memo = std::collections::HashMap::<usize, Value>::new();
        loop {
            let pos = self.at;
            let op = self.uint(1)? as u8;
            let underflow = |p: &Self| p.fail::<Value>(format!("stack underflow at byte {}", p.at));
            let pop = |p: &Self, stack: &mut Vec<Value>| match stack.pop() {
                Some(Value::Mark) | None => underflow(p),
                Some(v) => Ok(v),
            };
            let to_mark = |p: &Self, stack: &mut Vec<Value>| match stack.iter().rposition(|v| matches!(v, Value::Mark))
            {
                Some(i) => Ok(stack.split_off(i).split_off(1)),
                None => p.fail(format!("no MARK before byte {}", p.at)),
            };
            let top_list = |p: &Self, stack: &[Value]| match stack.last() {
                Some(Value::List(i)) => Ok(*i),
                _ => p.fail(format!("APPEND to a non-list at byte {}", p.at)),
            };
            match op {
                0x80 => drop(self.uint(1)?), // PROTO
                0x95 => drop(self.uint(8)?), // FRAME
                0x5d => {
                    lists.push(vec![]);
                    stack.push(Value::List(lists.len() - 1));
                }
                0x28 => stack.push(Value::Mark),
                0x61 => {
                    let v = pop(&self, &mut stack)?;
                    let l = top_list(&self, &stack)?;
                    lists[l].push(v);
                }
                0x65 => {
                    let vs = to_mark(&self, &mut stack)?;
                    let l = top_list(&self, &stack)?;
                    lists[l].extend(vs);
                }
                0x43 | 0x55 | 0x42 | 0x54 | 0x8e => {
                    let n = match op {
                        0x43 | 0x55 => self.uint(1)?,
                        0x42 | 0x54 => self.uint(4)?,
                        _ => self.uint(8)?,
                    };
                    let r = self.take(n)?;
                    stack.push(Value::Bytes(r));
                }
                0x88 | 0x89 => stack.push(Value::Bool(op == 0x88)),
                0x85 => {
                    let a = pop(&self, &mut stack)?;
                    stack.push(Value::Tuple(vec![a]));
                }
                0x86 => {
                    let b = pop(&self, &mut stack)?;
                    let a = pop(&self, &mut stack)?;
                    stack.push(Value::Tuple(vec![a, b]));
                }
                0x74 => {
                    let vs = to_mark(&self, &mut stack)?;
                    stack.push(Value::Tuple(vs));
                }
                0x71 | 0x72 | 0x94 => {
                    let k = match op {
                        0x71 => self.uint(1)?,
                        0x72 => self.uint(4)?,
                        _ => memo.len(),
                    };
                    let Some(v) = stack.last().filter(|v| !matches!(v, Value::Mark)) else {
                        return self.fail(format!("memo of an empty stack at byte {pos}"));
                    };
                    memo.insert(k, v.clone());
                }
                0x68 | 0x6a => {
                    let k = self.uint(if op == 0x68 { 1 } else { 4 })?;
                    match memo.get(&k) {
                        Some(v) => stack.push(v.clone()),
                        None => return self.fail(format!("memo key {k} unset at byte {pos}")),
                    }
                }
                0x2e => {
                    let root = pop(&self, &mut stack)?;
                    return self.finish(root, &lists);
                }
                _ => {
                    return self.fail(format!(
                        "opcode {} at byte {pos} is not allowed (only lists of bytes and booleans are read; nothing is executed)",
                        opcode_name(op)
                    ))
                }
            }
        }
    }

    fn finish(&self, root: Value, lists: &[Vec<Value>]) -> Result<(Vec<Range<usize>>, Vec<bool>)> {
        let Value::Tuple(t) = &root else { return self.fail("expected a (images, issame) pair of lists".into()) };
        let [Value::List(imgs), Value::List(same)] = t.as_slice() else {
            return self.fail("expected a (images, issame) pair of lists".into());
        };
        let images = lists[*imgs]
            .iter()
            .map(|v| match v {
                Value::Bytes(r) => Ok(r.clone()),
                _ => self.fail("the first list must hold encoded images (bytes)".into()),
            })
            .collect::<Result<Vec<_>>>()?;
        let issame = lists[*same]
            .iter()
            .map(|v| match v {
                Value::Bool(b) => Ok(*b),
                _ => self.fail("the second list must hold booleans".into()),
            })
            .collect::<Result<Vec<_>>>()?;
        if images.len() != 2 * issame.len() {
            return self.fail(format!(
                "{} images for {} pairs (expected {})",
                images.len(),
                issame.len(),
                2 * issame.len()
            ));
        }
        Ok((images, issame))
    }
}

/// Writes a verification set image by image, as InsightFace's protocol-3 pickle (the bytes
/// `encodeVerificationBin` writes), to `PATH.<pid>.tmp`, renamed to `PATH` by `finish`; a
/// writer dropped unfinished removes its temp file.
pub struct BinWriter {
    out: AtomicFile,
    images: usize,
}

impl BinWriter {
    pub fn create(path: &Path) -> Result<BinWriter> {
        let out = AtomicFile::create(path).map_err(|e| Error(format!("{}: cannot create ({e})", path.display())))?;
        let mut w = BinWriter { out, images: 0 };
        w.put(&[0x80, 3, 0x5d, 0x28])?; // PROTO 3, EMPTY_LIST, MARK
        Ok(w)
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes).map_err(|e| Error(format!("{}: write failed ({e})", self.out.path().display())))
    }

    /// Appends the next image's encoded bytes.
    pub fn image(&mut self, bytes: &[u8]) -> Result<()> {
        match u32::try_from(bytes.len()) {
            Ok(n) if n < 256 => self.put(&[0x43, n as u8])?, // SHORT_BINBYTES
            Ok(n) => {
                self.put(&[0x42])?; // BINBYTES
                self.put(&n.to_le_bytes())?;
            }
            Err(_) => {
                return err(format!("{}: an image of {} bytes, over 4 GiB", self.out.path().display(), bytes.len()))
            }
        }
        self.images += 1;
        self.put(bytes)
    }

    /// Writes the pairs' list, flushes the file to the disk and renames it into place.
    pub fn finish(mut self, issame: &[bool]) -> Result<()> {
        if self.images != 2 * issame.len() {
            return err(format!(
                "{}: {} images written for {} pairs (expected {})",
                self.out.path().display(),
                self.images,
                issame.len(),
                2 * issame.len()
            ));
        }
        self.put(&[0x65, 0x5d, 0x28])?; // APPENDS, EMPTY_LIST, MARK
        let bools: Vec<u8> = issame.iter().map(|&s| if s { 0x88 } else { 0x89 }).collect();
        self.put(&bools)?;
        self.put(&[0x65, 0x86, 0x2e])?; // APPENDS, TUPLE2, STOP
        let path = self.out.path().to_path_buf();
        self.out.finish().map_err(|e| Error(format!("{}: {e}", path.display())))
    }
}
