//! Compiles maskfr's CUDA kernel sources (crates/cuda/kernels, the files NVRTC compiles) as
//! C++ for the CPU with the stand-in header src/emu.h, plus this crate's own faulty kernels
//! (src/faults.cu, for the emulator's tests). Per kernel it generates a trampoline that
//! unpacks a cuLaunchKernel-style parameter array by the kernel's signature, and a table
//! entry with that signature, so a launch is checked against it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

struct Kernel {
    name: String,
    /// (type, full declaration) of each parameter.
    params: Vec<(String, String)>,
    barriers: bool,
}

/// `extern __shared__ T name[];` → a pointer to the launch's shared buffer (a block-scope
/// `extern` would name one global symbol for every block).
fn shared_to_pointer(src: &str) -> String {
    let mut out = String::new();
    let mut rest = src;
    while let Some(at) = rest.find("extern __shared__ ") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "extern __shared__ ".len()..];
        let end = after.find(';').expect("extern __shared__ declaration ends with ;");
        let decl = after[..end].trim().trim_end_matches("[]").trim();
        let (ty, name) = decl.rsplit_once(' ').expect("extern __shared__ T name[]");
        write!(out, "{ty}* {name} = emu_shared<{ty}>()").unwrap();
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

fn kernels(src: &str) -> Vec<Kernel> {
    let marker = "extern \"C\" __global__ void ";
    let parts: Vec<&str> = src.split(marker).skip(1).collect();
    parts
        .iter()
        .map(|part| {
            let open = part.find('(').unwrap();
            let close = part.find(')').unwrap();
            let name = part[..open].trim().to_string();
            let params = part[open + 1..close]
                .split(',')
                .map(|d| {
                    let d = d.trim();
                    let cut = d.rfind(|c: char| !(c.is_alphanumeric() || c == '_')).expect("a named parameter");
                    (d[..=cut].trim().to_string(), d.to_string())
                })
                .collect();
            let body = &part[close..];
            let barriers = ["__syncthreads", "__shared__", "block_sum", "block_max"].iter().any(|w| body.contains(w));
            Kernel { name, params, barriers }
        })
        .collect()
}

fn module(name: &str, path: &Path, out: &Path, entries: &mut Vec<String>) -> PathBuf {
    let src = std::fs::read_to_string(path).unwrap();
    let mut cpp = format!("#include \"emu.h\"\n#line 1 \"{}\"\n{}\n", path.display(), shared_to_pointer(&src));
    for k in kernels(&src) {
        let n = &k.name;
        let args: Vec<String> =
            k.params.iter().enumerate().map(|(i, (ty, _))| format!("*reinterpret_cast<{ty}*>(p[{i}])")).collect();
        let sizes: Vec<String> = k.params.iter().map(|(ty, _)| format!("sizeof({ty})")).collect();
        let decls: Vec<String> = k.params.iter().map(|(_, d)| format!("{d:?}")).collect();
        write!(
            cpp,
            "static void emu_trampoline_{n}(void** p) {{ {n}({}); }}\n\
             static const unsigned emu_sizes_{n}[] = {{{}}};\n\
             static const char* const emu_decls_{n}[] = {{{}}};\n\
             extern \"C\" const emu::Kernel emu_kernel_{n} = {{\"{name}\", \"{n}\", emu_trampoline_{n}, {}, {}, emu_sizes_{n}, emu_decls_{n}}};\n",
            args.join(", "),
            sizes.join(", "),
            decls.join(", "),
            i32::from(k.barriers),
            k.params.len(),
        )
        .unwrap();
        entries.push(n.clone());
    }
    let file = out.join(format!("{name}.cpp"));
    std::fs::write(&file, cpp).unwrap();
    file
}

fn main() {
    let here = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let cuda = here.join("../cuda/kernels");
    let mut sources: Vec<PathBuf> = std::fs::read_dir(&cuda)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cu"))
        .collect();
    sources.sort();
    sources.push(here.join("src/faults.cu"));
    let mut entries = Vec::new();
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .std("c++20")
        .opt_level(2)
        .flag("-U_FORTIFY_SOURCE") // its longjmp check refuses the jump from a fiber's stack
        .flag("-fno-strict-aliasing")
        .warnings(false)
        .include(here.join("src"))
        .include(&cuda)
        .file(here.join("src/runtime.cpp"));
    for s in &sources {
        println!("cargo:rerun-if-changed={}", s.display());
        let name = s.file_stem().unwrap().to_str().unwrap();
        build.file(module(name, s, &out, &mut entries));
    }
    let mut table = String::from("#include \"emu.h\"\n");
    for e in &entries {
        writeln!(table, "extern \"C\" const emu::Kernel emu_kernel_{e};").unwrap();
    }
    let refs: Vec<String> = entries.iter().map(|e| format!("&emu_kernel_{e}")).collect();
    writeln!(table, "extern \"C\" const emu::Kernel* const emu_kernels[] = {{{}}};", refs.join(", ")).unwrap();
    writeln!(table, "extern \"C\" const unsigned long emu_kernel_count = {};", entries.len()).unwrap();
    std::fs::write(out.join("table.cpp"), table).unwrap();
    build.file(out.join("table.cpp"));
    println!("cargo:rerun-if-changed={}", cuda.display());
    for f in ["src/emu.h", "src/runtime.cpp", "build.rs"] {
        println!("cargo:rerun-if-changed={f}");
    }
    build.compile("maskfr_cuda_emu");
}
