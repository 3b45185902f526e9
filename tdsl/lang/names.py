"""Unique names: the one rule every part of tdsl uses to keep identifiers apart."""

from __future__ import annotations


def unique_name(name: str, taken: set[str]) -> str:
    """`name`, or `name_1`, `name_2`, ... : the first not in `taken`, which it joins."""
    candidate, k = name, 1
    while candidate in taken:
        candidate = f"{name}_{k}"
        k += 1
    taken.add(candidate)
    return candidate


# Names a tensor cannot keep as a C identifier: C's keywords and the library functions and
# macros generated code calls (a buffer named `tanh` would hide tanh()); such a tensor's
# array is named `tanh_1` in the kernel.
C_RESERVED = frozenset("""
auto break case char const continue default do double else enum extern float for goto if
inline int long register restrict return short signed sizeof static struct switch typedef
union unsigned void volatile while bool true false NULL main kernel errno
abs labs fabs fabsf exp expf exp2 exp2f expm1 log logf log2 log2f log10 log1p sqrt sqrtf
pow powf sin sinf cos cosf tan tanh tanhf erf erff floor floorf ceil ceilf round roundf
trunc truncf fmod fmodf fmin fminf fmax fmaxf isnan isinf INFINITY NAN
malloc free aligned_alloc calloc memcpy memset printf
""".split())
