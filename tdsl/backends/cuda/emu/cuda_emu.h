// cuda_emu.h - run unchanged CUDA C kernels on the CPU.
//
// Force-included by tdsl/backends/cuda/emu.py when it builds a .cu file with g++:
//   g++ -std=c++20 -O2 -fopenmp -fPIC -shared -include cuda_emu.h -x c++ k.cu
// nvcc never sees this file, so kernels stay standard CUDA.
//
// Execution model:
//   * Blocks run in parallel (`omp parallel for` over the grid); one OS thread runs one
//     block at a time, so `__shared__` can be `static thread_local`.
//   * Kernels with a barrier: every CUDA thread of the block is a fiber on its own stack.
//     `__syncthreads()` switches back to the block scheduler with _setjmp/_longjmp (a
//     fiber is entered the first time with makecontext/swapcontext; fibers are kept
//     and reused for later blocks). The scheduler resumes the fibers round-robin: a
//     round ends when every thread waits at a barrier (next round) or has exited
//     (block done); a mix is a divergent barrier and is reported, never waited on.
//   * Kernels without a barrier run as a plain loop over the threads of the block.
// Running threads in order up to the next barrier makes a missing barrier fail the same
// way on every run, which is what a test wants.
//
// Not emulated: warp intrinsics (__shfl_sync, __ballot_sync, ...), `extern __shared__`
// (dynamic shared memory), textures, streams, and CUDA's floating-point contraction.

#pragma once

// glibc's fortified longjmp (__longjmp_chk) refuses to jump between stacks.
#undef _FORTIFY_SOURCE

#include <setjmp.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

// ---------------------------------------------------------------- CUDA keywords
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __shared__ static thread_local
#define __constant__ static
// g++ accepts __restrict__ natively.

// ---------------------------------------------------------------- vector types
struct uint3 { unsigned x, y, z; };
struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct int2 { int x, y; };
struct alignas(8) float2 { float x, y; };
struct alignas(16) float4 { float x, y, z, w; };
inline int2 make_int2(int x, int y) { return {x, y}; }
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }

// One OS thread runs one CUDA thread at a time, so the built-ins are per OS thread.
static thread_local uint3 threadIdx, blockIdx;
static thread_local dim3 blockDim, gridDim;
static constexpr int warpSize = 32;

// ---------------------------------------------------------------- math
// CUDA overloads these for float; bring libstdc++'s float overloads to the global scope.
using std::abs, std::ceil, std::cos, std::exp, std::fabs, std::floor, std::fma, std::log,
    std::pow, std::round, std::sin, std::sqrt, std::tanh, std::trunc;
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __saturatef(float x) { return fminf(fmaxf(x, 0.0f), 1.0f); }
template <class T> inline T __ldg(const T* p) { return *p; }

#define CUDA_EMU_MINMAX(T)                                   \
    inline T min(T a, T b) { return b < a ? b : a; }         \
    inline T max(T a, T b) { return a < b ? b : a; }
CUDA_EMU_MINMAX(int)
CUDA_EMU_MINMAX(unsigned)
CUDA_EMU_MINMAX(long)
CUDA_EMU_MINMAX(unsigned long)
CUDA_EMU_MINMAX(long long)
CUDA_EMU_MINMAX(unsigned long long)
#undef CUDA_EMU_MINMAX
// Mixed signedness compares as unsigned, as CUDA's overloads do.
#define CUDA_EMU_MINMAX_MIXED(S, U) \
    inline U min(S a, U b) { return min(static_cast<U>(a), b); } \
    inline U min(U a, S b) { return min(a, static_cast<U>(b)); } \
    inline U max(S a, U b) { return max(static_cast<U>(a), b); } \
    inline U max(U a, S b) { return max(a, static_cast<U>(b)); }
CUDA_EMU_MINMAX_MIXED(int, unsigned)
CUDA_EMU_MINMAX_MIXED(long long, unsigned long long)
#undef CUDA_EMU_MINMAX_MIXED
// fminf/fmaxf semantics (a NaN operand yields the other one), as CUDA's float min/max.
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }
inline double min(float a, double b) { return fmin(a, b); }
inline double max(float a, double b) { return fmax(a, b); }
inline double min(double a, float b) { return fmin(a, b); }
inline double max(double a, float b) { return fmax(a, b); }

// ---------------------------------------------------------------- atomics and fences
// Blocks run on different OS threads, so atomics must be real; relaxed order matches CUDA.
template <class T> inline T atomicAdd(T* p, T v) {
    return std::atomic_ref<T>(*p).fetch_add(v, std::memory_order_relaxed);
}
template <class T> inline T atomicSub(T* p, T v) {
    return std::atomic_ref<T>(*p).fetch_sub(v, std::memory_order_relaxed);
}
template <class T> inline T atomicExch(T* p, T v) {
    return std::atomic_ref<T>(*p).exchange(v, std::memory_order_relaxed);
}
template <class T> inline T atomicCAS(T* p, T expected, T desired) {
    std::atomic_ref<T>(*p).compare_exchange_strong(expected, desired, std::memory_order_relaxed);
    return expected;  // the old value, whether or not the swap happened
}
template <class T> inline T atomicMax(T* p, T v) {
    std::atomic_ref<T> a(*p);
    T old = a.load(std::memory_order_relaxed);
    while (old < v && !a.compare_exchange_weak(old, v, std::memory_order_relaxed)) {}
    return old;
}
template <class T> inline T atomicMin(T* p, T v) {
    std::atomic_ref<T> a(*p);
    T old = a.load(std::memory_order_relaxed);
    while (v < old && !a.compare_exchange_weak(old, v, std::memory_order_relaxed)) {}
    return old;
}
// Within a block the fibers share one OS thread, so no fence is needed there; a real
// fence keeps cross-block publication correct too.
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() {}

// ---------------------------------------------------------------- runtime
namespace cuda_emu {

#ifndef CUDA_EMU_STACK_KB
#define CUDA_EMU_STACK_KB 64
#endif

enum Status : int { OK = 0, BAD_LAUNCH = 1, KERNEL_EXCEPTION = 2, DIVERGENT_BARRIER = 3,
                    BARRIER_IN_LOOP_MODE = 4 };

enum class State : unsigned char { RUNNABLE, AT_BARRIER, DONE };

struct Fiber {
    jmp_buf jb;          // where the fiber is parked inside yield()
    ucontext_t uc;       // only used for the first entry
    uint3 tid;
    State st = State::DONE;
    bool started = false;
    void* stack = nullptr;
    size_t stack_bytes = 0;
};

using Thunk = void (*)(const void*);

struct BarrierInLoopMode {};

struct Runner {
    jmp_buf sched;
    ucontext_t sched_uc;
    std::vector<std::unique_ptr<Fiber>> fibers;  // pointers stay valid when it grows
    Fiber* cur = nullptr;                        // null in loop mode
    Thunk thunk = nullptr;
    const void* ctx = nullptr;
    char exc[160] = {0};                         // message of a C++ exception in a fiber

    ~Runner() {
        for (auto& f : fibers) munmap(f->stack, f->stack_bytes);
    }
};

inline Runner& runner() {
    static thread_local Runner r;
    return r;
}

// Parks fiber `f` and returns to the scheduler; returns when the scheduler resumes `f`.
// noinline keeps the _setjmp frame distinct from the kernel's frame.
__attribute__((noinline)) inline void yield(Fiber* f) {
    asm volatile("" ::: "memory");  // other fibers run in between: forget cached memory
    if (!_setjmp(f->jb)) _longjmp(runner().sched, 1);
    asm volatile("" ::: "memory");
}

inline void fiber_main() {
    Runner& R = runner();
    Fiber* self = R.cur;
    for (;;) {
        try {
            R.thunk(R.ctx);
        } catch (const std::exception& e) {
            snprintf(R.exc, sizeof R.exc, "%s", e.what());
        } catch (...) {
            snprintf(R.exc, sizeof R.exc, "unknown C++ exception");
        }
        self->st = State::DONE;
        yield(self);  // the next block resumes here and runs the kernel again
    }
}

inline void prepare(Fiber* f) {
    getcontext(&f->uc);
    f->uc.uc_stack.ss_sp = f->stack;
    f->uc.uc_stack.ss_size = f->stack_bytes;
    f->uc.uc_link = nullptr;  // fiber_main never returns
    makecontext(&f->uc, fiber_main, 0);
    f->started = false;
}

inline bool ensure_fibers(Runner& R, size_t n) {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t bytes = (size_t)CUDA_EMU_STACK_KB * 1024 + page;
    while (R.fibers.size() < n) {
        auto f = std::make_unique<Fiber>();
        void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
        if (mem == MAP_FAILED) return false;
        mprotect(mem, page, PROT_NONE);  // guard page: an overflow faults, never corrupts
        f->stack = mem;
        f->stack_bytes = bytes;
        prepare(f.get());
        R.fibers.push_back(std::move(f));
    }
    return true;
}

inline void resume(Runner& R, Fiber* f) {
    R.cur = f;
    threadIdx = f->tid;
    asm volatile("" ::: "memory");  // publish threadIdx before switching stacks
    if (!_setjmp(R.sched)) {
        if (f->started) _longjmp(f->jb, 1);
        f->started = true;
        swapcontext(&R.sched_uc, &f->uc);  // returns only via _longjmp(R.sched)
    }
}

inline uint3 unflatten(unsigned long long i, dim3 d) {
    return {unsigned(i % d.x), unsigned(i / d.x % d.y), unsigned(i / d.x / d.y)};
}

// Runs one block with fibers; returns a Status and fills `msg` on error.
inline int run_block_fibers(Runner& R, unsigned nthreads, char* msg, int msglen) {
    if (!ensure_fibers(R, nthreads)) {
        snprintf(msg, msglen, "cannot allocate %u fiber stacks", nthreads);
        return BAD_LAUNCH;
    }
    for (unsigned t = 0; t < nthreads; ++t) {
        R.fibers[t]->tid = unflatten(t, blockDim);
        R.fibers[t]->st = State::RUNNABLE;
    }
    R.exc[0] = 0;
    for (;;) {
        unsigned done = 0, waiting = 0;
        for (unsigned t = 0; t < nthreads; ++t) {
            Fiber* f = R.fibers[t].get();
            if (f->st == State::DONE) { ++done; continue; }
            f->st = State::RUNNABLE;
            resume(R, f);
            if (R.exc[0]) break;
            if (f->st == State::DONE) ++done; else ++waiting;
        }
        R.cur = nullptr;
        int status = OK;
        if (R.exc[0]) {
            snprintf(msg, msglen, "kernel raised a C++ exception in block (%u,%u,%u): %s",
                     blockIdx.x, blockIdx.y, blockIdx.z, R.exc);
            status = KERNEL_EXCEPTION;
        } else if (done == nthreads) {
            return OK;
        } else if (waiting < nthreads) {
            snprintf(msg, msglen,
                     "divergent __syncthreads in block (%u,%u,%u): %u threads exited, %u wait",
                     blockIdx.x, blockIdx.y, blockIdx.z, done, waiting);
            status = DIVERGENT_BARRIER;
        }
        if (status != OK) {
            // Fibers parked mid-kernel are abandoned: restart them from the top next time.
            for (unsigned t = 0; t < nthreads; ++t)
                if (R.fibers[t]->st != State::DONE) prepare(R.fibers[t].get());
            return status;
        }
    }
}

inline int run_block_loop(Runner& R, unsigned nthreads, char* msg, int msglen) {
    R.cur = nullptr;
    try {
        for (unsigned t = 0; t < nthreads; ++t) {
            threadIdx = unflatten(t, blockDim);
            R.thunk(R.ctx);
        }
    } catch (const BarrierInLoopMode&) {
        snprintf(msg, msglen,
                 "__syncthreads called in block (%u,%u,%u) but the kernel was launched as "
                 "barrier-free (uses_barrier=0)", blockIdx.x, blockIdx.y, blockIdx.z);
        return BARRIER_IN_LOOP_MODE;
    } catch (const std::exception& e) {
        snprintf(msg, msglen, "kernel raised a C++ exception in block (%u,%u,%u): %s",
                 blockIdx.x, blockIdx.y, blockIdx.z, e.what());
        return KERNEL_EXCEPTION;
    }
    return OK;
}

inline int check_config(const unsigned* g, const unsigned* b, char* err, int errlen) {
    unsigned long long threads = 1ull * b[0] * b[1] * b[2];
    if (!g[0] || !g[1] || !g[2] || !b[0] || !b[1] || !b[2]) {
        snprintf(err, errlen, "grid (%u,%u,%u) and block (%u,%u,%u) must be positive",
                 g[0], g[1], g[2], b[0], b[1], b[2]);
        return BAD_LAUNCH;
    }
    if (threads > 1024 || b[2] > 64) {
        snprintf(err, errlen, "block (%u,%u,%u) exceeds 1024 threads or z > 64",
                 b[0], b[1], b[2]);
        return BAD_LAUNCH;
    }
    return OK;
}

inline int run_grid(Thunk thunk, const void* ctx, const unsigned* g, const unsigned* b,
                    int uses_barrier, char* err, int errlen) {
    if (int s = check_config(g, b, err, errlen)) return s;
    const dim3 grid(g[0], g[1], g[2]), block(b[0], b[1], b[2]);
    const long long nblocks = 1ll * g[0] * g[1] * g[2];
    const unsigned nthreads = b[0] * b[1] * b[2];
    // The failing block with the smallest index wins, so the message is deterministic:
    // blocks after a known failure are skipped, blocks before it still run.
    std::atomic<long long> first_fail{LLONG_MAX};
    int status = OK;
#pragma omp parallel for schedule(dynamic, 1)
    for (long long bid = 0; bid < nblocks; ++bid) {
        if (bid > first_fail.load(std::memory_order_relaxed)) continue;
        Runner& R = runner();
        R.thunk = thunk;
        R.ctx = ctx;
        gridDim = grid;
        blockDim = block;
        blockIdx = unflatten((unsigned long long)bid, grid);
        char msg[256] = {0};
        int s = uses_barrier ? run_block_fibers(R, nthreads, msg, sizeof msg)
                             : run_block_loop(R, nthreads, msg, sizeof msg);
        if (s != OK) {
#pragma omp critical(cuda_emu_error)
            if (bid < first_fail.load()) {
                first_fail.store(bid);
                status = s;
                snprintf(err, errlen, "%s", msg);
            }
        }
    }
    return status;
}

template <class T> constexpr char kind_of() {
    if constexpr (std::is_same_v<T, bool>) return 'b';
    else if constexpr (std::is_floating_point_v<T>) return 'f';
    else if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) return 'i';
    else if constexpr (std::is_integral_v<T>) return 'u';
    else return 'o';
}

// "f4" for float, "Pf4" for float*, "Cf4" for const float*, "Pv0" for void*: lets Python
// check the arguments of a launch.
template <class P> inline int type_code(char* out, int n) {
    using T = std::remove_cv_t<std::remove_reference_t<P>>;
    if constexpr (std::is_pointer_v<T>) {
        using E0 = std::remove_pointer_t<T>;
        using E = std::remove_cv_t<E0>;
        const char p = std::is_const_v<E0> ? 'C' : 'P';
        if constexpr (std::is_void_v<E> || std::is_function_v<E>)
            return snprintf(out, n, "%cv0", p);
        else
            return snprintf(out, n, "%c%c%zu", p, kind_of<E>(), sizeof(E));
    } else {
        return snprintf(out, n, "%c%zu", kind_of<T>(), sizeof(T));
    }
}

template <class... P> const char* signature(void (*)(P...)) {
    static const std::string text = [] {
        std::string r;
        char code[32];
        ((type_code<P>(code, sizeof code), r += code, r += ','), ...);
        if (!r.empty()) r.pop_back();
        return r;
    }();
    return text.c_str();
}

template <class... P, std::size_t... I>
inline void call(void (*k)(P...), void** a, std::index_sequence<I...>) {
    k(*static_cast<std::remove_cv_t<std::remove_reference_t<P>>*>(a[I])...);
}

// `params` is packed like cuLaunchKernel's kernelParams: params[i] points at argument i.
template <class... P>
int launch(void (*k)(P...), const unsigned* grid, const unsigned* block, void** params,
           int uses_barrier, char* err, int errlen) {
    struct Ctx { void (*k)(P...); void** a; } ctx{k, params};
    Thunk thunk = [](const void* c) {
        auto* x = static_cast<const Ctx*>(c);
        call(x->k, x->a, std::index_sequence_for<P...>{});
    };
    return run_grid(thunk, &ctx, grid, block, uses_barrier, err, errlen);
}

}  // namespace cuda_emu

inline void __syncthreads() {
    cuda_emu::Runner& R = cuda_emu::runner();
    if (!R.cur) throw cuda_emu::BarrierInLoopMode{};
    R.cur->st = cuda_emu::State::AT_BARRIER;
    cuda_emu::yield(R.cur);
}

// One line per kernel, appended by emu.py after the kernel's definition.
#define CUDA_EMU_EXPORT(kernel)                                                              \
    extern "C" int kernel##__emu_launch(const unsigned* grid, const unsigned* block,         \
                                        void** params, int uses_barrier, char* err,          \
                                        int errlen) {                                        \
        return cuda_emu::launch(kernel, grid, block, params, uses_barrier, err, errlen);     \
    }                                                                                        \
    extern "C" const char* kernel##__emu_signature() { return cuda_emu::signature(kernel); }
