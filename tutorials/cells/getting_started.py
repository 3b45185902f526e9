"""Notebook 1, getting started: placeholders, compute, reductions, lower, build, symbolic
sizes, the generated C, td.reference."""

from . import NP_TIME, code, md

CELLS = [
    md("""
    # 1. Getting started: what to compute, and running it

    tdsl splits a kernel in two. The **algorithm** says *what* each element of the
    output is, as a Python lambda over index variables. The **schedule** says *how*
    to compute it: in what order the loops run, which are split into tiles, which
    run on parallel threads or as vector lanes. The two are written separately, so
    you can change how a kernel runs without any risk of changing what it computes.

    This notebook is about the first half. You will write algorithms
    (placeholders, `td.compute`, reductions), look at the loops tdsl makes for
    them (`td.lower`), compile them to C (`td.build`), call them on NumPy arrays of
    any size, read the generated C, and check results with `td.reference`.
    Scheduling starts in notebook 1b, one primitive at a time.

    *Prerequisites: Python and NumPy; reading a little C helps in section 8.*
    """),
    code("""
    import os
    import statistics
    import time

    import numpy as np

    import tdsl as td

    print("tdsl", td.__version__, "| NumPy", np.__version__)
    print("CPU:", td.machine.describe())
    """),
    md("""
    ## 1. Inputs are placeholders

    A placeholder is an input tensor: a name, a shape and a dtype (`float32` unless
    you say otherwise). A size can be a plain integer or a symbolic `td.var`; a
    symbolic size is not fixed when you compile, it is read from the arrays each
    time you call the kernel.
    """),
    code("""
    n = td.var("n")
    A = td.placeholder((n,), name="A")
    B = td.placeholder((n,), name="B")
    print(A, "| shape:", A.shape, "| dtype:", A.dtype)
    """),
    md("""
    ## 2. Outputs are computed by a lambda

    `td.compute(shape, fn)` defines a tensor by saying what *one* element is: `fn`
    receives one index variable per dimension and returns an expression. Nothing is
    computed here. `C` is a description (an expression tree) that the compiler will
    turn into loops; the names of the lambda's parameters become the names of the
    loops, which is how you will refer to them when scheduling.
    """),
    code("""
    C = td.compute((n,), lambda i: A[i] * 2.0 + B[i], name="C")
    print(C)
    print("axes:", C.op.axis)
    print("body:", C.op.body)
    """),
    md("""
    ## 3. A schedule, and the loops it means

    To compile a tensor you first give it a schedule. `td.create_schedule(C)` is the
    default one: one loop per axis, in order, nothing in parallel. `td.lower(s, args)`
    runs the front half of the compiler (isl builds the loop nest) and prints the
    result as Python-like pseudo-code. `args` lists the tensors the kernel will take,
    inputs first and outputs last. Whenever you are unsure what a schedule does,
    print its lowered loops.
    """),
    code("""
    s = td.create_schedule(C)
    print(td.lower(s, [A, B, C]))
    """),
    md("""
    ## 4. Build, and call on NumPy arrays

    `td.build` compiles the lowered loops to C with gcc and loads the result; the
    compiled library is cached on disk, so building the same kernel again is
    instant. The `Module` it returns is called with one NumPy array per tensor of
    `args`, in the same order. Outputs are written *into* the arrays you pass, so
    allocate them first (`np.empty`). Arrays must be C-contiguous and of the declared
    dtype.
    """),
    code("""
    mod = td.build(s, [A, B, C])
    a = np.arange(6, dtype=np.float32)
    b = np.ones(6, dtype=np.float32)
    c = np.empty(6, dtype=np.float32)
    mod(a, b, c)
    print("tdsl: ", c)
    print("NumPy:", a * 2.0 + b)
    """),
    md("""
    ## 5. Symbolic sizes

    Because `n` is symbolic, the same compiled module works for every length: at
    each call `n` is bound from the first array that has it, and every other array
    must agree. A wrong shape or dtype is caught *before* anything reaches the
    compiled code, with a message naming the argument and the reason, so a mistake
    raises an exception instead of crashing the Python process.
    """),
    code("""
    for length in (3, 1000):
        a = np.random.rand(length).astype(np.float32)
        b = np.random.rand(length).astype(np.float32)
        c = np.empty(length, dtype=np.float32)
        mod(a, b, c)
        print(f"n = {length}: equal to NumPy:", np.allclose(c, a * 2.0 + b))
    """),
    code("""
    try:
        mod(np.zeros(5, np.float32), np.zeros(4, np.float32), np.zeros(5, np.float32))
    except td.TdslError as e:
        print(type(e).__name__ + ":", e)
    try:
        mod(np.zeros(5), np.zeros(5, np.float32), np.zeros(5, np.float32))   # float64
    except td.TdslError as e:
        print(type(e).__name__ + ":", e)
    """),
    md("""
    ## 6. Reductions

    A reduction combines values along an axis that does not appear in the output.
    Declare that axis with `td.reduce_axis(extent, name=...)` and use it inside
    `td.sum(expr, axis=k)` (or `td.max`, `td.min`). In the lowered loops a reduction
    is two statements: an initialization (`S[i] = 0.0`) and an update inside the loop
    over `k`. Keep this shape in mind: the updates of one `S[i]` must not run at the
    same time, which is what notebook 3 (legality) is about.
    """),
    code("""
    m = td.var("m")
    X = td.placeholder((n, m), name="X")
    k = td.reduce_axis(m, name="k")
    S = td.compute((n,), lambda i: td.sum(X[i, k], axis=k), name="S")
    print(td.lower(td.create_schedule(S), [X, S]))
    """),
    md("""
    A reduction can combine any expression, not just one element. Here is a
    matrix-vector product, `y[i] = sum_k X[i, k] * v[k]`. Each reduction gets its own
    reduction axis: make a fresh `td.reduce_axis` for every `td.sum`.
    """),
    code("""
    v = td.placeholder((m,), name="v")
    kv = td.reduce_axis(m, name="kv")
    Y = td.compute((n,), lambda i: td.sum(X[i, kv] * v[kv], axis=kv), name="Y")
    print(td.lower(td.create_schedule(Y), [X, v, Y]))
    """),
    md("""
    ## 7. Several stages

    A computed tensor can read other computed tensors; each one becomes a *stage*.
    Below, every row of `X` is divided by its largest absolute value. The lowered
    code runs the stages in order and allocates a temporary buffer for the
    intermediate `M`. Where and when an intermediate is computed is again a
    schedule decision (notebook 4 is about exactly that).
    """),
    code("""
    km = td.reduce_axis(m, name="km")
    M = td.compute((n,), lambda i: td.max(td.abs(X[i, km]), axis=km), name="M")
    Z = td.compute((n, m), lambda i, j: X[i, j] / M[i], name="Z")
    s_norm = td.create_schedule(Z)
    print(td.lower(s_norm, [X, Z]))
    """),
    md("""
    ## 8. Reading the generated C

    `mod.source` is the C that gcc compiled. It starts with a prelude of helpers
    (floor division like Python's, a vectorizable `exp`, vector types); the kernel
    is the last function, printed below. Look for: the arrays arrive as `restrict`
    pointers (the call checks they do not overlap), followed by the symbolic sizes
    as 64-bit integers; 2-D arrays are indexed row-major by hand (`X[i * m + k]`);
    the intermediate `M` is allocated on the heap and freed; the return value is an
    error code that the Module turns into a Python exception.
    """),
    code("""
    mod_norm = td.build(s_norm, [X, Z])
    src = mod_norm.source
    start = src.index("int kernel(")
    print(src[start:])
    print(f"(the prelude before the kernel is {start} characters long)")
    """),
    md("""
    ## 9. `td.reference`: what a program means, in NumPy

    `td.reference(outputs, inputs)` evaluates the algorithm directly with NumPy: no
    schedule, no compiler. It is slow but plainly right, so it is the oracle to check
    a kernel against; a schedule changes *how*, never *what*.
    `td.testing.assert_equivalent` packages the check: it builds the schedule, runs
    it on random inputs at the sizes you give (pick awkward ones, like 37) and
    compares with the reference.
    """),
    code("""
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    z_ref = td.reference(Z, {X: x})
    z = np.empty_like(x)
    mod_norm(x, z)
    print(z_ref)
    print("kernel == reference:", np.allclose(z, z_ref))
    td.testing.assert_equivalent(s_norm, [X, Z], sizes={n: 37, m: 19})
    print("assert_equivalent passed at n=37, m=19")
    """),
    md("""
    ## 10. A first taste of scheduling

    The algorithm of `Z` says nothing about order, so a schedule may change it.
    Below, the rows run on parallel threads and each row's columns are split into
    groups of as many floats as one vector register holds (`td.target().lanes()`: 8
    with AVX2, 16 with AVX-512) that run as the lanes of one vector instruction.
    Compare the loops with section 7: the same statements, new loops, each marked
    with its kind. The result is unchanged, as `assert_equivalent` confirms.

    `m` is symbolic, so a row's length need not be a multiple of the vector width:
    the second loop, `for j_inner in range(m % lanes)`, is the *leftover* loop that
    computes the last `m % lanes` columns of each row. Notebook 1b explains this and
    every other primitive one at a time.
    """),
    code("""
    s_fast = td.create_schedule(Z)
    i, j = Z.op.axis
    jo, ji = s_fast[Z].split(j, factor=td.target().lanes("float32"))
    s_fast[Z].parallel(i)
    s_fast[Z].vectorize(ji)
    s_fast[M].parallel(M.op.axis[0])
    print(td.lower(s_fast, [X, Z]))
    td.testing.assert_equivalent(s_fast, [X, Z], sizes={n: 37, m: 19})
    print("assert_equivalent passed")
    """),
    md("""
    ## 11. Check against NumPy, and time it

    Every notebook ends the same way: the kernels agree with NumPy at a realistic
    size, and a small table says how long each takes. `mod.time(...)` runs the
    kernel alone a few times (the arguments are checked once, outside the timing)
    and reports the median; NumPy is timed the same way with `np_time`. Expect the
    element-wise kernels to be close to NumPy (memory sets their speed), and the
    default reductions to lose: their schedule is one chain of dependent additions,
    while NumPy sums with vector instructions. Notebooks 2 and 3 fix that; and a
    parallel kernel only wins when the cores are not busy with another program.
    """),
    code(NP_TIME),
    code("""
    rng = np.random.default_rng(1)
    rows, cols = 2048, 2048
    x = rng.standard_normal((rows, cols)).astype(np.float32)
    vv = rng.standard_normal(cols).astype(np.float32)
    a, b = x.ravel().copy(), rng.standard_normal(rows * cols).astype(np.float32)

    mod_c = mod
    mod_s = td.build(td.create_schedule(S), [X, S])
    mod_y = td.build(td.create_schedule(Y), [X, v, Y])
    mod_fast = td.build(s_fast, [X, Z])
    c, srow, y, z, z2 = (np.empty(a.shape, np.float32), np.empty(rows, np.float32),
                         np.empty(rows, np.float32), np.empty_like(x), np.empty_like(x))
    mod_c(a, b, c)
    mod_s(x, srow)
    mod_y(x, vv, y)
    mod_norm(x, z)
    mod_fast(x, z2)
    z_np = x / np.abs(x).max(axis=1, keepdims=True)
    assert np.allclose(c, a * 2.0 + b)
    assert np.allclose(srow, x.sum(axis=1), rtol=1e-4, atol=1e-3)
    assert np.allclose(y, x @ vv, rtol=1e-4, atol=1e-3)
    assert np.allclose(z, z_np) and np.allclose(z2, z_np)
    print("all kernels agree with NumPy")
    """),
    code("""
    print(td.machine.describe(), "| load average:", os.getloadavg()[0])
    def ms(seconds):
        return f"{seconds * 1e3:.2f}"


    print_table(("kernel (2048 x 2048 float32)", "tdsl ms", "NumPy ms"), [
        ("C = 2 A + B  (4M elements)", ms(mod_c.time(a, b, c).median),
         ms(np_time(lambda: a * 2.0 + b))),
        ("S = row sums", ms(mod_s.time(x, srow).median), ms(np_time(lambda: x.sum(axis=1)))),
        ("Y = X @ v", ms(mod_y.time(x, vv, y).median), ms(np_time(lambda: x @ vv))),
        ("Z = rows / max |row|, default", ms(mod_norm.time(x, z).median),
         ms(np_time(lambda: x / np.abs(x).max(axis=1, keepdims=True)))),
        ("Z, parallel + vectorized", ms(mod_fast.time(x, z2).median), ""),
    ])
    """),
    md("""
    **What to remember.** An algorithm is placeholders plus `td.compute` lambdas;
    reductions use a `td.reduce_axis`. `td.lower` shows the loops, `td.build` compiles
    them, the module runs on NumPy arrays of any size the symbolic shapes allow, and
    `td.reference` / `td.testing.assert_equivalent` say whether a kernel is right.

    **Try it.** Write a row softmax of `X` with `td.exp`: subtract the row max,
    exponentiate, divide by the row sum (three or four stages, each reduction with
    its own `td.reduce_axis`). Check it two ways: `td.testing.assert_equivalent(
    td.create_schedule(SM), [X, SM], sizes={n: 37, m: 19})`, and against NumPy: on a
    random `x`, `np.allclose(sm, np.exp(x - x.max(1, keepdims=True)) / ...)` and every
    row of `sm` sums to 1. Solution: `tutorials/solutions/01_getting_started.py`.
    Then go on to notebook 1b, where the schedule's primitives come one at a time.
    """),
]
