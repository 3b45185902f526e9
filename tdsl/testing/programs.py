"""Random programs for the fuzzer, each with an independent NumPy oracle.

A `Program` is two pieces of source text: tdsl code that defines the tensors,
`args` (the kernel's arguments) and `sizes` (values of the symbolic sizes), and
NumPy code that defines `oracle(x, sizes)`, the expected outputs (a list in the
order of `args`; `x` maps input names to arrays, `sizes` size names to values), written
from the same random choices but without `td.reference`. Being text, both go
into a reproducer unchanged.

Families: elementwise chains with broadcasting over every dtype, reductions with
`where=`, stencils, pipelines whose stages have several consumers, `td.update`
recurrences, and gathers (data-dependent and quasi-affine indices).

>>> prog = random_program(np.random.default_rng(0))
>>> print(prog.source)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DTYPES = ("float32", "float64", "float16", "int8", "int16", "int32", "int64", "uint8")
FLOATS = ("float32", "float64")
FACTORS = (2, 3, 5)


@dataclass(frozen=True)
class Program:
    family: str
    source: str          # tdsl: defines the tensors, `args` and `sizes`
    oracle: str          # NumPy: defines `oracle(x, sizes) -> [outputs, in args order]`


class _Sizes:
    """The sizes of one program: each dimension a constant or a `td.var`."""

    VARS = {"N": "n", "M": "m", "K": "l"}

    def __init__(self, rng: np.random.Generator, names: str, smallest: int = 1):
        self.text, self.header, self.values = {}, [], {}
        for name in names:
            if rng.random() < 0.5:
                v = self.VARS[name]
                self.text[name] = v
                self.header.append(f'{v} = td.var("{v}")')
                self.values[v] = int(rng.integers(1, 14))
            else:
                self.text[name] = str(int(rng.integers(smallest, 14)))

    def __getitem__(self, name: str) -> str:
        return self.text[name]

    def source(self, body: list[str], args: str) -> str:
        sizes = ", ".join(f"{k}: {v}" for k, v in self.values.items())
        return "\n".join(["import tdsl as td", *self.header, *body, f"args = {args}",
                          f"sizes = {{{sizes}}}", ""])

    def np_dims(self) -> list[str]:
        """NumPy lines binding each size name to its value."""
        return [f"    {n} = {v if not v.isidentifier() else f'sizes[{v!r}]'}"
                for n, v in self.text.items()]


def _oracle(sizes: _Sizes, body: list[str]) -> str:
    return "\n".join(["import numpy as np", "", "", "def oracle(x, sizes):", *sizes.np_dims(),
                      *["    " + line for line in body], ""])


def _pick(rng, items):
    return items[int(rng.integers(len(items)))]


# -- elementwise chains -------------------------------------------------------------------

def elementwise(rng) -> Program:
    z = _Sizes(rng, "NM")
    n, m = z["N"], z["M"]
    da, db, dc = (_pick(rng, DTYPES) for _ in range(3))
    body = [f'A = td.placeholder(({n}, {m}), dtype="{da}", name="A")',
            f'B = td.placeholder(({m},), dtype="{db}", name="B")',
            f'C = td.placeholder(({n},), dtype="{dc}", name="C")',
            f'Mk = td.placeholder(({n}, {m}), dtype="bool", name="Mk")']
    leaves = [("A[i, j]", 'x["A"]'), ("B[j]", 'x["B"][None, :]'), ("C[i]", 'x["C"][:, None]')]
    np_lines = []
    stages = int(rng.integers(1, 4))
    for s in range(stages):
        t, e = _expr(rng, leaves, 2)
        first = leaves[-1] if s else leaves[0]        # keep a full-shape operand
        t, e = f"({first[0]} + {t})", f"({first[1]} + {e})"
        name = f"T{s}"
        body.append(f'{name} = td.compute(({n}, {m}), lambda i, j: {t}, name="{name}")')
        np_lines.append(f"{name} = np.broadcast_to({e}, (N, M))")
        leaves = leaves + [(f"{name}[i, j]", name)]
    out = f"T{stages - 1}"
    text = "\n".join(body[4:])
    used = [t for t in ("A", "B", "C", "Mk") if f"{t}[" in text]
    return Program("elementwise", z.source(body, f"[{', '.join(used)}, {out}]"),
                   _oracle(z, np_lines + [f"return [{out}]"]))


def _expr(rng, leaves, depth: int) -> tuple[str, str]:
    """(tdsl text, NumPy text) of a random expression over `leaves`."""
    if depth == 0 or rng.random() < 0.3:
        if rng.random() < 0.15:
            c = int(rng.integers(1, 4))
            return str(c), str(c)
        return _pick(rng, leaves)
    a, b = _expr(rng, leaves, depth - 1), _expr(rng, leaves, depth - 1)
    if a[0].isdigit():      # td.maximum(2, 3) is no expression; np.abs(2) is a strong int64
        a = _pick(rng, leaves)
    kind = int(rng.integers(11))
    if kind <= 2:
        op = "+-*"[kind]
        return f"({a[0]} {op} {b[0]})", f"({a[1]} {op} {b[1]})"
    if kind == 3:
        return f"td.maximum({a[0]}, {b[0]})", f"np.maximum({a[1]}, {b[1]})"
    if kind == 4:
        return f"td.minimum({a[0]}, {b[0]})", f"np.minimum({a[1]}, {b[1]})"
    if kind == 5:
        return (f"td.select({a[0]} > {b[0]}, {a[0]}, {b[0]})",
                f"np.where({a[1]} > {b[1]}, {a[1]}, {b[1]})")
    if kind == 6:
        return f'td.select(Mk[i, j], {a[0]}, {b[0]})', f'np.where(x["Mk"], {a[1]}, {b[1]})'
    if kind == 7:
        dt = _pick(rng, ("float32", "float64", "int32", "int64"))
        if dt.startswith("int"):        # float -> int only of values that fit
            return f'td.cast(td.abs({a[0]}) % 64, "{dt}")', f'(np.abs({a[1]}) % 64).astype("{dt}")'
        return f'td.cast({a[0]}, "{dt}")', f'np.asarray({a[1]}).astype("{dt}")'
    if kind == 8:
        return f"td.abs({a[0]})", f"np.abs({a[1]})"
    if kind == 9:
        c = int(rng.integers(2, 5))
        return f"({a[0]} // {c})", f"({a[1]} // {c})"
    c = int(rng.integers(2, 6))
    return f"({a[0]} % {c})", f"({a[1]} % {c})"


# -- reductions with where= ----------------------------------------------------------------

REDUCERS = {"sum": ("np.sum", "0"), "max": ("np.max", "LOW"), "min": ("np.min", "HIGH")}


def reduction(rng) -> Program:
    z = _Sizes(rng, "NMK")
    n, m, kk = z["N"], z["M"], z["K"]
    dt = _pick(rng, ("float32", "float64", "int32", "int64", "int16"))
    red = _pick(rng, tuple(REDUCERS))
    lo = int(rng.integers(0, 3))
    if kk.isdigit():
        lo = min(lo, int(kk) - 1)
    conds = [(None, "True"), ("k >= 2", "Kk >= 2"), ("k < i", "Kk < I"),
             ("k % 2 == 0", "Kk % 2 == 0"), ("(k + i) % 3 != 1", "(Kk + I) % 3 != 1"),
             (f"k >= {kk}", "Kk >= K"), ("A[i, k] > 0", 'x["A"][:, :, None] > 0')]
    where, mask = _pick(rng, conds)
    matmul = rng.random() < 0.5
    body = [f'A = td.placeholder(({n}, {kk}), dtype="{dt}", name="A")',
            f'k = td.reduce_axis(({lo}, {kk}), name="k")']
    w = f", where={where}" if where else ""
    if matmul:
        body.insert(1, f'B = td.placeholder(({kk}, {m}), dtype="{dt}", name="B")')
        body.append(f"R = td.compute(({n}, {m}), lambda i, j: td.{red}(A[i, k] * B[k, j], "
                    f'axis=k{w}), name="R")')
        args = "[A, B, R]"
        np_body = ['I = np.arange(N)[:, None, None]', 'Kk = np.arange(K)[None, :, None]',
                   'prod = x["A"][:, :, None] * x["B"][None, :, :]']
    else:
        body.append(f"R = td.compute(({n},), lambda i: td.{red}(A[i, k] * 2 + 1, axis=k{w}), "
                    'name="R")')
        args = "[A, R]"
        np_body = ['I = np.arange(N)[:, None, None]', 'Kk = np.arange(K)[None, :, None]',
                   'prod = (x["A"] * 2 + 1)[:, :, None]']
    fn, ident = REDUCERS[red]
    low = "-np.inf" if dt.startswith("float") else f"np.iinfo('{dt}').min"
    high = "np.inf" if dt.startswith("float") else f"np.iinfo('{dt}').max"
    ident = {"0": "0", "LOW": low, "HIGH": high}[ident]
    kw = f", dtype='{dt}'" if red == "sum" else ""
    np_body += [f"mask = np.broadcast_to((Kk >= {lo}) & ({mask}), prod.shape)",
                f"vals = np.where(mask, prod, np.array({ident}, dtype='{dt}'))",
                f"out = {fn}(vals, axis=1{kw}) if prod.shape[1] else "
                f"np.full((prod.shape[0], prod.shape[2]), {ident}, dtype='{dt}')",
                "return [out.astype('%s') if %s else out[:, 0].astype('%s')]" % (dt, matmul, dt)]
    return Program("reduction", z.source(body, args), _oracle(z, np_body))


# -- stencils ------------------------------------------------------------------------------

def stencil(rng) -> Program:
    z = _Sizes(rng, "NM")
    n, m = z["N"], z["M"]
    r = int(rng.integers(1, 3))
    w = [int(v) for v in rng.integers(-2, 4, size=2 * r + 1)]
    dt = _pick(rng, ("float32", "float64", "int32"))
    body = [f'A = td.placeholder(({n} + {2 * r}, {m} + {2 * r}), dtype="{dt}", name="A")',
            "Bx = td.compute(({} + {}, {}), lambda y, x: {}, name=\"Bx\")".format(
                n, 2 * r, m, " + ".join(f"A[y, x + {d}] * {c}" for d, c in enumerate(w))),
            "By = td.compute(({}, {}), lambda y, x: {}, name=\"By\")".format(
                n, m, " + ".join(f"Bx[y + {d}, x] * {c}" for d, c in enumerate(w[::-1])))]
    np_body = ['a = x["A"]',
               "bx = " + " + ".join(f"a[:, {d}:{d} + M] * {c}" for d, c in enumerate(w)),
               "by = " + " + ".join(f"bx[{d}:{d} + N, :] * {c}" for d, c in enumerate(w[::-1])),
               "return [by]"]
    return Program("stencil", z.source(body, "[A, By]"), _oracle(z, np_body))


# -- pipelines with several consumers ------------------------------------------------------

def pipeline(rng) -> Program:
    z = _Sizes(rng, "NM")
    n, m = z["N"], z["M"]
    c = [int(v) for v in rng.integers(1, 4, size=3)]
    both = rng.random() < 0.5
    body = [f'A = td.placeholder(({n}, {m}), name="A")',
            f'B = td.placeholder(({m},), name="B")',
            f'P = td.compute(({n}, {m}), lambda i, j: A[i, j] * {c[0]} + 1.0, name="P")',
            f'Q = td.compute(({n}, {m}), lambda i, j: P[i, j] - B[j] * {c[1]}, name="Q")',
            f'k = td.reduce_axis((0, {m}), name="k")',
            f'R = td.compute(({n},), lambda i: td.sum(P[i, k] * Q[i, k], axis=k), name="R")',
            f'S = td.compute(({n}, {m}), lambda i, j: Q[i, j] + R[i] * {c[2]} + P[i, j], '
            'name="S")']
    np_body = ['p = x["A"] * %d + np.float32(1.0)' % c[0],
               'q = p - x["B"][None, :] * %d' % c[1],
               "r = (p * q).sum(axis=1, dtype='float32')",
               "s = q + r[:, None] * %d + p" % c[2],
               "return [r, s] if %s else [s]" % both]
    return Program("pipeline", z.source(body, "[A, B, R, S]" if both else "[A, B, S]"),
                   _oracle(z, np_body))


# -- recurrences ----------------------------------------------------------------------------

def recurrence(rng) -> Program:
    z = _Sizes(rng, "NM", smallest=2)       # a constant reduce_axis((1, 1)) is refused
    n, m = z["N"], z["M"]
    along_rows = rng.random() < 0.5
    c = _pick(rng, ("0.5", "1.0", "-0.25"))
    consumer = rng.random() < 0.5
    body = [f'X = td.placeholder(({n}, {m}), name="X")',
            f'Y = td.compute(({n}, {m}), lambda i, j: X[i, j] * 2.0, name="Y")']
    if along_rows:
        body += [f'r = td.reduce_axis((1, {m}), name="r")',
                 f"Y = td.update(Y, lambda i: (i, r), lambda i: Y[i, r - 1] * {c} + X[i, r])"]
        loop = ["for c in range(1, M):",
                f"    y[:, c] = y[:, c - 1] * np.float32({c}) + x['X'][:, c]"]
    else:
        body += [f'r = td.reduce_axis((1, {n}), name="r")',
                 f"Y = td.update(Y, lambda j: (r, j), lambda j: Y[r - 1, j] * {c} + X[r, j])"]
        loop = ["for c in range(1, N):",
                f"    y[c, :] = y[c - 1, :] * np.float32({c}) + x['X'][c, :]"]
    out, np_out = "Y", "[y]"
    if consumer:
        body.append(f'Z = td.compute(({n}, {m}), lambda i, j: Y[i, j] + X[i, j], name="Z")')
        out, np_out = "Z", "[y + x['X']]"
    np_body = ["y = x['X'] * np.float32(2.0)", *loop, f"return {np_out}"]
    return Program("recurrence", z.source(body, f"[X, {out}]"), _oracle(z, np_body))


# -- gathers --------------------------------------------------------------------------------

def gather(rng) -> Program:
    z = _Sizes(rng, "NK")
    n, kk = z["N"], z["K"]
    kinds = [("A[idx[i] % {n}, j]", "a[np.mod(x['idx'], N), :]"),
             ("A[(i * 3) % {n}, j]", "a[(np.arange(N) * 3) % N, :]"),
             ("A[{n} - 1 - i, j]", "a[::-1, :]"),
             ("A[i // 2, j]", "a[np.arange(N) // 2, :]"),
             ("A[i - i % 2, j]", "a[np.arange(N) - np.arange(N) % 2, :]"),
             ("A[i, (j * 2) % {k}] + A[i, j // 3]",
              "a[:, (np.arange(K) * 2) % K] + a[:, np.arange(K) // 3]")]
    text, np_text = _pick(rng, kinds)
    body = [f'A = td.placeholder(({n}, {kk}), name="A")',
            f'idx = td.placeholder(({n},), dtype="int32", name="idx")',
            f'P = td.compute(({n}, {kk}), lambda i, j: A[i, j] * 2.0, name="P")']
    gathered = text.format(n=n, k=kk).replace("A[", "P[")
    body.append(f'G = td.compute(({n}, {kk}), lambda i, j: {gathered} + 1.0, name="G")')
    np_body = ["a = x['A'] * np.float32(2.0)", f"g = {np_text} + np.float32(1.0)",
               "return [g]"]
    args = "[A, idx, G]" if "idx" in text else "[A, G]"
    return Program("gather", z.source(body, args), _oracle(z, np_body))


FAMILIES = {"elementwise": elementwise, "reduction": reduction, "stencil": stencil,
            "pipeline": pipeline, "recurrence": recurrence, "gather": gather}


def random_program(rng: np.random.Generator, family: str | None = None) -> Program:
    """A program of `family` (random if None) drawn with `rng`."""
    return FAMILIES[family or _pick(rng, tuple(FAMILIES))](rng)
