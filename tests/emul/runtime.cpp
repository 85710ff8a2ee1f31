/* tests/emul/runtime.cpp: the emulated CUDA runtime: one "device" whose memory is host memory,
 * synchronous streams, and kernel launches that run every block's threads as fibers on the
 * calling thread (round-robin, switching only at barriers), so 256-thread blocks cost
 * microseconds rather than the milliseconds OS threads take to meet at a barrier. Blocks of a
 * kernel without barriers run as plain calls after the first. */
#include <sanitizer/common_interface_defs.h>
#include <sys/mman.h>
#include <ucontext.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

#include "tests/emul/include/cuda_runtime_api.h"

#if defined(__SANITIZE_ADDRESS__)
#define S_ASAN 1
#else
#define S_ASAN 0
#endif

namespace {

thread_local cudaError_t s_last = cudaSuccess; /* what cudaGetLastError returns next */
std::mutex s_optin_mu;
std::map<const void *, int> s_optin; /* kernel -> dynamic shared memory it opted into */

constexpr int kDefaultSmem = 48 * 1024;
constexpr int kOptinSmem = 227 * 1024; /* an H100's per-block limit */
/* Per fiber; ASan's redzones need more room. */
constexpr size_t kStack = S_ASAN ? 256 * 1024 : 64 * 1024;

cudaError_t s_fail(cudaError_t e) {
    s_last = e;
    return e;
}

/* Switching stacks. On x86-64 a few instructions save the callee-saved registers and swap
 * stack pointers (swapcontext would make a sigprocmask system call per switch, and a block of
 * 256 threads switches thousands of times); elsewhere ucontext does it. */
#if defined(__x86_64__)
extern "C" void dq_emul_switch(void **save_sp, void *to_sp);
asm(R"(
    .text
    .globl dq_emul_switch
    .type dq_emul_switch, @function
dq_emul_switch:
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
    .size dq_emul_switch, .-dq_emul_switch
    .section .note.GNU-stack,"",@progbits
    .text
)");
struct Context {
    void *sp = nullptr;
};
/* A fresh stack whose first switch "returns" into entry with the ABI's alignment. */
void s_context_start(Context *c, char *stack, size_t size, void (*entry)()) {
    uintptr_t top = ((uintptr_t) (stack + size)) & ~(uintptr_t) 15;
    void **sp = (void **) top;
    *--sp = nullptr;          /* entry's return address: it never returns */
    *--sp = (void *) entry;   /* where dq_emul_switch's ret goes */
    for (int i = 0; i < 6; i++) *--sp = nullptr; /* rbp rbx r12 r13 r14 r15 */
    c->sp = sp;
}
void s_switch(Context *save, Context *to) { dq_emul_switch(&save->sp, to->sp); }
#else
struct Context {
    ucontext_t uc;
};
void s_context_start(Context *c, char *stack, size_t size, void (*entry)()) {
    getcontext(&c->uc);
    c->uc.uc_stack.ss_sp = stack;
    c->uc.uc_stack.ss_size = size;
    c->uc.uc_link = nullptr;
    makecontext(&c->uc, entry, 0);
}
void s_switch(Context *save, Context *to) { swapcontext(&save->uc, &to->uc); }
#endif

/* A fiber per thread of the block. Waiting: 0 running or runnable, 1 at __syncthreads, 2 at
 * __syncwarp. */
struct Fiber {
    Context ctx;
    char *stack = nullptr;
    int waiting = 0;
    bool done = false;
    void *asan_fake = nullptr;
};

struct Scheduler {
    Context main;
    std::vector<Fiber> fibers;
    const std::function<void()> *body = nullptr;
    unsigned current = 0;
    bool direct = false;   /* running threads as plain calls: a barrier here is fatal */
    bool barriers = false; /* a fiber of this launch waited at a barrier */
    /* ASan's view of the stacks (fiber-switch annotations): the scheduler's stack. */
    void *asan_fake = nullptr;
    const void *main_bottom = nullptr;
    size_t main_size = 0;
};
thread_local Scheduler *s_sched;

/* ASan must be told about every stack switch, or it takes the fiber stacks for corruption. */
inline void s_asan_leave(void **fake, const void *bottom, size_t size) {
#if S_ASAN
    __sanitizer_start_switch_fiber(fake, bottom, size);
#else
    (void) fake, (void) bottom, (void) size;
#endif
}
inline void s_asan_arrive(void *fake, const void **old_bottom, size_t *old_size) {
#if S_ASAN
    __sanitizer_finish_switch_fiber(fake, old_bottom, old_size);
#else
    (void) fake, (void) old_bottom, (void) old_size;
#endif
}

/* Switches from the running fiber back to the scheduler. */
void s_yield(int waiting) {
    Scheduler *s = s_sched;
    if (s->direct) {
        fprintf(stderr, "cuda emulation: a kernel reached a barrier in block (%u,%u) but not in "
                        "block (0,0); the emulation runs blocks without barriers as plain calls\n",
                blockIdx.x, blockIdx.y);
        exit(3);
    }
    s->barriers = true;
    Fiber &f = s->fibers[s->current];
    f.waiting = waiting;
    s_asan_leave(&f.asan_fake, s->main_bottom, s->main_size);
    s_switch(&f.ctx, &s->main);
    s_asan_arrive(f.asan_fake, &s->main_bottom, &s->main_size);
}

void s_fiber_entry() {
    Scheduler *s = s_sched;
    s_asan_arrive(nullptr, &s->main_bottom, &s->main_size);
    (*s->body)();
    Fiber &f = s->fibers[s->current];
    f.done = true;
    s_asan_leave(nullptr, s->main_bottom, s->main_size); /* this stack is finished */
    s_switch(&f.ctx, &s->main);
    abort(); /* never resumed */
}

/* Runs fiber i until it yields or ends. */
void s_resume(Scheduler *s, unsigned i) {
    s->current = i;
    Fiber &f = s->fibers[i];
    f.waiting = 0;
    s_asan_leave(&s->asan_fake, f.stack, kStack);
    s_switch(&s->main, &f.ctx);
    s_asan_arrive(s->asan_fake, nullptr, nullptr);
}

/* A block whose kernel has no barriers: each thread's body in turn, as a plain call. */
void s_run_block_direct(Scheduler *s, unsigned n) {
    s->direct = true;
    for (unsigned i = 0; i < n; i++) {
        threadIdx = dim3(i);
        (*s->body)();
    }
    s->direct = false;
}

/* One block: every fiber runs until all are done; barriers release when every unfinished
 * thread (of the block, or of the warp) waits there. A wait nobody can release is a kernel
 * bug (a barrier not reached by all): reported, and the process exits. */
void s_run_block(Scheduler *s, unsigned n) {
    for (unsigned i = 0; i < n; i++) {
        Fiber &f = s->fibers[i];
        f.done = false;
        f.waiting = 0;
        /* Stack tops staggered by 64-byte lines: at a common alignment every fiber's hot
         * frames would fall in the same cache sets and evict each other at each switch. */
        size_t stagger = (size_t) (i % 64) * 64 + (size_t) (i / 64 % 4) * 4096;
        s_context_start(&f.ctx, f.stack, kStack - stagger, s_fiber_entry);
    }
    threadIdx = dim3(0);
    for (;;) {
        bool progressed = false;
        for (unsigned i = 0; i < n; i++) {
            Fiber &f = s->fibers[i];
            if (f.done || f.waiting) continue;
            threadIdx = dim3(i);
            s_resume(s, i);
            progressed = true;
        }
        if (progressed) continue;
        unsigned live = 0, at_block = 0;
        for (unsigned i = 0; i < n; i++) {
            live += !s->fibers[i].done;
            at_block += s->fibers[i].waiting == 1;
        }
        if (live == 0) return;
        if (at_block == live) {
            for (unsigned i = 0; i < n; i++) s->fibers[i].waiting = 0;
            continue;
        }
        bool released = false;
        for (unsigned w = 0; w * 32 < n; w++) {
            unsigned wl = 0, ww = 0;
            for (unsigned i = w * 32; i < w * 32 + 32 && i < n; i++) {
                wl += !s->fibers[i].done;
                ww += s->fibers[i].waiting == 2;
            }
            if (wl && ww == wl) {
                for (unsigned i = w * 32; i < w * 32 + 32 && i < n; i++) s->fibers[i].waiting = 0;
                released = true;
            }
        }
        if (!released) {
            fprintf(stderr, "cuda emulation: block (%u,%u) deadlocked: threads wait at different "
                            "barriers (a barrier not reached by every thread)\n",
                    blockIdx.x, blockIdx.y);
            exit(3);
        }
    }
}

} // namespace

/* The device-side barriers emul_core.h declares: the running fiber yields to the scheduler. */
void dq_emul_syncthreads() { s_yield(1); }
void dq_emul_syncwarp() { s_yield(2); }

cudaError_t dq_emul_func_set_max_smem(const void *fn, int bytes) {
    if (bytes < 0 || bytes > kOptinSmem) return s_fail(cudaErrorInvalidValue);
    std::lock_guard<std::mutex> g(s_optin_mu);
    s_optin[fn] = bytes;
    return cudaSuccess;
}

/* Runs every block of a launch that passed its checks. */
static void s_run_grid(dim3 grid, dim3 block, size_t smem, const std::function<void()> &body) {
    unsigned n = block.x, warps = n / 32;
    static thread_local std::vector<char *> stacks; /* kept across launches */
    while (stacks.size() < n) {
        void *p = mmap(nullptr, kStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            perror("cuda emulation: mmap");
            exit(3);
        }
        stacks.push_back((char *) p);
    }
    Scheduler s;
    s.body = &body;
    s.fibers.resize(n);
    for (unsigned i = 0; i < n; i++) s.fibers[i].stack = stacks[i];
    /* Dynamic shared memory: exactly smem bytes, 128-byte aligned, poisoned per block. */
    size_t sbytes = smem ? smem : 1;
    unsigned char *sm = static_cast<unsigned char *>(::operator new(sbytes, std::align_val_t(128)));
    std::vector<double> shfl(64 * (size_t) warps);
    std::vector<unsigned> turns(n);
    std::vector<uint32_t> mma(6 * 32 * (size_t) warps);
    std::vector<const void *> rows(32 * (size_t) warps);
    std::vector<std::vector<dq_emul_copy>> async(n);
    dq_emul_block blk{sm, shfl.data(), turns.data(), mma.data(), rows.data(), async.data()};
    Scheduler *outer = s_sched;
    dq_emul_block *outer_blk = dq_emul_cur;
    s_sched = &s;
    dq_emul_cur = &blk;
    blockDim = block;
    gridDim = grid;
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++) {
                std::memset(sm, 0xff, sbytes);
                std::fill(turns.begin(), turns.end(), 0u);
                for (auto &pending : async) pending.clear(); /* a block's own copies only */
                blockIdx = dim3(bx, by, bz);
                /* Block (0,0) runs as fibers; when none of its threads met a barrier, the
                 * kernel has none (ours are unconditional) and the rest run as plain calls. */
                bool first = bx == 0 && by == 0 && bz == 0;
                if (first || s.barriers)
                    s_run_block(&s, n);
                else
                    s_run_block_direct(&s, n);
            }
    s_sched = outer;
    dq_emul_cur = outer_blk;
    ::operator delete(sm, std::align_val_t(128));
}

void dq_emul_launch_kernel(const void *fn, dim3 grid, dim3 block, size_t smem, cudaStream_t st,
                           std::function<void()> body) {
    int allowed = kDefaultSmem;
    {
        std::lock_guard<std::mutex> g(s_optin_mu);
        auto it = s_optin.find(fn);
        if (it != s_optin.end() && it->second > allowed) allowed = it->second;
    }
    if (block.x == 0 || block.x > 1024 || block.y != 1 || block.z != 1 || grid.x == 0 ||
        grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535 || smem > (size_t) allowed) {
        s_last = cudaErrorInvalidConfiguration;
        return;
    }
    if (block.x % 32) {
        fprintf(stderr, "cuda emulation: blocks of %u threads; the emulation needs whole warps\n",
                block.x);
        exit(3);
    }
    dq_emul_stream_op(st, [=] { s_run_grid(grid, block, smem, body); });
}

const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInsufficientDriver: return "CUDA driver version is insufficient";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorNotSupported: return "operation not supported";
    case cudaErrorStreamCaptureUnsupported:
        return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated:
        return "operation failed due to a previous error during capture";
    }
    return "unrecognized error code";
}

cudaError_t cudaGetLastError(void) {
    cudaError_t e = s_last;
    s_last = cudaSuccess;
    return e;
}

cudaError_t cudaGetDeviceCount(int *count) {
    *count = 1;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int device) {
    if (device != 0) return s_fail(cudaErrorInvalidDevice);
    std::memset(prop, 0, sizeof *prop);
    std::snprintf(prop->name, sizeof prop->name, "CUDA emulation on the CPU (tests/emul)");
    prop->totalGlobalMem = (size_t) 16 << 30;
    prop->major = 9;
    prop->minor = 0;
    prop->multiProcessorCount = 1;
    return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int *value, cudaDeviceAttr attr, int device) {
    if (device != 0) return s_fail(cudaErrorInvalidDevice);
    if (attr != cudaDevAttrMaxSharedMemoryPerBlockOptin) return s_fail(cudaErrorInvalidValue);
    *value = kOptinSmem;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
    return device == 0 ? cudaSuccess : s_fail(cudaErrorInvalidDevice);
}

/* Streams: synchronous, except while capturing, when their work is recorded. */
struct CUstream_st {
    bool capturing = false;
    bool spoiled = false; /* an illegal call during the capture: its end fails */
    std::vector<std::function<void()>> recorded;
};
struct CUgraph_st {
    std::vector<std::function<void()>> ops;
};
struct CUgraphExec_st {
    std::vector<std::function<void()>> ops;
};

namespace {
/* The stream this thread is capturing (thread-local capture mode), if any. */
thread_local cudaStream_t s_capture;

/* A call that may not run while this thread captures: spoils the capture, fails. */
bool s_refused_in_capture() {
    if (!s_capture) return false;
    s_capture->spoiled = true;
    s_last = cudaErrorStreamCaptureUnsupported;
    return true;
}
} // namespace

bool dq_emul_refused_in_capture(void) { return s_refused_in_capture(); }

cudaError_t cudaStreamIsCapturing(cudaStream_t st, cudaStreamCaptureStatus *status) {
    if (!st) return s_fail(cudaErrorInvalidValue);
    *status = !st->capturing ? cudaStreamCaptureStatusNone
              : st->spoiled  ? cudaStreamCaptureStatusInvalidated
                             : cudaStreamCaptureStatusActive;
    return cudaSuccess;
}

cudaError_t dq_emul_stream_op(cudaStream_t st, std::function<void()> op) {
    if (st && st->capturing)
        st->recorded.push_back(std::move(op));
    else
        op();
    return cudaSuccess;
}

cudaError_t cudaMalloc(void **p, size_t bytes) {
    if (s_refused_in_capture()) return cudaErrorStreamCaptureUnsupported;
    /* cudaMalloc's 256-byte alignment; contents left as NaN bytes, as garbage would be. */
    size_t rounded = (bytes + 255) & ~(size_t) 255;
    *p = std::aligned_alloc(256, rounded ? rounded : 256);
    if (!*p) return s_fail(cudaErrorMemoryAllocation);
    std::memset(*p, 0xff, rounded ? rounded : 256);
    return cudaSuccess;
}

cudaError_t cudaFree(void *p) {
    if (s_refused_in_capture()) return cudaErrorStreamCaptureUnsupported;
    std::free(p);
    return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
    *free_bytes = *total_bytes = (size_t) 16 << 30;
    return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, cudaMemcpyKind kind) {
    (void) kind;
    if (s_refused_in_capture()) return cudaErrorStreamCaptureUnsupported;
    std::memmove(dst, src, n);
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind kind,
                            cudaStream_t st) {
    if (st && st->capturing) {
        /* Only device-to-device copies are captured (host memory here is pageable). */
        if (kind != cudaMemcpyDeviceToDevice) {
            st->spoiled = true;
            return s_fail(cudaErrorStreamCaptureUnsupported);
        }
        return dq_emul_stream_op(st, [=] { std::memmove(dst, src, n); });
    }
    std::memmove(dst, src, n);
    return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *st, unsigned flags) {
    (void) flags;
    *st = new CUstream_st();
    return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t st) {
    delete st;
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t st) {
    if (st && st->capturing) {
        st->spoiled = true;
        return s_fail(cudaErrorStreamCaptureUnsupported);
    }
    return cudaSuccess;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t st, cudaStreamCaptureMode mode) {
    (void) mode;
    if (!st || st->capturing || s_capture) return s_fail(cudaErrorInvalidValue);
    st->capturing = true;
    st->spoiled = false;
    st->recorded.clear();
    s_capture = st;
    return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t st, cudaGraph_t *graph) {
    *graph = nullptr;
    if (!st || !st->capturing) return s_fail(cudaErrorInvalidValue);
    st->capturing = false;
    s_capture = nullptr;
    std::vector<std::function<void()>> ops;
    ops.swap(st->recorded);
    if (st->spoiled) return s_fail(cudaErrorStreamCaptureInvalidated);
    *graph = new CUgraph_st{std::move(ops)};
    return cudaSuccess;
}

cudaError_t cudaGraphGetNodes(cudaGraph_t graph, cudaGraphNode_t *nodes, size_t *count) {
    if (!graph || nodes) return s_fail(cudaErrorInvalidValue); /* only the count is asked */
    *count = graph->ops.size();
    return cudaSuccess;
}

cudaError_t cudaGraphInstantiateWithParams(cudaGraphExec_t *exec, cudaGraph_t graph,
                                           cudaGraphInstantiateParams *params) {
    if (!graph) return s_fail(cudaErrorInvalidValue);
    *exec = new CUgraphExec_st{graph->ops};
    params->result_out = cudaGraphInstantiateSuccess;
    return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t st) {
    if (!exec) return s_fail(cudaErrorInvalidValue);
    std::vector<std::function<void()>> ops = exec->ops;
    return dq_emul_stream_op(st, [ops] {
        for (const auto &op : ops) op();
    });
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
    delete graph;
    return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
    delete exec;
    return cudaSuccess;
}
