"""The C helpers every generated kernel starts with.

Integer division and modulo floor like NumPy's and give 0 for a zero divisor
(NumPy's result, where C would trap); `tdsl_check` is the run-time bounds test
for indices isl could not prove in bounds; allocation is 64-byte aligned.
"""

PRELUDE = r"""
#include <stdint.h>
#include <stdbool.h>
#include <stdlib.h>
#include <math.h>
#include <pthread.h>

static inline int64_t tdsl_floordiv_i64(int64_t a, int64_t b) {
  if (b == 0) return 0;
  if (b == -1) return (int64_t)(0ULL - (uint64_t)a);   /* INT64_MIN / -1 would trap */
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}
static inline int64_t tdsl_mod_i64(int64_t a, int64_t b) {
  if (b == 0 || b == -1) return 0;
  int64_t r = a % b;
  return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}
static inline uint64_t tdsl_floordiv_u64(uint64_t a, uint64_t b) { return b ? a / b : 0; }
static inline uint64_t tdsl_mod_u64(uint64_t a, uint64_t b) { return b ? a % b : 0; }
static inline float tdsl_fmod_f32(float a, float b) {
  float r = fmodf(a, b);
  return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}
static inline double tdsl_fmod_f64(double a, double b) {
  double r = fmod(a, b);
  return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}
static inline float tdsl_min_f32(float a, float b) { return a < b ? a : b; }
static inline float tdsl_max_f32(float a, float b) { return a > b ? a : b; }
static inline double tdsl_min_f64(double a, double b) { return a < b ? a : b; }
static inline double tdsl_max_f64(double a, double b) { return a > b ? a : b; }
static inline int64_t tdsl_min_i64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t tdsl_max_i64(int64_t a, int64_t b) { return a > b ? a : b; }
static inline uint64_t tdsl_min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }
static inline uint64_t tdsl_max_u64(uint64_t a, uint64_t b) { return a > b ? a : b; }
/* double -> float behind an empty asm: gcc 12 folds (double)(float)x back into x when its
   SLP vectorizer turns both conversions into same-width vector conversions (the last group
   of a fully unrolled loop, even through a store and load), skipping the rounding (fuzzer
   case 7641). The asm keeps the conversion scalar; tdsl's own vector code is unaffected. */
static inline float tdsl_round_f32(double x) {
  float r = (float)x;
#if defined(__x86_64__) || defined(__i386__)
  __asm__("" : "+x"(r));
#elif defined(__aarch64__)
  __asm__("" : "+w"(r));
#else
  __asm__ volatile("" : "+m"(r));
#endif
  return r;
}
static inline int64_t tdsl_abs_i64(int64_t a) { return a < 0 ? -a : a; }
static inline uint64_t tdsl_abs_u64(uint64_t a) { return a; }
static inline int64_t tdsl_ipow(int64_t base, int64_t e) {
  if (e < 0) return base == 1 ? 1 : (base == -1 ? ((e & 1) ? -1 : 1) : 0);
  int64_t r = 1;
  while (e) { if (e & 1) r *= base; base *= base; e >>= 1; }
  return r;
}
static inline void tdsl_fail(int* err, int code) { __atomic_store_n(err, code, __ATOMIC_RELAXED); }
static inline int64_t tdsl_check(int64_t i, int64_t n, int* err) {
  if ((uint64_t)i >= (uint64_t)n) { tdsl_fail(err, 2); return 0; }
  return i;
}
/* count * elem bytes, 64-byte aligned; NULL when the size does not fit (count < 0 marks an
   overflow in tdsl_cmul). */
static inline int64_t tdsl_cmul(int64_t a, int64_t b) {
  int64_t r;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r)) return -1;
  return r;
}
/* Freed blocks are kept per thread (TDSL_KEPT of them; a request takes the smallest kept
   block that holds it and is at most twice its size): a kernel called again and again, or a
   private buffer allocated per tile, reuses its memory instead of asking glibc each time,
   which gives large blocks back to the OS (munmap) and faults them in again page by page at
   the next call (2,700 page faults per training step of a small CNN, 40% of its time). A
   thread's blocks are freed when it exits; unloading the library frees the unloading
   thread's and forgets the key, so no destructor of an unloaded library ever runs. Each
   block starts with a 64-byte header holding its size. */
#define TDSL_KEPT 8
typedef struct { char* block[TDSL_KEPT]; size_t bytes[TDSL_KEPT]; } tdsl_kept_t;
static pthread_key_t tdsl_kept_key;
static pthread_once_t tdsl_kept_once = PTHREAD_ONCE_INIT;
static int tdsl_kept_ok;
static void tdsl_kept_release(void* kept) {
  tdsl_kept_t* k = (tdsl_kept_t*)kept;
  for (int i = 0; i < TDSL_KEPT; ++i) free(k->block[i]);
  free(k);
}
static void tdsl_kept_init(void) {
  tdsl_kept_ok = pthread_key_create(&tdsl_kept_key, tdsl_kept_release) == 0;
}
static tdsl_kept_t* tdsl_kept(void) {
  pthread_once(&tdsl_kept_once, tdsl_kept_init);
  if (!tdsl_kept_ok) return NULL;
  tdsl_kept_t* k = (tdsl_kept_t*)pthread_getspecific(tdsl_kept_key);
  if (k == NULL && (k = (tdsl_kept_t*)calloc(1, sizeof *k)) != NULL &&
      pthread_setspecific(tdsl_kept_key, k) != 0) {
    free(k);
    k = NULL;
  }
  return k;
}
__attribute__((destructor)) static void tdsl_kept_unload(void) {
  if (!tdsl_kept_ok) return;
  tdsl_kept_t* k = (tdsl_kept_t*)pthread_getspecific(tdsl_kept_key);
  pthread_key_delete(tdsl_kept_key);
  if (k) tdsl_kept_release(k);
}
static inline void* tdsl_alloc(int64_t count, size_t elem) {
  size_t bytes;
  if (count < 0 || __builtin_mul_overflow((size_t)count, elem, &bytes) || bytes > SIZE_MAX - 128)
    return NULL;
  size_t need = (bytes + 63) / 64 * 64 + 64;
  tdsl_kept_t* k = tdsl_kept();
  if (k) {
    int best = -1;
    for (int i = 0; i < TDSL_KEPT; ++i)
      if (k->block[i] && k->bytes[i] >= need && k->bytes[i] / 2 <= need &&
          (best < 0 || k->bytes[i] < k->bytes[best]))
        best = i;
    if (best >= 0) {
      char* b = k->block[best];
      k->block[best] = NULL;
      return b + 64;
    }
  }
  char* b = (char*)aligned_alloc(64, need);
  if (b == NULL) return NULL;
  *(size_t*)b = need;
  return b + 64;
}
static inline void tdsl_free(void* p) {
  if (p == NULL) return;
  char* b = (char*)p - 64;
  size_t bytes = *(size_t*)b;
  tdsl_kept_t* k = tdsl_kept();
  if (k) {
    int slot = -1, smallest = 0;
    for (int i = 0; i < TDSL_KEPT && slot < 0; ++i) {
      if (k->block[i] == NULL) slot = i;
      else if (k->bytes[i] < k->bytes[smallest]) smallest = i;
    }
    if (slot < 0 && k->bytes[smallest] < bytes) {   /* keep the larger block */
      free(k->block[smallest]);
      slot = smallest;
    }
    if (slot >= 0) {
      k->block[slot] = b;
      k->bytes[slot] = bytes;
      return;
    }
  }
  free(b);
}
"""

# exp(x) = 2^n p(r), n = round(x / ln 2), r = x - n ln 2 (ln 2 in two parts), p a degree-6
# polynomial: Cephes' expf, within 2 ulp on [-87.3, 88.7]; 0 below, inf above. The scalar
# and the vector forms (backends/c/vector.py) are generated from these numbers, so the
# lanes of a vector loop and its scalar remainder agree bit for bit.
EXP_LIMITS = ("-87.33654f", "88.72283f")
EXP_LN2 = ("0.693359375f", "-2.12194440e-4f")
EXP_POLY = ("1.9875691500e-4f", "1.3981999507e-3f", "8.3334519073e-3f", "4.1665795894e-2f",
            "1.6666665459e-1f", "5.0000001201e-1f")


def exp_body(t: str) -> str:
    """The C statements computing `p` (the polynomial) and `n` (the exponent) of exp(x),
    for values of C type `t` (float or a float vector type)."""
    return "\n".join([
        f"  const {t} n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;",
        f"  {t} r = x - n * {EXP_LN2[0]};",
        f"  r = r - n * {EXP_LN2[1]};",
        f"  {t} p = {EXP_POLY[0]} * r + {EXP_POLY[1]};",
        *[f"  p = p * r + {c};" for c in EXP_POLY[2:]],
        "  p = p * r * r + r + 1.0f;",
    ])


PRELUDE += f"""
static inline float tdsl_expf(float x) {{
  if (x < {EXP_LIMITS[0]}) return 0.0f;
  if (x > {EXP_LIMITS[1]}) return __builtin_inff();
{exp_body("float")}
  union {{ int32_t i; float f; }} scale = {{ .i = ((int32_t)n + 127) << 23 }};
  return p * scale.f;
}}

"""


def prefetch_call(name: str, offset: str, write: bool = False) -> str:
    """A prefetch of `name[offset]` into every cache level, for a read or, with `write`,
    for a write (x86 `prefetchw`: the line arrives owned, so the store that follows does
    not wait for the read-for-ownership a store miss makes); gcc's builtin is a no-op
    where the CPU has no such instruction. The pointer is formed as an integer: the
    address may lie past the end of the array, which a prefetch may name (it never
    faults) but C pointer arithmetic may not."""
    return (f"__builtin_prefetch((const void*)((uintptr_t){name} + "
            f"(uintptr_t)({offset}) * sizeof(*{name})), {int(write)}, 3)")
