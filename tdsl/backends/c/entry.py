"""The checked entry point compiled beside every C kernel, and the library's manifest.

`render` gives `int <name>(buffers..., sizes...)`, which trusts its arguments. This module
adds, per kernel,

    int <name>_call(void* const* data, const int64_t* const* shapes, int num_threads,
                    char* err, size_t err_len);

which binds the symbolic sizes from the shapes exactly as `tdsl.lang.shapes.bind_sizes`
does (same order, same solving of affine sizes such as `H + 2`), checks every dimension,
sizes >= 1 and that no output overlaps another argument, then runs the kernel with
`num_threads` OpenMP threads (0: OpenMP's default) and returns 0 or an error code with a
message in `err`. It is what Python's `Module` and C programs (through the generated
header) call. The library also gets `tdsl_manifest()`, the JSON the runtime loads.
"""

from __future__ import annotations

import json

from ...runtime.signature import Signature, shape_text, size_text as _text
from .render import c_type

ERR_ARGUMENT = 3      # codes 1 and 2 are the kernel's own (render.py); runtime/module.py
ERR_THREAD = 4        # maps them all to exceptions, runtime/library.py's header to names
ERR_CPU = 5

# What every library's entry points call. It is one translation unit of its own, compiled
# once per compiler, flags and CPU into an object that the cache keeps (build.py) and
# linked into every library, instead of being compiled again with each kernel (it was
# half of the compile time of a small kernel). A library still carries its own copy: its
# fork state and CPU check are per library, and an exported library needs nothing else.
# The functions the entries call are hidden (not exported from the library); the two the
# Python runtime looks up are exported.
RUNTIME_DECLARATIONS = r"""
/* ---- tdsl runtime: declared here, linked in from the runtime object (build.py) ---- */
#include <stdio.h>
#define TDSL_HIDDEN __attribute__((visibility("hidden")))
TDSL_HIDDEN int tdsl_error(char* err, size_t len, int code, const char* fmt, ...)
    __attribute__((format(printf, 4, 5)));
TDSL_HIDDEN const char* tdsl_dims(char* buf, size_t len, const int64_t* dims, int rank);
TDSL_HIDDEN int tdsl_run(int (*run)(void*), void* job, int threads, char* err, size_t len);
TDSL_HIDDEN int tdsl_extent(const void* p, const int64_t* dims, int rank, int64_t item,
                            const char** lo, const char** hi);
"""

RUNTIME = r"""
/* ---- tdsl runtime: checked entry points ------------------------------------------- */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#define TDSL_HIDDEN __attribute__((visibility("hidden")))

TDSL_HIDDEN int tdsl_error(char* err, size_t len, int code, const char* fmt, ...) {
  if (err && len) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
  }
  return code;
}

/* "(3, 5)" into buf: the message of a shape mismatch. */
TDSL_HIDDEN const char* tdsl_dims(char* buf, size_t len, const int64_t* dims, int rank) {
  size_t used = (size_t)snprintf(buf, len, "(");
  for (int d = 0; d < rank && used < len; ++d)
    used += (size_t)snprintf(buf + used, len - used, d ? ", %lld" : "%lld", (long long)dims[d]);
  if (used < len) snprintf(buf + used, len - used, rank == 1 ? ",)" : ")");
  return buf;
}

/* GNU OpenMP's thread pool does not survive fork(): in the child, the thread that forked
   still believes its pool's workers exist and would wait for them forever. Kernels called
   from that thread in the child run on a proxy thread born in the child (one per library,
   started on first use), which builds a new pool; threads born in the child call directly. */
typedef struct { int (*run)(void*); void* job; int threads; int rc; } tdsl_task;
static volatile int tdsl_forked = 0;
static pthread_t tdsl_fork_thread;
static pthread_mutex_t tdsl_proxy_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t tdsl_proxy_wake = PTHREAD_COND_INITIALIZER;
static tdsl_task* tdsl_proxy_task = NULL;      /* the call waiting for the proxy */
static int tdsl_proxy_started = 0, tdsl_proxy_done = 0;

static void tdsl_after_fork(void) {
  tdsl_fork_thread = pthread_self();
  tdsl_forked = 1;
  /* The proxy of a parent (if any) did not survive either; its lock may look held. */
  pthread_mutex_init(&tdsl_proxy_lock, NULL);
  pthread_cond_init(&tdsl_proxy_wake, NULL);
  tdsl_proxy_task = NULL;
  tdsl_proxy_started = 0;
}
__attribute__((constructor)) static void tdsl_register_fork(void) {
  pthread_atfork(NULL, NULL, tdsl_after_fork);
}
/* For a library loaded in a child after its parent forked (the runtime calls it). */
void tdsl_adopt_fork(unsigned long thread) {
  tdsl_fork_thread = (pthread_t)thread;
  tdsl_forked = 1;
}

/* A library built with -march=native runs only on CPUs with the same instruction sets:
   elsewhere it is refused (at load, and by every entry point) instead of dying of SIGILL. */
static const char* tdsl_missing_isa(void) {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
#ifdef __SSE4_2__
  if (!__builtin_cpu_supports("sse4.2")) return "sse4.2";
#endif
#ifdef __AVX__
  if (!__builtin_cpu_supports("avx")) return "avx";
#endif
#ifdef __AVX2__
  if (!__builtin_cpu_supports("avx2")) return "avx2";
#endif
#ifdef __FMA__
  if (!__builtin_cpu_supports("fma")) return "fma";
#endif
#ifdef __BMI2__
  if (!__builtin_cpu_supports("bmi2")) return "bmi2";
#endif
#ifdef __AVX512F__
  if (!__builtin_cpu_supports("avx512f")) return "avx512f";
#endif
#ifdef __AVX512BW__
  if (!__builtin_cpu_supports("avx512bw")) return "avx512bw";
#endif
#ifdef __AVX512VL__
  if (!__builtin_cpu_supports("avx512vl")) return "avx512vl";
#endif
#ifdef __AVX512DQ__
  if (!__builtin_cpu_supports("avx512dq")) return "avx512dq";
#endif
#endif
  return NULL;
}
static const char* tdsl_lacking = NULL;       /* set once, when the library is loaded */
__attribute__((constructor)) static void tdsl_check_cpu(void) {
  tdsl_lacking = tdsl_missing_isa();
}
/* NULL when this CPU can run the library, else an instruction set it lacks. */
const char* tdsl_cpu_missing(void) { return tdsl_lacking; }

static void* tdsl_task_main(void* p) {
  tdsl_task* t = (tdsl_task*)p;
#ifdef _OPENMP
  int saved = omp_get_max_threads();
  if (t->threads > 0) omp_set_num_threads(t->threads);
#endif
  t->rc = t->run(t->job);
#ifdef _OPENMP
  if (t->threads > 0) omp_set_num_threads(saved);
#endif
  return NULL;
}

static void* tdsl_proxy_main(void* unused) {
  (void)unused;
  pthread_mutex_lock(&tdsl_proxy_lock);
  for (;;) {
    while (!tdsl_proxy_task) pthread_cond_wait(&tdsl_proxy_wake, &tdsl_proxy_lock);
    tdsl_task* t = tdsl_proxy_task;
    pthread_mutex_unlock(&tdsl_proxy_lock);
    tdsl_task_main(t);
    pthread_mutex_lock(&tdsl_proxy_lock);
    tdsl_proxy_task = NULL;
    tdsl_proxy_done = 1;
    pthread_cond_broadcast(&tdsl_proxy_wake);
  }
  return NULL;
}

/* Run t on the proxy thread; only the thread that forked comes here, one call at a time. */
static int tdsl_on_proxy(tdsl_task* t) {
  pthread_mutex_lock(&tdsl_proxy_lock);
  if (!tdsl_proxy_started) {
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int failed = pthread_create(&th, &attr, tdsl_proxy_main, NULL);
    pthread_attr_destroy(&attr);
    if (failed) {
      pthread_mutex_unlock(&tdsl_proxy_lock);
      return 0;
    }
    tdsl_proxy_started = 1;
  }
  tdsl_proxy_task = t;
  tdsl_proxy_done = 0;
  pthread_cond_broadcast(&tdsl_proxy_wake);
  while (!tdsl_proxy_done) pthread_cond_wait(&tdsl_proxy_wake, &tdsl_proxy_lock);
  pthread_mutex_unlock(&tdsl_proxy_lock);
  return 1;
}

TDSL_HIDDEN int tdsl_run(int (*run)(void*), void* job, int threads, char* err, size_t len) {
  tdsl_task t = {run, job, threads, 0};
  if (tdsl_lacking)
    return tdsl_error(err, len, 5, "this library was compiled for a CPU with %s; this CPU "
                      "lacks it", tdsl_lacking);
  if (tdsl_forked && pthread_equal(pthread_self(), tdsl_fork_thread)) {
    if (!tdsl_on_proxy(&t))
      return tdsl_error(err, len, 4, "could not start a thread to run the kernel after fork");
  } else {
    tdsl_task_main(&t);
  }
  if (t.rc == 1)
    return tdsl_error(err, len, 1, "the kernel could not allocate memory for its "
                      "intermediate buffers");
  if (t.rc == 2)
    return tdsl_error(err, len, 2, "an index computed from data (a gather such as A[idx[i]]) "
                      "was out of bounds; the outputs are incomplete");
  if (t.rc)
    return tdsl_error(err, len, t.rc, "the kernel failed (%d)", t.rc);
  return 0;
}

/* [lo, hi) of an argument's bytes; 0 when its size overflows. */
TDSL_HIDDEN int tdsl_extent(const void* p, const int64_t* dims, int rank, int64_t item,
                            const char** lo, const char** hi) {
  int64_t bytes = item;
  for (int d = 0; d < rank; ++d)
    if (dims[d] < 0 || __builtin_mul_overflow(bytes, dims[d], &bytes)) return 0;
  *lo = (const char*)p;
  *hi = (const char*)p + bytes;
  return 1;
}
"""


def c_string(text: str) -> str:
    """A C string literal of ASCII `text`."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def manifest_source(manifest: dict) -> str:
    """`const char* tdsl_manifest(void)` returning the JSON manifest."""
    text = json.dumps(manifest, separators=(",", ":"), ensure_ascii=True)
    return f"\nconst char* tdsl_manifest(void) {{\n  return {c_string(text)};\n}}\n"


def _occurrences(d) -> list[str]:
    """The size names a size expression mentions, with repeats (as `free_vars` lists them)."""
    if isinstance(d, str):
        return [d]
    if isinstance(d, list):
        return [name for part in d[1:] for name in _occurrences(part)]
    return []


def _size_c(d, local, replace: str | None = None, by: str = "") -> str:
    if isinstance(d, int):
        return f"INT64_C({d})"
    if isinstance(d, str):
        return by if d == replace else local(d)
    if d[0] == "neg":
        return f"(-{_size_c(d[1], local, replace, by)})"
    a, b = (_size_c(x, local, replace, by) for x in d[1:])
    op = d[0]
    if op in ("add", "sub", "mul", "truncdiv", "truncmod"):
        symbol = {"add": "+", "sub": "-", "mul": "*", "truncdiv": "/", "truncmod": "%"}[op]
        if op in ("truncdiv", "truncmod"):
            return f"({b} ? ({a} {symbol} {b}) : 0)"
        return f"({a} {symbol} {b})"
    if op in ("floordiv", "mod"):
        return f"tdsl_{op}_i64({a}, {b})"
    return f"tdsl_{op}_i64({a}, {b})"          # min, max


def entry_source(sig: Signature) -> str:
    """The C of `<name>_call` (see the module docstring) for one kernel."""
    def local(name: str) -> str:
        return f"tdsl_s_{name}"
    name, args = sig.name, sig.args
    lines = [f"struct {name}_job {{ void* const* data; int64_t sizes[{max(len(sig.sizes), 1)}]; "
             "};",
             f"static int {name}_job_run(void* p) {{",
             f"  struct {name}_job* j = (struct {name}_job*)p;"]
    params = [f"({'const ' if not a.is_output else ''}{c_type(a.dtype)}*)j->data[{k}]"
              for k, a in enumerate(args)]
    params += [f"j->sizes[{k}]" for k in range(len(sig.sizes))]
    lines += [f"  return {name}({', '.join(params)});", "}", ""]
    lines += [f"int {sig.symbol}(void* const* data, const int64_t* const* shapes, "
              "int num_threads, char* err, size_t err_len) {",
              "  char tdsl_a[160], tdsl_b[160];",
              "  (void)tdsl_a; (void)tdsl_b;",
              "  if (err && err_len) err[0] = 0;",
              "  if (!data || !shapes)",
              f"    return tdsl_error(err, err_len, {ERR_ARGUMENT}, \"{sig.symbol}: data and "
              "shapes must not be NULL\");"]
    for k, a in enumerate(args):
        lines += [f"  if (!data[{k}] || ({len(a.shape)} && !shapes[{k}]))",
                  f"    return tdsl_error(err, err_len, {ERR_ARGUMENT}, \"argument {a.name}: "
                  "NULL data or shape\");"]
    for v in sig.sizes:
        lines.append(f"  int64_t {local(v)} = 0; int {local(v)}_bound = 0; "
                     f"const char* {local(v)}_from = \"\"; (void){local(v)}_from;")
    # Binding: the fixpoint of bind_sizes, argument by argument, dimension by dimension.
    binders = []
    for k, a in enumerate(args):
        for d, dim in enumerate(a.shape):
            names = _occurrences(dim)
            for v in dict.fromkeys(names):
                if names.count(v) != 1:
                    continue        # `n * n`: bind_sizes never solves a repeated size
                others = [f"{local(o)}_bound" for o in dict.fromkeys(names) if o != v]
                cond = " && ".join([f"!{local(v)}_bound", *others])
                def e(by: str, dim=dim, v=v) -> str:       # dim with v replaced by `by`
                    return _size_c(dim, local, v, by)
                binders += [
                    f"    if ({cond}) {{  /* {a.name}[{d}] = {_text(dim)} */",
                    f"      int64_t size = shapes[{k}][{d}], x = 0;",
                    f"      int64_t at0 = {e('x')};",
                    "      x = 1;",
                    f"      int64_t slope = {e('x')} - at0;",
                    "      if (slope != 0 && (size - at0) % slope == 0) {",
                    "        x = (size - at0) / slope;",
                    f"        if ({e('x')} == size) {{",
                    f"          {local(v)} = x; {local(v)}_bound = 1; progress = 1;",
                    f"          {local(v)}_from = \"dimension {d} of {a.name}\";",
                    "        }", "      }", "    }"]
    if binders:
        lines += ["  for (int progress = 1; progress;) {", "    progress = 0;", *binders, "  }"]
    # Every dimension of every argument.
    for k, a in enumerate(args):
        declared = shape_text(a.shape).replace("%", "%%")       # inside printf formats
        rank = len(a.shape)
        lines.append(f"  {{  /* {a.name} {declared} */")
        lines.append(f"    int64_t want[{max(rank, 1)}];")
        for d, dim in enumerate(a.shape):
            for v in dict.fromkeys(_occurrences(dim)):
                lines += [f"    if (!{local(v)}_bound)",
                          f"      return tdsl_error(err, err_len, {ERR_ARGUMENT}, \"the size {v} "
                          f"in the shape of {a.name} {declared} cannot be bound: no argument has "
                          f"a dimension that is exactly {v}\");"]
            lines.append(f"    want[{d}] = {_size_c(dim, local)};")
        for d, dim in enumerate(a.shape):
            vs = list(dict.fromkeys(_occurrences(dim)))
            detail = f": dimension {d} should be {_text(dim)}".replace("%", "%%")
            fmt_args = [f"tdsl_dims(tdsl_a, sizeof tdsl_a, want, {rank})",
                        f"tdsl_dims(tdsl_b, sizeof tdsl_b, shapes[{k}], {rank})"]
            if vs:
                detail += " = %lld, with " + ", ".join(f"{v}=%lld (from %s)" for v in vs)
                fmt_args.append(f"(long long)want[{d}]")
                for v in vs:
                    fmt_args += [f"(long long){local(v)}", f"{local(v)}_from"]
            lines += [f"    if (shapes[{k}][{d}] != want[{d}])",
                      f"      return tdsl_error(err, err_len, {ERR_ARGUMENT}, \"argument {a.name} "
                      f"should have shape %s (declared {declared}); got %s{detail}\", "
                      f"{', '.join(fmt_args)});"]
        lines.append("  }")
    for v in sig.sizes:
        lines += [f"  if ({local(v)} < 1)",
                  f"    return tdsl_error(err, err_len, {ERR_ARGUMENT}, \"size {v} = %lld (from "
                  f"%s); sizes must be >= 1\", (long long){local(v)}, {local(v)}_from);"]
    # No output may overlap another argument (the bounds test of np.may_share_memory).
    if any(a.is_output for a in args):
        n = len(args)
        lines += [f"  const char* lo[{n}]; const char* hi[{n}];"]
        for k, a in enumerate(args):
            lines += [f"  if (!tdsl_extent(data[{k}], shapes[{k}], {len(a.shape)}, "
                      f"sizeof({c_type(a.dtype)}), &lo[{k}], &hi[{k}]))",
                      f"    return tdsl_error(err, err_len, {ERR_ARGUMENT}, \"argument {a.name} "
                      "is too large\");"]
        names = "{" + ", ".join(c_string(a.name) for a in args) + "}"
        outputs = "{" + ", ".join("1" if a.is_output else "0" for a in args) + "}"
        lines += [f"  static const char* const names[{n}] = {names};",
                  f"  static const int is_output[{n}] = {outputs};",
                  f"  for (int k = 0; k < {n}; ++k)",
                  "    for (int j = 0; is_output[k] && j < " + str(n) + "; ++j)",
                  "      if (j != k && lo[k] < hi[k] && lo[j] < hi[j] && lo[k] < hi[j] && "
                  "lo[j] < hi[k])",
                  f"        return tdsl_error(err, err_len, {ERR_ARGUMENT}, \"argument %s (an "
                  "output) shares memory with %s; pass separate arrays\", names[k], names[j]);"]
    sizes = ", ".join(local(v) for v in sig.sizes) or "0"
    lines += [f"  struct {name}_job job = {{data, {{{sizes}}}}};",
              f"  return tdsl_run({name}_job_run, &job, num_threads, err, err_len);", "}"]
    return "\n".join(lines) + "\n"


def library_source(kernel_sources: list[str], signatures: list[Signature],
                   manifest: dict) -> str:
    """One library: the kernels, the runtime helpers' declarations (their definitions are
    linked in, `RUNTIME`), an entry per signature, the manifest."""
    return "\n".join(kernel_sources) + RUNTIME_DECLARATIONS + "\n" + \
        "\n".join(entry_source(s) for s in signatures) + manifest_source(manifest)
