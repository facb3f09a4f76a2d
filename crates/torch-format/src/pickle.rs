//! A pickle reader that builds values and never runs code: globals resolve only through an
//! allow-list of what a `torch.save`d state dict needs (the same idea as torch's own
//! `weights_only=True` unpickler), and REDUCE calls only those. Lengths read from the stream
//! are checked against the bytes left before anything is allocated.

use crate::DType;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

/// The callables and types a state dict's pickle may name.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Global {
    OrderedDict,
    RebuildTensor,
    RebuildParameter,
    Storage(DType),
}

/// `persistent_load(('storage', type, key, location, numel))`, resolved by the caller; shared
/// (`Arc`) so storages can be read on several threads.
#[derive(Debug)]
pub struct Storage {
    pub key: String,
    pub dtype: DType,
    pub numel: u64,
}

/// `_rebuild_tensor_v2(storage, offset, size, stride, …)`; checked in bounds of its storage.
#[derive(Debug)]
pub struct TensorRef {
    pub storage: Arc<Storage>,
    pub offset: u64,
    pub shape: Vec<u64>,
    pub stride: Vec<u64>,
}

pub type List = Rc<RefCell<Vec<Value>>>;
/// Items in insertion order (Python dicts keep it); a repeated key is resolved by the reader.
pub type Dict = Rc<RefCell<Vec<(Value, Value)>>>;

/// Values other than containers, tensors and storages are only read back in error messages
/// (their Debug form), hence `dead_code` on their fields.
#[derive(Debug, Clone)]
#[allow(dead_code)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    Tuple(Rc<[Value]>),
    List(List),
    Dict(Dict),
    Global(Global),
    Storage(Arc<Storage>),
    Tensor(Rc<TensorRef>),
}

impl Value {
    /// A short form for error messages: at most a few levels and about 120 characters,
    /// whatever the value (a crafted one may be deep, or share parts many times over).
    pub fn brief(&self) -> String {
        let mut out = String::new();
        self.write_brief(&mut out, 3);
        if out.len() > 120 {
            let cut = (0..=120).rev().find(|&i| out.is_char_boundary(i)).unwrap_or(0);
            out.truncate(cut);
            out.push('…');
        }
        out
    }
    fn write_brief(&self, out: &mut String, depth: u32) {
        use std::fmt::Write;
        let items = |out: &mut String, vs: &mut dyn Iterator<Item = &Value>, open: &str, close: &str| {
            out.push_str(open);
            if depth == 0 {
                out.push('…');
            } else {
                for (i, v) in vs.take(8).enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    v.write_brief(out, depth - 1);
                }
            }
            out.push_str(close);
        };
        match self {
            Value::Tuple(t) => items(out, &mut t.iter(), "(", ")"),
            Value::List(l) => items(out, &mut l.borrow().iter(), "[", "]"),
            Value::Dict(d) => items(out, &mut d.borrow().iter().map(|(k, _)| k), "{keys ", "}"),
            Value::Str(s) => {
                let _ = write!(out, "{:?}", s.chars().take(40).collect::<String>());
            }
            Value::Bytes(b) => {
                let _ = write!(out, "<{} bytes>", b.len());
            }
            Value::Tensor(t) => {
                let _ = write!(out, "<tensor {:?}>", t.shape);
            }
            v => {
                let _ = write!(out, "{v:?}");
            }
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "a bool",
            Value::Int(_) => "an int",
            Value::Float(_) => "a float",
            Value::Str(_) => "a str",
            Value::Bytes(_) => "bytes",
            Value::Tuple(_) => "a tuple",
            Value::List(_) => "a list",
            Value::Dict(_) => "a dict",
            Value::Global(_) => "a global",
            Value::Storage(_) => "a storage",
            Value::Tensor(_) => "a tensor",
        }
    }
}

/// The allow-list: `module.name` → what it stands for; anything else is refused by name.
fn resolve(module: &str, name: &str) -> Option<Global> {
    Some(match (module, name) {
        ("collections", "OrderedDict") => Global::OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2") => Global::RebuildTensor,
        ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state") => Global::RebuildParameter,
        ("torch", s) => Global::Storage(DType::from_storage(s)?),
        _ => return None,
    })
}

/// Sizes and nesting a state dict never comes near (it nests a few levels); with the rule
/// below they bound what a crafted stream can make: values deep enough to overflow the
/// stack when dropped or printed, or containers that hold themselves, are refused.
const MAX_STACK: usize = 1 << 20;
const MAX_DEPTH: u32 = 100;

/// Every container made so far (kept alive, so its address is never reused), with its
/// nesting depth and whether it sits inside another. A container inside another is never
/// changed again (APPEND, SETITEM refused), and none is put inside itself: so no container
/// can come to hold itself, and a depth, once known, stays true.
#[derive(Default)]
struct Containers {
    known: std::collections::HashMap<usize, (Value, u32, bool)>,
}

impl Containers {
    fn address(v: &Value) -> Option<usize> {
        match v {
            Value::Tuple(t) => Some(t.as_ptr() as usize),
            Value::List(l) => Some(Rc::as_ptr(l) as *const u8 as usize),
            Value::Dict(d) => Some(Rc::as_ptr(d) as *const u8 as usize),
            _ => None,
        }
    }
    fn depth(&self, v: &Value) -> u32 {
        Self::address(v).and_then(|a| self.known.get(&a)).map_or(0, |e| e.1)
    }
    /// Registers a new container `v` holding `children`.
    fn made(&mut self, v: &Value, children: &[&Value]) -> Result<(), String> {
        let Some(a) = Self::address(v) else { return Ok(()) };
        self.known.insert(a, (v.clone(), 0, false));
        self.adopt(v, children)
    }
    /// `children` go into container `parent`: refused when the parent already sits inside
    /// another, when a child is the parent itself, or past MAX_DEPTH.
    fn adopt(&mut self, parent: &Value, children: &[&Value]) -> Result<(), String> {
        let a = Self::address(parent).ok_or("adds to something that is not a container")?;
        if self.known.get(&a).is_some_and(|e| e.2) {
            return Err(
                "changes a container already inside another (a self-referencing structure: not a state dict)".into()
            );
        }
        let mut depth = self.depth(parent);
        for c in children {
            let Some(ca) = Self::address(c) else { continue };
            if ca == a {
                return Err("puts a container inside itself (not a state dict)".into());
            }
            depth = depth.max(self.depth(c) + 1);
            if let Some(e) = self.known.get_mut(&ca) {
                e.2 = true;
            }
        }
        if depth > MAX_DEPTH {
            return Err(format!("nests containers more than {MAX_DEPTH} deep (a state dict nests a few)"));
        }
        if let Some(e) = self.known.get_mut(&a) {
            e.1 = depth;
        }
        Ok(())
    }
}

struct Vm<'a> {
    data: &'a [u8],
    at: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: std::collections::HashMap<u32, Value>,
    containers: Containers,
}

/// Reads `data` (a whole pickle) to its STOP; `persistent` resolves persistent ids
/// (storages). Errors say the offset and what was wrong there.
pub fn load(data: &[u8], persistent: &mut dyn FnMut(Value) -> Result<Value, String>) -> Result<Value, String> {
    let mut vm = Vm {
        data,
        at: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: Default::default(),
        containers: Default::default(),
    };
    loop {
        let op_at = vm.at;
        let op = vm.take(1).map_err(|e| format!("{e} (no STOP: truncated?)"))?[0];
        match vm.step(op, persistent) {
            Ok(true) => return vm.pop(),
            Ok(false) => {}
            Err(e) => return Err(format!("byte {op_at} (opcode 0x{op:02x}): {e}")),
        }
        if vm.stack.len() > MAX_STACK {
            return Err(format!("byte {op_at}: more than {MAX_STACK} values on the stack"));
        }
    }
}

impl Vm<'_> {
    fn take(&mut self, n: u64) -> Result<&[u8], String> {
        let left = (self.data.len() - self.at) as u64;
        if n > left {
            return Err(format!("needs {n} bytes, {left} left in the pickle"));
        }
        let s = &self.data[self.at..self.at + n as usize];
        self.at += n as usize;
        Ok(s)
    }
    fn uint(&mut self, n: usize) -> Result<u64, String> {
        let b = self.take(n as u64)?;
        Ok(b.iter().rev().fold(0u64, |a, &x| (a << 8) | x as u64))
    }
    fn line(&mut self) -> Result<String, String> {
        let rest = &self.data[self.at..];
        let n = rest.iter().position(|&b| b == b'\n').ok_or("a GLOBAL name without its newline")?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.at += n + 1;
        Ok(s)
    }
    fn pop(&mut self) -> Result<Value, String> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err("pops past a MARK".into());
        }
        self.stack.pop().ok_or_else(|| "pops an empty stack".into())
    }
    fn top(&mut self) -> Result<&mut Value, String> {
        self.stack.last_mut().ok_or_else(|| "needs a value on an empty stack".into())
    }
    fn pop_mark(&mut self) -> Result<Vec<Value>, String> {
        let m = self.marks.pop().ok_or("needs a MARK, none is set")?;
        Ok(self.stack.split_off(m))
    }
    fn push(&mut self, v: Value) -> Result<bool, String> {
        self.stack.push(v);
        Ok(false)
    }
    /// Pushes a new container holding `children` (checked, see [`Containers`]).
    fn push_new(&mut self, v: Value, children: &[&Value]) -> Result<bool, String> {
        self.containers.made(&v, children)?;
        self.push(v)
    }
    fn memo_put(&mut self, k: u32) -> Result<bool, String> {
        let v = self.top()?.clone();
        self.memo.insert(k, v);
        Ok(false)
    }
    fn memo_get(&mut self, k: u32) -> Result<bool, String> {
        let v = self.memo.get(&k).cloned().ok_or_else(|| format!("memo {k} was never stored"))?;
        self.push(v)
    }
    fn text(&mut self, n: u64) -> Result<bool, String> {
        let s = std::str::from_utf8(self.take(n)?).map_err(|_| "a string that is not UTF-8")?.into();
        self.push(Value::Str(s))
    }
    fn bytes(&mut self, n: u64) -> Result<bool, String> {
        let b = self.take(n)?.into();
        self.push(Value::Bytes(b))
    }
    fn global(&mut self, module: &str, name: &str) -> Result<bool, String> {
        let g = resolve(module, name).ok_or_else(|| {
            let hint = if module.starts_with("__torch__") {
                " (a TorchScript archive: load it with torch.jit.load and torch.save its state_dict())"
            } else {
                ""
            };
            format!("refuses global '{module}.{name}': not one a state dict needs, so it is neither imported nor called{hint}")
        })?;
        self.push(Value::Global(g))
    }
    fn set_items(&mut self, dict: usize, items: Vec<Value>) -> Result<(), String> {
        let Some(Value::Dict(d)) = self.stack.get(dict) else {
            return Err("SETITEM(S) on something other than a dict".into());
        };
        if !items.len().is_multiple_of(2) {
            return Err("SETITEMS with an odd number of values".into());
        }
        let parent = Value::Dict(d.clone());
        self.containers.adopt(&parent, &items.iter().collect::<Vec<_>>())?;
        let mut d = d.borrow_mut();
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            d.push((k, v));
        }
        Ok(())
    }
    fn append(&mut self, list: usize, items: Vec<Value>) -> Result<(), String> {
        let Some(Value::List(l)) = self.stack.get(list) else {
            return Err("APPEND(S) on something other than a list".into());
        };
        let parent = Value::List(l.clone());
        self.containers.adopt(&parent, &items.iter().collect::<Vec<_>>())?;
        l.borrow_mut().extend(items);
        Ok(())
    }

    /// One opcode; `Ok(true)` at STOP.
    fn step(&mut self, op: u8, persistent: &mut dyn FnMut(Value) -> Result<Value, String>) -> Result<bool, String> {
        match op {
            0x80 => self.take(1).map(|_| false), // PROTO
            0x95 => self.take(8).map(|_| false), // FRAME: a read-ahead hint
            b'.' => Ok(true),
            b'(' => {
                self.marks.push(self.stack.len());
                Ok(false)
            }
            b'N' => self.push(Value::None),
            0x88 => self.push(Value::Bool(true)),
            0x89 => self.push(Value::Bool(false)),
            b'J' => {
                let v = self.uint(4)? as u32 as i32;
                self.push(Value::Int(v as i64))
            }
            b'K' => {
                let v = self.uint(1)?;
                self.push(Value::Int(v as i64))
            }
            b'M' => {
                let v = self.uint(2)?;
                self.push(Value::Int(v as i64))
            }
            0x8a | 0x8b => {
                // LONG1 / LONG4: little-endian two's complement of n bytes; n > 8 never fits
                // a size, so it is refused before the bytes are read.
                let n = if op == 0x8a { self.uint(1)? } else { self.uint(4)? };
                if n > 8 {
                    return Err(format!("an integer of {n} bytes (sizes fit in 8)"));
                }
                let b = self.take(n)?;
                let mut v = b.iter().rev().fold(0i64, |a, &x| (a << 8) | x as i64);
                if n > 0 && n < 8 && b[n as usize - 1] & 0x80 != 0 {
                    v -= 1i64 << (8 * n);
                }
                self.push(Value::Int(v))
            }
            b'G' => {
                let b = self.take(8)?;
                let v = f64::from_be_bytes(b.try_into().unwrap());
                self.push(Value::Float(v))
            }
            b'X' => {
                let n = self.uint(4)?;
                self.text(n)
            }
            0x8c => {
                let n = self.uint(1)?;
                self.text(n)
            }
            0x8d => {
                let n = self.uint(8)?;
                self.text(n)
            }
            b'U' | b'T' => {
                // Python 2 str: bytes, read as Latin-1 text
                let n = if op == b'U' { self.uint(1)? } else { self.uint(4)? };
                let s: String = self.take(n)?.iter().map(|&b| b as char).collect();
                self.push(Value::Str(s.into()))
            }
            b'C' => {
                let n = self.uint(1)?;
                self.bytes(n)
            }
            b'B' => {
                let n = self.uint(4)?;
                self.bytes(n)
            }
            0x8e => {
                let n = self.uint(8)?;
                self.bytes(n)
            }
            b')' => self.push_new(Value::Tuple(Rc::new([])), &[]),
            b't' => {
                let items = self.pop_mark()?;
                let t: Rc<[Value]> = items.into();
                self.push_new(Value::Tuple(t.clone()), &t.iter().collect::<Vec<_>>())
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                if self.stack.len() < n || self.marks.last().is_some_and(|&m| m > self.stack.len() - n) {
                    return Err(format!("TUPLE{n} needs {n} values"));
                }
                let t: Rc<[Value]> = self.stack.split_off(self.stack.len() - n).into();
                self.push_new(Value::Tuple(t.clone()), &t.iter().collect::<Vec<_>>())
            }
            b']' => self.push_new(Value::List(Default::default()), &[]),
            b'l' => {
                let items = self.pop_mark()?;
                let l = Value::List(Default::default());
                self.push_new(l, &[])?;
                self.append(self.stack.len() - 1, items).map(|_| false)
            }
            b'}' => self.push_new(Value::Dict(Default::default()), &[]),
            b'd' => {
                let items = self.pop_mark()?;
                self.push_new(Value::Dict(Default::default()), &[])?;
                self.set_items(self.stack.len() - 1, items).map(|_| false)
            }
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                let at = self.stack.len().checked_sub(1).ok_or("SETITEM without a dict")?;
                self.set_items(at, vec![k, v]).map(|_| false)
            }
            b'u' => {
                let items = self.pop_mark()?;
                let at = self.stack.len().checked_sub(1).ok_or("SETITEMS without a dict")?;
                self.set_items(at, items).map(|_| false)
            }
            b'a' => {
                let v = self.pop()?;
                let at = self.stack.len().checked_sub(1).ok_or("APPEND without a list")?;
                self.append(at, vec![v]).map(|_| false)
            }
            b'e' => {
                let items = self.pop_mark()?;
                let at = self.stack.len().checked_sub(1).ok_or("APPENDS without a list")?;
                self.append(at, items).map(|_| false)
            }
            b'0' => self.pop().map(|_| false),
            b'2' => {
                let v = self.top()?.clone();
                self.push(v)
            }
            b'1' => self.pop_mark().map(|_| false),
            b'q' => {
                let k = self.uint(1)? as u32;
                self.memo_put(k)
            }
            b'r' => {
                let k = self.uint(4)? as u32;
                self.memo_put(k)
            }
            0x94 => {
                let k = self.memo.len() as u32;
                self.memo_put(k)
            }
            b'h' => {
                let k = self.uint(1)? as u32;
                self.memo_get(k)
            }
            b'j' => {
                let k = self.uint(4)? as u32;
                self.memo_get(k)
            }
            b'c' => {
                let module = self.line()?;
                let name = self.line()?;
                self.global(&module, &name)
            }
            0x93 => {
                let (name, module) = (self.pop()?, self.pop()?);
                let (Value::Str(m), Value::Str(n)) = (&module, &name) else {
                    return Err(format!("STACK_GLOBAL of {} and {}", module.kind(), name.kind()));
                };
                self.global(m, n)
            }
            b'Q' => {
                let pid = self.pop()?;
                let v = persistent(pid)?;
                self.push(v)
            }
            b'R' => {
                let args = self.pop()?;
                let f = self.pop()?;
                let v = reduce(f, args)?;
                self.push_new(v, &[])
            }
            0x81 => {
                // NEWOBJ: cls.__new__(cls, *args); only an OrderedDict is ever made this way
                let args = self.pop()?;
                match self.pop()? {
                    Value::Global(Global::OrderedDict) => self.push_new(Value::Dict(Default::default()), &[]),
                    f => Err(format!("NEWOBJ of {} ({})", f.kind(), args.brief())),
                }
            }
            b'b' => {
                // BUILD sets attributes: an OrderedDict's `_metadata` (module versions), which
                // loading does not use; nothing else in a state dict is built this way.
                let _state = self.pop()?;
                match self.top()? {
                    Value::Dict(_) | Value::Tensor(_) => Ok(false),
                    v => Err(format!("BUILD on {}", v.kind())),
                }
            }
            _ => Err("an opcode this reader does not know (not one torch.save writes)".into()),
        }
    }
}

fn int(v: &Value, what: &str) -> Result<u64, String> {
    match v {
        Value::Int(i) if *i >= 0 => Ok(*i as u64),
        v => Err(format!("{what} is {}, expected an int ≥ 0 ({})", v.kind(), v.brief())),
    }
}

fn ints(v: &Value, what: &str) -> Result<Vec<u64>, String> {
    match v {
        Value::Tuple(t) => t.iter().map(|x| int(x, what)).collect(),
        Value::List(l) => l.borrow().iter().map(|x| int(x, what)).collect(),
        v => Err(format!("{what} is {}, expected a tuple of ints", v.kind())),
    }
}

/// REDUCE: calls one of the allow-listed callables on `args`.
fn reduce(f: Value, args: Value) -> Result<Value, String> {
    let Value::Tuple(args) = args else {
        return Err(format!("REDUCE with {} for arguments", args.kind()));
    };
    match f {
        Value::Global(Global::OrderedDict) if args.is_empty() => Ok(Value::Dict(Default::default())),
        Value::Global(Global::RebuildTensor) if args.len() >= 4 => {
            let Value::Storage(storage) = &args[0] else {
                return Err(format!("_rebuild_tensor_v2 over {}, not a storage", args[0].kind()));
            };
            let offset = int(&args[1], "the storage offset")?;
            let shape = ints(&args[2], "a size")?;
            let stride = ints(&args[3], "a stride")?;
            tensor(storage.clone(), offset, shape, stride).map(|t| Value::Tensor(Rc::new(t)))
        }
        Value::Global(Global::RebuildParameter) if !args.is_empty() => match &args[0] {
            t @ Value::Tensor(_) => Ok(t.clone()),
            v => Err(format!("_rebuild_parameter of {}", v.kind())),
        },
        Value::Global(g) => Err(format!("REDUCE of {g:?} with {} arguments", args.len())),
        v => Err(format!("REDUCE of {}, which is not callable", v.kind())),
    }
}

/// A tensor view checked against its storage with overflow-checked arithmetic: its last
/// element lies inside the storage, and it holds no more elements than the storage does
/// (views repeating elements through zero strides would make a small file expand).
fn tensor(storage: Arc<Storage>, offset: u64, shape: Vec<u64>, stride: Vec<u64>) -> Result<TensorRef, String> {
    let desc = || {
        format!(
            "a tensor of size {shape:?}, stride {stride:?}, offset {offset} over a storage of {} elements",
            storage.numel
        )
    };
    if shape.len() != stride.len() {
        return Err(format!("{}: size and stride differ in length", desc()));
    }
    let numel = shape
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .ok_or_else(|| format!("{}: its size overflows", desc()))?;
    if numel > 0 {
        let last = shape
            .iter()
            .zip(&stride)
            .try_fold(offset, |a, (&d, &s)| (d - 1).checked_mul(s).and_then(|x| a.checked_add(x)))
            .ok_or_else(|| format!("{}: its extent overflows", desc()))?;
        if last >= storage.numel {
            return Err(format!("{}: reaches element {last}, past the storage's end", desc()));
        }
        if numel > storage.numel {
            return Err(format!("{}: more elements than its storage (repeated through zero strides)", desc()));
        }
    }
    Ok(TensorRef { storage, offset, shape, stride })
}
