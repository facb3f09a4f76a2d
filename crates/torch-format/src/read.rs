//! Reading a `torch.save` file: the pickle is parsed first (no storage bytes read), every
//! storage and tensor is checked against the archive, the total size is bounded, and only
//! then is anything the size of a tensor allocated. Floats come out as f32, integers as is.

use crate::pickle::{self, Dict, Global, Storage, TensorRef, Value};
use crate::zip::Archive;
use crate::{fail, in_file, DType, Tensor};
use maskfr_core::Result;
use rayon::prelude::*;
use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

/// Keys under which training scripts nest the state dict (arcface_torch's
/// `checkpoint_gpu_<rank>.pt` says `state_dict_backbone`), tried in this order.
const NESTED: [&str; 5] = ["state_dict", "state_dict_backbone", "model", "backbone", "model_state_dict"];
/// DistributedDataParallel's prefix on every name; a plain module's state dict has none.
const DDP: &str = "module.";
/// The first bytes of a pre-1.6 (legacy) torch.save: PROTO 2, then LONG1 of the magic
/// number 0x1950a86a20f9469cfc6c.
const LEGACY: [u8; 5] = [0x80, 0x02, 0x8a, 0x0a, 0x6c];
/// Output may exceed the archive only by f16/bf16 → f32 and a few names sharing a tensor.
const EXPANSION: u64 = 4;

pub struct Loaded {
    pub tensors: Vec<Tensor>,
    /// The key the state dict sat under (`state_dict`, …); empty at the top level.
    pub nested_in: String,
    /// Whether a `module.` prefix was stripped from every name.
    pub stripped_ddp: bool,
}

/// Reads the state dict of a `torch.save` file.
pub fn read(path: &Path) -> Result<Loaded> {
    read_file(path).map_err(|e| in_file(path, e))
}

fn read_file(path: &Path) -> Result<Loaded> {
    let file = File::open(path).map_err(|e| fail(format!("cannot open: {e}")))?;
    let mut head = [0u8; 5];
    let head_len = (&file).take(5).read(&mut head).unwrap_or(0);
    let Some(ar) = Archive::open(file)? else {
        return Err(fail(if head_len == 5 && head == LEGACY {
            "a legacy (pre-1.6) torch.save file, which is not read here; re-save it with a recent torch: \
             `torch.save(torch.load(f, weights_only=True), f2)`"
        } else {
            "not a torch.save file (neither the zip format of torch ≥ 1.6 nor the legacy format)"
        }));
    };
    let pkls: Vec<&str> =
        ar.names().filter(|n| n.strip_suffix("/data.pkl").is_some_and(|p| !p.contains('/'))).collect();
    let [pkl] = pkls[..] else {
        return Err(fail(format!(
            "a zip with {} '<name>/data.pkl' entries, expected one as torch.save writes",
            pkls.len()
        )));
    };
    let prefix = &pkl[..pkl.len() - "data.pkl".len()];
    if let Some(e) = ar.entry(&format!("{prefix}byteorder")) {
        let order = ar.read("byteorder", e)?;
        if order != b"little" {
            return Err(fail(format!(
                "byte order '{}': only little-endian files are read",
                String::from_utf8_lossy(&order)
            )));
        }
    }
    let pickle_bytes = ar.read(pkl, ar.entry(pkl).unwrap())?;
    let mut storages: HashMap<String, Arc<Storage>> = HashMap::new();
    let mut persistent = |pid: Value| storage(&ar, prefix, &mut storages, pid);
    let top = pickle::load(&pickle_bytes, &mut persistent).map_err(|e| fail(format!("{pkl}: {e}")))?;
    let (nested_in, dict) = state_dict(&top)?;
    let (names, views) = named_views(&dict)?;
    let stripped_ddp = names.iter().all(|n| n.starts_with(DDP));
    let names: Vec<String> =
        if stripped_ddp { names.iter().map(|n| n[DDP.len()..].to_string()).collect() } else { names };
    let budget = EXPANSION * std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let mut total = 0u64;
    for (n, v) in names.iter().zip(&views) {
        let numel: u64 = v.shape.iter().product(); // checked when the view was made
        total = total.saturating_add(numel * out_dtype(v.storage.dtype).size());
        if total > budget {
            return Err(fail(format!(
                "the tensors up to '{n}' would take {total} bytes, over {EXPANSION}× the file's size: views repeat a storage too often"
            )));
        }
    }
    let views: Vec<&TensorRef> = views.iter().map(|v| &**v).collect();
    let tensors = materialise(&ar, prefix, names, &views)?;
    Ok(Loaded { tensors, nested_in, stripped_ddp })
}

/// `persistent_load(('storage', torch.<X>Storage, key, location, numel))`: the storage's
/// entry must exist and hold exactly `numel` elements of its type.
fn storage(
    ar: &Archive,
    prefix: &str,
    seen: &mut HashMap<String, Arc<Storage>>,
    pid: Value,
) -> std::result::Result<Value, String> {
    let Value::Tuple(t) = &pid else {
        return Err(format!("a persistent id that is not a tuple: {}", pid.brief()));
    };
    let (
        Some(Value::Str(kind)),
        Some(Value::Global(Global::Storage(dtype))),
        Some(Value::Str(key)),
        Some(Value::Int(numel)),
    ) = (t.first(), t.get(1), t.get(2), t.get(4))
    else {
        return Err(format!(
            "a persistent id other than ('storage', torch.<X>Storage, key, location, numel): {}",
            pid.brief()
        ));
    };
    if &**kind != "storage" || t.len() != 5 || *numel < 0 {
        return Err(format!(
            "a persistent id other than ('storage', torch.<X>Storage, key, location, numel): {}",
            pid.brief()
        ));
    }
    let name = format!("{prefix}data/{key}");
    let e = ar.entry(&name).ok_or_else(|| format!("storage '{key}' has no entry '{name}' in the archive"))?;
    let bytes = (*numel as u64).checked_mul(dtype.size());
    if bytes != Some(e.size) {
        return Err(format!(
            "storage '{key}' declares {numel} elements of {} ({} bytes), its entry holds {} bytes",
            dtype.storage(),
            bytes.map_or("an overflowing number of".into(), |b| b.to_string()),
            e.size
        ));
    }
    if let Some(s) = seen.get(&**key) {
        if s.dtype != *dtype || s.numel != *numel as u64 {
            return Err(format!("storage '{key}' is declared twice with different types or sizes"));
        }
        return Ok(Value::Storage(s.clone()));
    }
    let s = Arc::new(Storage { key: key.to_string(), dtype: *dtype, numel: *numel as u64 });
    seen.insert(key.to_string(), s.clone());
    Ok(Value::Storage(s))
}

fn is_state_dict(v: &Value) -> Option<Dict> {
    match v {
        Value::Dict(d) if !d.borrow().is_empty() && d.borrow().iter().all(|(_, v)| matches!(v, Value::Tensor(_))) => {
            Some(d.clone())
        }
        _ => None,
    }
}

/// The state dict: the top value itself, or under one of [`NESTED`]'s keys.
fn state_dict(top: &Value) -> Result<(String, Dict)> {
    if let Some(d) = is_state_dict(top) {
        return Ok((String::new(), d));
    }
    let Value::Dict(d) = top else {
        return Err(fail("holds no dict of tensors (a state dict) at its top level"));
    };
    let items = d.borrow();
    for key in NESTED {
        let found = items.iter().rev().find(|(k, _)| matches!(k, Value::Str(s) if &**s == key));
        if let Some(sd) = found.and_then(|(_, v)| is_state_dict(v)) {
            return Ok((key.to_string(), sd));
        }
    }
    let keys: Vec<String> = items.iter().map(|(k, _)| k.brief()).take(12).collect();
    Err(fail(format!("holds a dict without a state dict in it (keys {}; looked under {NESTED:?})", keys.join(", "))))
}

/// Names and views, a repeated name keeping its last value at its first place (as a Python dict).
fn named_views(d: &Dict) -> Result<(Vec<String>, Vec<Rc<TensorRef>>)> {
    let (mut names, mut views, mut at) = (Vec::new(), Vec::new(), HashMap::new());
    for (k, v) in d.borrow().iter() {
        let (Value::Str(k), Value::Tensor(t)) = (k, v) else {
            return Err(fail(format!("a state dict key that is not a string: {}", k.brief())));
        };
        match at.get(&**k) {
            Some(&i) => views[i] = t.clone(),
            None => {
                at.insert(k.to_string(), names.len());
                names.push(k.to_string());
                views.push(t.clone());
            }
        }
    }
    Ok((names, views))
}

fn out_dtype(d: DType) -> DType {
    match d {
        DType::F16 | DType::BF16 | DType::F64 => DType::F32,
        d => d,
    }
}

fn row_major(shape: &[u64]) -> Vec<u64> {
    let mut s = vec![1u64; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Whether the view reads its elements in storage order (size-1 dims' strides do not matter).
fn contiguous(v: &TensorRef) -> bool {
    v.shape.iter().zip(v.stride.iter().zip(row_major(&v.shape))).all(|(&d, (&s, r))| d == 1 || s == r)
}

/// Reads every storage once, storages in parallel, and cuts its views out of it; a storage
/// that is exactly one tensor already in its output type goes straight into that tensor's
/// buffer (so reading never holds a second copy of it).
fn materialise(ar: &Archive, prefix: &str, names: Vec<String>, views: &[&TensorRef]) -> Result<Vec<Tensor>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut group_of: HashMap<&str, usize> = HashMap::new();
    for (i, v) in views.iter().enumerate() {
        let g = *group_of.entry(&v.storage.key).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(i);
    }
    let read_group = |users: &Vec<usize>| -> Result<Vec<(usize, Tensor)>> {
        let s = &views[users[0]].storage;
        let name = format!("{prefix}data/{}", s.key);
        let entry = ar.entry(&name).unwrap();
        let v = views[users[0]];
        let numel: u64 = v.shape.iter().product();
        if users.len() == 1 && out_dtype(s.dtype) == s.dtype && v.offset == 0 && numel == s.numel && contiguous(v) {
            let mut data = vec![0u8; entry.size as usize];
            ar.read_into(&name, entry, &mut data)?;
            return Ok(vec![(
                users[0],
                Tensor { name: names[users[0]].clone(), dtype: s.dtype, shape: v.shape.clone(), data },
            )]);
        }
        let bytes = ar.read(&name, entry)?;
        Ok(users
            .iter()
            .map(|&u| {
                let t = Tensor {
                    name: names[u].clone(),
                    dtype: out_dtype(s.dtype),
                    shape: views[u].shape.clone(),
                    data: cut(&bytes, views[u]),
                };
                (u, t)
            })
            .collect())
    };
    let read: Vec<Vec<(usize, Tensor)>> = groups.par_iter().map(read_group).collect::<Result<_>>()?;
    let mut out: Vec<Option<Tensor>> = vec![None; views.len()];
    for (u, t) in read.into_iter().flatten() {
        out[u] = Some(t);
    }
    Ok(out.into_iter().map(Option::unwrap).collect())
}

/// The view's elements, in row-major order, converted to its output type.
fn cut(src: &[u8], v: &TensorRef) -> Vec<u8> {
    let dt = v.storage.dtype;
    let size = dt.size() as usize;
    let numel: u64 = v.shape.iter().product();
    let mut out = Vec::with_capacity(numel as usize * out_dtype(dt).size() as usize);
    let mut put = |e: u64| {
        let b = &src[e as usize * size..(e as usize + 1) * size];
        match dt {
            DType::F16 => out.extend(half::f16::from_le_bytes([b[0], b[1]]).to_f32().to_le_bytes()),
            DType::BF16 => out.extend(half::bf16::from_le_bytes([b[0], b[1]]).to_f32().to_le_bytes()),
            DType::F64 => out.extend((f64::from_le_bytes(b.try_into().unwrap()) as f32).to_le_bytes()),
            _ => out.extend_from_slice(b),
        }
    };
    if contiguous(v) {
        (v.offset..v.offset + numel).for_each(put);
        return out;
    }
    // Odometer over the multi-index; the view was checked to stay inside the storage.
    let mut idx = vec![0u64; v.shape.len()];
    for _ in 0..numel {
        put(v.offset + idx.iter().zip(&v.stride).map(|(i, s)| i * s).sum::<u64>());
        for d in (0..idx.len()).rev() {
            idx[d] += 1;
            if idx[d] < v.shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    out
}
