//! The reader against crafted files (hostile sizes, globals, truncation, damage), with the
//! bytes it allocates measured on the test's own thread; the writer read back; and the
//! PyTorch-made fixtures (`npm run fixtures`).

use crate::{read, write, zip, DType, Tensor};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};

struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts on the calling thread.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let live = LIVE.with(|c| c.get()) + l.size();
        LIVE.with(|c| c.set(live));
        PEAK.with(|p| p.set(p.get().max(live)));
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.with(|c| c.set(c.get().saturating_sub(l.size())));
        System.dealloc(p, l)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The most bytes `f` had allocated at once (beyond what was live before it) on this thread.
fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(|c| c.get());
    PEAK.with(|p| p.set(base));
    let out = f();
    (out, PEAK.with(|p| p.get()) - base)
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("maskfr-torch-{}-{name}", std::process::id()))
}

/// A torch.save-shaped zip of `pickle` and storages `data/<key>`.
fn archive(name: &str, pickle: &[u8], storages: &[(&str, &[u8])]) -> PathBuf {
    let path = tmp(name);
    let mut entries: Vec<(String, &[u8])> = vec![("a/data.pkl".into(), pickle), ("a/byteorder".into(), b"little")];
    entries.extend(storages.iter().map(|(k, b)| (format!("a/data/{k}"), *b)));
    zip::write(std::fs::File::create(&path).unwrap(), &entries).unwrap();
    path
}

fn binint(v: i32) -> Vec<u8> {
    [&[b'J'][..], &v.to_le_bytes()].concat()
}

fn long1(v: &[u8]) -> Vec<u8> {
    [&[0x8a, v.len() as u8][..], v].concat()
}

fn tuple(items: &[Vec<u8>]) -> Vec<u8> {
    [vec![b'('], items.concat(), vec![b't']].concat()
}

fn unicode(s: &str) -> Vec<u8> {
    [&[b'X'][..], &(s.len() as u32).to_le_bytes(), s.as_bytes()].concat()
}

const DICT: &[u8] = b"ccollections\nOrderedDict\n)R";

/// `OrderedDict(w=_rebuild_tensor_v2(FloatStorage of numel, offset, size, stride, False, {}))`.
fn one_tensor(numel: Vec<u8>, offset: Vec<u8>, size: Vec<u8>, stride: Vec<u8>) -> Vec<u8> {
    let pid = tuple(&[unicode("storage"), b"ctorch\nFloatStorage\n".to_vec(), unicode("0"), unicode("cpu"), numel]);
    let args = tuple(&[[pid, vec![b'Q']].concat(), offset, size, stride, vec![0x89], DICT.to_vec()]);
    [&[0x80, 2][..], DICT, b"(", &unicode("w"), b"ctorch._utils\n_rebuild_tensor_v2\n", &args, b"Ru."].concat()
}

fn floats(n: usize) -> Vec<u8> {
    (0..n).flat_map(|i| (i as f32 * 0.5 - 1.0).to_le_bytes()).collect()
}

/// Refused with a message naming the file and saying `why`, allocating under 64 KiB.
fn refused(path: &Path, why: &str) {
    let (r, peak) = peak_of(|| read(path));
    let e = r.err().unwrap_or_else(|| panic!("{} was read; expected a refusal ({why})", path.display())).0;
    assert!(e.starts_with(&path.display().to_string()), "the error names the file: {e}");
    assert!(e.contains(why), "'{e}' does not say '{why}'");
    assert!(peak < 64 << 10, "{peak} bytes allocated while refusing: {e}");
    std::fs::remove_file(path).unwrap();
}

#[test]
fn a_crafted_tensor_reads_back() {
    let data = floats(6);
    let p = archive(
        "ok",
        &one_tensor(binint(6), binint(0), tuple(&[binint(2), binint(3)]), tuple(&[binint(3), binint(1)])),
        &[("0", &data)],
    );
    let l = read(&p).unwrap();
    assert_eq!(l.tensors, vec![Tensor { name: "w".into(), dtype: DType::F32, shape: vec![2, 3], data }]);
    std::fs::remove_file(p).unwrap();
}

#[test]
fn a_transposed_view_at_an_offset_reads_in_row_major_order() {
    let data = floats(7);
    let p = archive(
        "view",
        &one_tensor(binint(7), binint(1), tuple(&[binint(3), binint(2)]), tuple(&[binint(1), binint(3)])),
        &[("0", &data)],
    );
    let got: Vec<f32> =
        read(&p).unwrap().tensors[0].data.chunks(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    let src: Vec<f32> = data.chunks(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    assert_eq!(got, vec![src[1], src[4], src[2], src[5], src[3], src[6]]);
    std::fs::remove_file(p).unwrap();
}

#[test]
fn hostile_sizes_are_refused_before_allocating() {
    let four = floats(4);
    let s = |v: &[i32]| tuple(&v.iter().map(|&x| binint(x)).collect::<Vec<_>>());
    let cases: [(&str, Vec<u8>, &str); 7] = [
        (
            "numel-2^62",
            one_tensor(long1(&(1u64 << 62).to_le_bytes()), binint(0), s(&[4]), s(&[1])),
            "an overflowing number of",
        ),
        (
            "numel-2^40",
            one_tensor(long1(&(1u64 << 40).to_le_bytes()), binint(0), s(&[4]), s(&[1])),
            "its entry holds 16 bytes",
        ),
        (
            "numel-2^63",
            one_tensor(long1(&[0, 0, 0, 0, 0, 0, 0, 0x80, 0]), binint(0), s(&[4]), s(&[1])),
            "an integer of 9 bytes",
        ),
        (
            "numel-negative",
            one_tensor(long1(&(-4i64).to_le_bytes()), binint(0), s(&[4]), s(&[1])),
            "a persistent id other than",
        ),
        (
            "size-overflow",
            one_tensor(binint(4), binint(0), s(&[1 << 30, 1 << 30, 1 << 30]), s(&[0, 0, 0])),
            "its size overflows",
        ),
        ("stride-past-end", one_tensor(binint(4), binint(0), s(&[2, 2]), s(&[4, 1])), "past the storage's end"),
        ("zero-stride", one_tensor(binint(4), binint(0), s(&[1 << 30]), s(&[0])), "more elements than its storage"),
    ];
    for (name, pickle, why) in cases {
        refused(&archive(name, &pickle, &[("0", &four)]), why);
    }
    let huge_offset = one_tensor(binint(4), long1(&(u64::MAX >> 1).to_le_bytes()), s(&[2]), s(&[1]));
    refused(&archive("offset", &huge_offset, &[("0", &four)]), "past the storage's end");
}

#[test]
fn views_repeating_one_storage_past_4x_the_file_are_refused() {
    // Five names over the whole of one 16 KiB storage: 80 KiB out of a ~17 KiB file.
    let data = floats(4096);
    let pid =
        tuple(&[unicode("storage"), b"ctorch\nFloatStorage\n".to_vec(), unicode("0"), unicode("cpu"), binint(4096)]);
    let view = tuple(&[
        [pid, vec![b'Q']].concat(),
        binint(0),
        tuple(&[binint(4096)]),
        tuple(&[binint(1)]),
        vec![0x89],
        DICT.to_vec(),
    ]);
    let items: Vec<u8> = (0..5)
        .flat_map(|i| {
            [unicode(&format!("w{i}")), b"ctorch._utils\n_rebuild_tensor_v2\n".to_vec(), view.clone(), b"R".to_vec()]
                .concat()
        })
        .collect();
    let pickle = [&[0x80, 2][..], DICT, b"(", &items, b"u."].concat();
    refused(&archive("repeats", &pickle, &[("0", &data)]), "over 4× the file's size");
}

#[test]
fn globals_outside_the_allow_list_are_refused_by_name() {
    for (g, name) in [
        (&b"cposix\nsystem\n"[..], "posix.system"),
        (b"cbuiltins\neval\n", "builtins.eval"),
        (b"c__torch__.M\nM\n", "TorchScript"),
    ] {
        let pickle = [&[0x80, 2][..], g, &tuple(&[unicode("touch /tmp/maskfr-pwned")]), b"R."].concat();
        refused(&archive("global", &pickle, &[]), name);
    }
    let stack_global =
        [&[0x80, 4][..], &unicode("os"), &unicode("system"), &[0x93], &tuple(&[unicode("true")]), b"R."].concat();
    refused(&archive("stack-global", &stack_global, &[]), "refuses global 'os.system'");
    assert!(!Path::new("/tmp/maskfr-pwned").exists());
}

#[test]
fn deep_or_self_holding_pickles_are_refused_without_overflowing_the_stack() {
    // 200 nested 1-tuples (a million would overflow the stack when dropped or printed).
    let deep = [&[0x80, 2, b')'][..], &[0x85; 200], b"."].concat();
    refused(&archive("deep", &deep, &[]), "more than 100 deep");
    // A list appended to itself (its Debug form would recurse forever).
    refused(&archive("self", &[0x80, 2, b']', b'q', 0, b'h', 0, b'a', b'.'], &[]), "inside itself");
    // A put inside B, then B inside A: A is already inside another, so it is not changed.
    let cycle = [0x80, 2, b']', b'q', 0, b']', b'q', 1, b'h', 0, b'a', b'0', b'h', 1, b'a', b'.'];
    refused(&archive("cycle", &cycle, &[]), "already inside another");
    // A persistent id printed in an error stays short, whatever it shares.
    let shared = [&[0x80, 2][..], &[b']', b'q', 0], &[b'h', 0, b'h', 0, 0x86, b'q', 0].repeat(60), b"Q."].concat();
    let (r, _) = peak_of(|| read(&archive("shared", &shared, &[])));
    let e = r.err().unwrap().0;
    assert!(e.contains("a persistent id that is not a tuple") || e.contains("persistent id other than"), "{e}");
    assert!(e.len() < 400, "{} characters: {e}", e.len());
}

#[test]
fn damaged_archives_and_pickles_are_refused_naming_the_file() {
    let data = floats(4);
    let good = one_tensor(binint(4), binint(0), tuple(&[binint(4)]), tuple(&[binint(1)]));
    refused(&archive("truncated", &good[..good.len() / 2], &[("0", &data)]), "truncated");
    refused(&archive("no-storage", &good, &[]), "has no entry 'a/data/0'");
    refused(&archive("garbled", &[0x80, 2, 0xff], &[]), "opcode 0xff");

    // An entry whose size, in the central directory, runs past the end of the file.
    let p = archive("past-end", &good, &[("0", &data)]);
    let mut bytes = std::fs::read(&p).unwrap();
    let cd = bytes.windows(4).rposition(|w| w == [0x50, 0x4b, 0x01, 0x02]).unwrap(); // last entry: data/0
    for at in [cd + 20, cd + 24] {
        bytes[at..at + 4].copy_from_slice(&0xFFFF_FF00u32.to_le_bytes());
    }
    std::fs::write(&p, &bytes).unwrap();
    refused(&p, "runs past the end");

    let p = archive("crc", &good, &[("0", &data)]);
    let mut bytes = std::fs::read(&p).unwrap();
    let at = bytes.windows(data.len()).position(|w| w == data).unwrap();
    bytes[at] ^= 1;
    std::fs::write(&p, &bytes).unwrap();
    refused(&p, "CRC-32");

    let p = tmp("legacy");
    std::fs::write(&p, [0x80, 2, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e])
        .unwrap();
    refused(&p, "torch.save(torch.load(f, weights_only=True), f2)");
    let p = tmp("text");
    std::fs::write(&p, b"not a checkpoint").unwrap();
    refused(&p, "not a torch.save file");
}

#[test]
fn written_state_dicts_read_back_exactly() {
    let half: Vec<u8> = [0.5f32, -2.0, 3.25].iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect();
    let tensors = vec![
        Tensor { name: "conv.weight".into(), dtype: DType::F32, shape: vec![2, 1, 3], data: floats(6) },
        Tensor {
            name: "bn.num_batches_tracked".into(),
            dtype: DType::I64,
            shape: vec![],
            data: 7i64.to_le_bytes().to_vec(),
        },
        Tensor { name: "empty".into(), dtype: DType::F32, shape: vec![0, 3], data: vec![] },
        Tensor { name: "h".into(), dtype: DType::F16, shape: vec![3], data: half },
    ];
    let p = tmp("written.pt");
    write(&p, &tensors).unwrap();
    let back = read(&p).unwrap();
    assert_eq!(back.tensors[..3], tensors[..3]);
    let h: Vec<u8> = [0.5f32, -2.0, 3.25].iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(back.tensors[3], Tensor { name: "h".into(), dtype: DType::F32, shape: vec![3], data: h });
    std::fs::remove_file(p).unwrap();
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test/fixtures").join(name)
}

fn values(t: &Tensor) -> Vec<f32> {
    t.data.chunks(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

#[test]
fn pytorch_files_read_alike_in_every_layout() {
    let f32s = read(&fixture("torch_pico_f32.pt")).unwrap();
    assert!(f32s.nested_in.is_empty() && !f32s.stripped_ddp);
    let nbt = f32s.tensors.iter().find(|t| t.name == "bn1.num_batches_tracked").unwrap();
    assert_eq!((nbt.dtype, &nbt.data[..]), (DType::I64, &11i64.to_le_bytes()[..]));
    for (file, nested) in [("torch_pico_views.pt", ""), ("torch_pico_ddp_nested.pt", "state_dict")] {
        let other = read(&fixture(file)).unwrap();
        assert_eq!((other.nested_in.as_str(), other.stripped_ddp), (nested, !nested.is_empty()), "{file}");
        assert_eq!(other.tensors, f32s.tensors, "{file}");
    }
    // f16 / bf16 hold the f32 weights rounded: relative error under 2^-11 / 2^-8, plus
    // f16's subnormal step (2^-24) for the tiny running means.
    for (file, tol) in [("torch_pico_f16.pt", 1.0 / 2048.0), ("torch_pico_bf16.pt", 1.0 / 256.0)] {
        let low = read(&fixture(file)).unwrap();
        for (a, b) in low.tensors.iter().zip(&f32s.tensors) {
            assert_eq!((&a.name, a.dtype, &a.shape), (&b.name, b.dtype, &b.shape), "{file}");
            if a.dtype == DType::F32 {
                for (x, y) in values(a).into_iter().zip(values(b)) {
                    assert!((x - y).abs() <= tol * y.abs() + 2f32.powi(-24), "{file} {}: {x} vs {y}", a.name);
                }
            }
        }
    }
    for (file, global) in [("torch_evil_system.pt", "posix.system"), ("torch_evil_eval.pt", "__builtin__.eval")] {
        let e = read(&fixture(file)).err().unwrap().0;
        assert!(e.contains(&format!("refuses global '{global}'")), "{e}");
    }
    assert!(read(&fixture("torch_legacy.pt")).err().unwrap().0.contains("legacy (pre-1.6)"));
}

#[test]
fn an_arcface_torch_training_checkpoint_yields_its_backbone() {
    // Optimizer and scheduler state (int keys, floats, lists, None) parse; only the backbone is kept.
    let l = read(&fixture("torch_arcface_checkpoint.pt")).unwrap();
    assert_eq!(l.nested_in, "state_dict_backbone");
    let got: Vec<(&str, &[u64])> = l.tensors.iter().map(|t| (t.name.as_str(), &t.shape[..])).collect();
    assert_eq!(got, [("weight", &[2, 3][..]), ("bias", &[2][..])]);
}
