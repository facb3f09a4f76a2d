// The emulated device's runtime: guarded memory, launches, fault reports.
//
// Memory: every allocation is its own mapping with an inaccessible page before and after,
// the data ending exactly at the trailing guard, so the first byte past a block faults.
// A tensor usually fills only part of its block (the caching allocator rounds sizes up): the
// rest is poison (0xFF bytes: a NaN as f32 and f64), so reading it shows up as non-finite
// results, and a launch fails if a kernel changed it (checked for every pointer parameter).
// A fault inside a kernel ends the launch (siglongjmp from the SIGSEGV handler) with a report
// naming the kernel, block, thread, the buffer and the parameter that points into it.
// Guard pages rather than bounds-checked pointer wrappers: the kernels keep their raw pointer
// parameters (the code under test is the code that ships) and the MMU checks every access at
// no cost; the price is granularity, so inside a block's slack writes are caught afterwards
// and reads see poison instead of faulting.
//
// Threads: a block's threads are fibers on the launching OS thread, switched only at
// __syncthreads, in thread order (or the reverse: emu_set_reverse, MASKFR_CUDA_EMULATE_ORDER=
// reverse). So a read of shared memory that a later-running thread writes in the same
// barrier interval sees the value from before (poison at the start of each block),
// deterministically, which is how a missing barrier shows; the two orders catch reads of
// higher and of lower threads' slots. Kernels without barriers (build.rs
// tells) run each thread as a plain call. Blocks run in order, one at a time.
#include "emu.h"

#include <csetjmp>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>
#include <vector>

// The fiber switch: a few instructions on x86-64; elsewhere glibc's swapcontext (a signal
// mask system call per switch: slower, same behaviour).
#if defined(__x86_64__) && !defined(EMU_UCONTEXT)
#define EMU_ASM_SWITCH 1
#endif

namespace emu {

thread_local Thread current;

namespace {

const size_t PAGE = 4096;
const unsigned char POISON = 0xFF;

struct Region {
    uintptr_t map;     // the mapping, guards included
    size_t map_bytes;
    uintptr_t data;    // what the caller got
    size_t bytes;      // its size (data + bytes is the trailing guard)
    size_t used;       // bytes the tensor in it uses; the rest is poison
    const char* what;  // "device memory", "shared memory", "a thread's stack"
};

std::mutex regions_lock;
std::map<uintptr_t, Region> regions;  // by data address

Region map_guarded(size_t bytes, const char* what) {
    size_t body = (bytes + PAGE - 1) / PAGE * PAGE;
    size_t total = body + 2 * PAGE;
    void* m = mmap(nullptr, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return Region{0, 0, 0, 0, 0, what};
    uintptr_t base = (uintptr_t)m;
    if (body > 0 && mprotect((void*)(base + PAGE), body, PROT_READ | PROT_WRITE) != 0) {
        munmap(m, total);
        return Region{0, 0, 0, 0, 0, what};
    }
    Region r{base, total, base + PAGE + body - bytes, bytes, bytes, what};
    return r;
}

void remember(const Region& r) {
    std::lock_guard<std::mutex> g(regions_lock);
    regions[r.data] = r;
}

// The region whose mapping holds `a`, else the nearest one: (region, found).
bool nearest(uintptr_t a, Region& out) {
    std::lock_guard<std::mutex> g(regions_lock);
    if (regions.empty()) return false;
    auto it = regions.upper_bound(a);
    uintptr_t best = UINTPTR_MAX;
    auto consider = [&](const Region& r) {
        uintptr_t d = a < r.data ? r.data - a : (a < r.data + r.bytes ? 0 : a - (r.data + r.bytes) + 1);
        if (d < best) {
            best = d;
            out = r;
        }
    };
    if (it != regions.end()) consider(it->second);
    if (it != regions.begin()) consider(std::prev(it)->second);
    return true;
}

#ifdef EMU_ASM_SWITCH
// Saves the callee-saved registers on the current stack, its pointer in *save_sp, and
// continues on to_sp (where a previous emu_switch or fresh_stack left the same layout).
extern "C" void emu_switch(void** save_sp, void* to_sp);
asm(R"(
.text
.globl emu_switch
.type emu_switch,@function
emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
.size emu_switch, .-emu_switch
)");
#else
// *save_sp and to_sp are ucontext_t storage (set up by fresh_stack and main_context).
void emu_switch(void** save_sp, void* to_sp) { swapcontext((ucontext_t*)*save_sp, (ucontext_t*)to_sp); }
#endif

const size_t STACK = 256 << 10;
enum State { READY, WAITING, DONE };

// One launch on this OS thread.
struct Launch {
    const Kernel* k;
    void** params;
    dim3 grid, block;
    size_t shared_bytes;
    void* shared;
    bool fibers;
    // fibers
    std::vector<void*> sp;
    std::vector<State> state;
    void* main_sp;
    unsigned cur;
    sigjmp_buf fail;
    char msg[1024];
};

thread_local Launch* running = nullptr;
std::atomic<bool> reverse{[] {
    const char* o = getenv("MASKFR_CUDA_EMULATE_ORDER");
    return o != nullptr && std::strcmp(o, "reverse") == 0;
}()};
thread_local std::vector<Region> stacks;  // reused across launches
thread_local Region shared_region{0, 0, 0, 0, 0, nullptr};

[[noreturn]] void fail(const char* fmt, ...) {
    Launch* l = running;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->msg, sizeof l->msg, fmt, ap);
    va_end(ap);
    siglongjmp(l->fail, 1);
}

void where(char* out, size_t n) {
    const Thread& t = current;
    snprintf(out, n, "block (%u,%u,%u) thread (%u,%u,%u)", t.block.x, t.block.y, t.block.z, t.thread.x, t.thread.y,
             t.thread.z);
}

void set_thread(unsigned i) {
    const dim3& b = current.block_dim;
    current.thread = dim3{i % b.x, (i / b.x) % b.y, i / (b.x * b.y)};
}

void fiber_main() {
    Launch* l = running;
    l->k->trampoline(l->params);
    l->state[l->cur] = DONE;
    emu_switch(&l->sp[l->cur], l->main_sp);
    __builtin_unreachable();
}

#ifndef EMU_ASM_SWITCH
thread_local std::vector<ucontext_t> contexts;  // one per fiber, beside `stacks`
thread_local ucontext_t main_uc;
#endif

// Where the scheduler's own context is saved while a fiber runs.
void* main_context() {
#ifdef EMU_ASM_SWITCH
    return nullptr;  // emu_switch writes the stack pointer there
#else
    return &main_uc;
#endif
}

void* fresh_stack(unsigned i) {
    if (stacks.size() <= i) {
        Region r = map_guarded(STACK, "a thread's stack");
        if (!r.data) fail("cannot map a stack for emulated thread %u", i);
        remember(r);
        stacks.push_back(r);
    }
#ifndef EMU_ASM_SWITCH
    contexts.reserve(1024);  // a block's most threads: l.sp keeps pointers into it
    if (contexts.size() <= i) contexts.resize(i + 1);
    ucontext_t* uc = &contexts[i];
    getcontext(uc);
    uc->uc_stack.ss_sp = (void*)stacks[i].data;
    uc->uc_stack.ss_size = stacks[i].bytes;
    uc->uc_link = nullptr;
    makecontext(uc, fiber_main, 0);
    return uc;
#endif
    uintptr_t top = (stacks[i].data + stacks[i].bytes) & ~(uintptr_t)15;
    void** s = (void**)top;
    *--s = nullptr;                      // fiber_main's return address (it never returns)
    *--s = (void*)&fiber_main;           // where emu_switch's ret goes
    for (int r = 0; r < 6; r++) *--s = nullptr;  // rbp, rbx, r12–r15
    return s;
}

void run_block(Launch& l) {
    unsigned n = l.block.x * l.block.y * l.block.z;
    if (l.shared_bytes) std::memset(l.shared, POISON, l.shared_bytes);
    const bool back = reverse.load();
    auto nth = [&](unsigned k) { return back ? n - 1 - k : k; };
    if (!l.fibers) {
        for (unsigned k = 0; k < n; k++) {
            unsigned i = nth(k);
            set_thread(i);
            l.k->trampoline(l.params);
        }
        return;
    }
    l.sp.resize(n);
    l.state.assign(n, READY);
    for (unsigned i = 0; i < n; i++) l.sp[i] = fresh_stack(i);
    l.main_sp = main_context();
    for (;;) {
        unsigned done = 0;
        for (unsigned k = 0; k < n; k++) {
            unsigned i = nth(k);
            if (l.state[i] == DONE) {
                done++;
                continue;
            }
            l.cur = i;
            set_thread(i);
            emu_switch(&l.main_sp, l.sp[i]);
            if (l.state[i] == DONE) done++;
        }
        if (done == n) return;
        if (done > 0) {
            for (unsigned i = 0; i < n; i++)
                if (l.state[i] == DONE) {
                    set_thread(i);
                    char w[96];
                    where(w, sizeof w);
                    fail("%s: %s returned while other threads of its block wait at __syncthreads (a barrier "
                         "every thread must reach)",
                         l.k->name, w);
                }
        }
        for (unsigned i = 0; i < n; i++) l.state[i] = READY;
    }
}

struct sigaction previous;

void on_segv(int sig, siginfo_t* si, void* uctx) {
    Launch* l = running;
    if (!l) {
        // Not ours: whoever handled SIGSEGV before (Rust's stack-overflow guard, V8) decides.
        if ((previous.sa_flags & SA_SIGINFO) && previous.sa_sigaction) {
            previous.sa_sigaction(sig, si, uctx);
        } else if (previous.sa_handler != SIG_IGN && previous.sa_handler != SIG_DFL) {
            previous.sa_handler(sig);
        } else {
            signal(sig, SIG_DFL);  // the faulting access repeats and ends the process
        }
        return;
    }
    uintptr_t a = (uintptr_t)si->si_addr;
#if defined(__x86_64__)
    const char* kind = (((ucontext_t*)uctx)->uc_mcontext.gregs[REG_ERR] & 2) ? "write" : "read";
#else
    const char* kind = "access";
#endif
    char w[96], buf[600];
    where(w, sizeof w);
    Region r;
    if (!nearest(a, r)) {
        fail("%s: %s: invalid %s at %#lx (no device memory is allocated)", l->k->name, w, kind,
             (unsigned long)a);
    }
    long off = (long)(a - r.data);
    const char* rel = a < r.data ? "before the start of" : (a >= r.data + r.bytes ? "past the end of" : "inside");
    long by = a < r.data ? (long)(r.data - a) : (a >= r.data + r.bytes ? (long)(a - r.data - r.bytes) : off);
    snprintf(buf, sizeof buf, "%ld bytes %s %s at %#lx (%zu bytes)", by, rel, r.what, (unsigned long)r.data, r.bytes);
    for (int i = 0; i < l->k->params; i++) {
        if (!strchr(l->k->decls[i], '*')) continue;
        uintptr_t p = *(uintptr_t*)l->params[i];
        if (p >= r.data && p < r.data + r.bytes + 1) {
            size_t len = strlen(buf);
            snprintf(buf + len, sizeof buf - len, ", the buffer of parameter %d `%s`", i, l->k->decls[i]);
            break;
        }
    }
    fail("%s: %s: invalid %s, %s", l->k->name, w, kind, buf);
}

void install_handler() {
    static std::once_flag once;
    std::call_once(once, [] {
        struct sigaction sa;
        std::memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_segv;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGSEGV, &sa, &previous);
    });
    // The handler runs on an alternate stack, so a fiber's stack overflow is reported too.
    thread_local bool alt = false;
    if (!alt) {
        stack_t cur;
        if (sigaltstack(nullptr, &cur) == 0 && (cur.ss_flags & SS_DISABLE)) {
            stack_t ss;
            ss.ss_size = 64 << 10;
            ss.ss_sp = malloc(ss.ss_size);
            ss.ss_flags = 0;
            sigaltstack(&ss, nullptr);
        }
        alt = true;
    }
}

// After a launch: the poison after each pointer parameter's tensor must be intact.
void check_tails(Launch& l) {
    for (int i = 0; i < l.k->params; i++) {
        if (!strchr(l.k->decls[i], '*')) continue;
        uintptr_t p = *(uintptr_t*)l.params[i];
        if (!p) continue;
        Region r;
        {
            std::lock_guard<std::mutex> g(regions_lock);
            auto it = regions.upper_bound(p);
            if (it == regions.begin()) continue;
            r = std::prev(it)->second;
        }
        if (p >= r.data + r.bytes || std::strcmp(r.what, "device memory") != 0) continue;
        const unsigned char* b = (const unsigned char*)r.data;
        for (size_t j = r.used; j < r.bytes; j++) {
            if (b[j] != POISON) {
                std::memset((void*)(r.data + r.used), POISON, r.bytes - r.used);
                fail("%s wrote past the end of the tensor of parameter %d `%s`: byte %zu of a %zu-byte tensor "
                     "(its block holds %zu)",
                     l.k->name, i, l.k->decls[i], j, r.used, r.bytes);
            }
        }
    }
}

}  // namespace

void syncthreads() {
    Launch* l = running;
    if (!l->fibers) {
        fail("%s calls __syncthreads but build.rs classed it as barrier-free (it looks for __syncthreads, "
             "__shared__, block_sum and block_max in the kernel's body)",
             l->k->name);
    }
    l->state[l->cur] = WAITING;
    emu_switch(&l->sp[l->cur], l->main_sp);
}

void* shared() {
    Launch* l = running;
    return l->shared;
}

}  // namespace emu

using namespace emu;

extern "C" void emu_set_reverse(int on) { reverse.store(on != 0); }

extern "C" void* emu_alloc(size_t bytes) {
    Region r = map_guarded(bytes, "device memory");
    if (!r.data) return nullptr;
    std::memset((void*)r.data, POISON, bytes);
    remember(r);
    return (void*)r.data;
}

extern "C" void emu_free(void* p) {
    Region r;
    {
        std::lock_guard<std::mutex> g(regions_lock);
        auto it = regions.find((uintptr_t)p);
        if (it == regions.end()) return;
        r = it->second;
        regions.erase(it);
    }
    munmap((void*)r.map, r.map_bytes);
}

// The block at `p` now holds a tensor of `used` bytes: all of it is poisoned (fresh device
// memory holds garbage; reading before writing shows as NaN).
extern "C" int emu_mark(void* p, size_t used) {
    std::lock_guard<std::mutex> g(regions_lock);
    auto it = regions.find((uintptr_t)p);
    if (it == regions.end() || used > it->second.bytes) return 1;
    it->second.used = used;
    std::memset(p, POISON, it->second.bytes);
    return 0;
}

// 0 when [p, p + bytes) lies inside one allocation, else a message in `err`.
extern "C" int emu_check_range(uintptr_t p, size_t bytes, char* err, size_t n) {
    std::lock_guard<std::mutex> g(regions_lock);
    auto it = regions.upper_bound(p);
    if (it != regions.begin()) {
        const Region& r = std::prev(it)->second;
        // `bytes <= end - p`, not `p + bytes <= end`: a huge `bytes` would wrap the sum.
        if (p >= r.data && p <= r.data + r.bytes && bytes <= r.data + r.bytes - p && !std::strcmp(r.what, "device memory")) return 0;
        if (p >= r.data && p < r.data + r.bytes) {
            snprintf(err, n, "%zu bytes at offset %zu of a %zu-byte block run past its end", bytes,
                     (size_t)(p - r.data), r.bytes);
            return 1;
        }
    }
    snprintf(err, n, "%#lx is not in any device allocation", (unsigned long)p);
    return 1;
}

extern "C" int emu_launch(const Kernel* k, const unsigned* grid, const unsigned* block, size_t shared_bytes,
                          void** params, char* err, size_t errlen) {
    install_handler();
    Launch l;
    l.k = k;
    l.params = params;
    l.grid = dim3{grid[0], grid[1], grid[2]};
    l.block = dim3{block[0], block[1], block[2]};
    l.shared_bytes = shared_bytes;
    l.fibers = k->barriers != 0;
    unsigned long threads = (unsigned long)block[0] * block[1] * block[2];
    // The limits every GPU maskfr targets enforces (cuLaunchKernel refuses these).
    if (threads == 0 || threads > 1024 || block[2] > 64 || grid[1] > 65535 || grid[2] > 65535 ||
        grid[0] > 2147483647u || shared_bytes > 48 * 1024) {
        snprintf(err, errlen,
                 "%s: launch of grid (%u,%u,%u), block (%u,%u,%u), %zu bytes of shared memory is past CUDA's "
                 "limits (1024 threads, 48 KiB of dynamic shared memory without opting in)",
                 k->name, grid[0], grid[1], grid[2], block[0], block[1], block[2], shared_bytes);
        return 1;
    }
    if (!shared_region.data || shared_region.bytes != shared_bytes) {  // sized exactly: one byte more faults
        if (shared_region.data) emu_free((void*)shared_region.data);
        shared_region = map_guarded(shared_bytes, "shared memory");
        shared_region.what = "shared memory";
        remember(shared_region);
    }
    l.shared = (void*)shared_region.data;
    current.grid_dim = l.grid;
    current.block_dim = l.block;
    running = &l;
    if (sigsetjmp(l.fail, 1)) {
        running = nullptr;
        snprintf(err, errlen, "%s", l.msg);
        return 1;
    }
    for (unsigned z = 0; z < l.grid.z; z++)
        for (unsigned y = 0; y < l.grid.y; y++)
            for (unsigned x = 0; x < l.grid.x; x++) {
                current.block = dim3{x, y, z};
                run_block(l);
            }
    check_tails(l);
    running = nullptr;
    return 0;
}
