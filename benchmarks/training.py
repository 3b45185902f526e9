"""Time per training step of the digits MLP and CNN (examples/): tdsl against JAX
(`jax.jit` of `jax.value_and_grad`, XLA on the CPU) and NumPy written by hand
(benchmarks/training_peers.py), at batch 64 and 256, in one run.

    python benchmarks/training.py                # prints the table
    python benchmarks/training.py --write        # and replaces the "Training" section
                                                 # of benchmarks/RESULTS.md

A step is the forward pass, the loss, the backward pass and the SGD update of every
parameter: for tdsl the `step` and `sgd` kernels of examples/digits.py's Trainer, for
JAX one jitted function returning the new parameters, for NumPy the chain rule by hand
with the update in place. Every implementation's gradients are first checked against
the NumPy chain rule in float64 (a wrong one is reported, never timed); then
benchmarks/harness.py times them in interleaved rounds, as benchmarks/run.py does.

Threads: the process is pinned to the first `--threads` CPUs (sched_setaffinity, before
JAX, NumPy or tdsl start a thread pool), and OMP_NUM_THREADS, OPENBLAS_NUM_THREADS,
MKL_NUM_THREADS and TDSL_NUM_THREADS are set to it; XLA's CPU client sizes its thread
pool from the CPUs the process may use, so all three run on the same `--threads` cores.
GNU OpenMP's idle threads sleep (`OMP_WAIT_POLICY=passive`, `--omp-wait-policy`): on this
shared machine, with the default spinning, a team of two waited at each of the step's
barriers for a thread that another process's work had pushed off its core (the CNN step
at batch 64: median 66-90 ms spinning, 2.6-5.9 ms passive, 2.5-3.1 ms p10 either way).

Memory: glibc is asked to keep freed blocks (examples/digits.py: keep_freed_memory), for
every row: tdsl kernels and NumPy allocate large temporaries at each step, which glibc
would otherwise return to the OS and fault in again at the next step. XLA keeps its own
buffers.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- training.py: begin -->", "<!-- training.py: end -->"


def pin_threads(threads: int, wait_policy: str) -> None:
    """Every runtime on the same `threads` cores: call before numpy, jax or tdsl load.
    `wait_policy` is GNU OpenMP's (tdsl's threads): "passive" unless told otherwise."""
    try:
        cpus = sorted(os.sched_getaffinity(0))[:threads]
        os.sched_setaffinity(0, cpus)
    except (AttributeError, OSError):
        pass
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "TDSL_NUM_THREADS"):
        os.environ[var] = str(threads)
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=true")
    if wait_policy != "default":
        os.environ["OMP_WAIT_POLICY"] = wait_policy


def _args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batches", default="64,256")
    p.add_argument("--models", default="mlp,cnn")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--calls", type=int, default=20)
    p.add_argument("--omp-wait-policy", default="passive",
                   choices=("passive", "active", "default"),
                   help="GNU OpenMP's idle threads sleep (passive, for a machine shared with "
                   "other busy processes) or spin (active, fastest on a quiet machine)")
    p.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    return p.parse_args(argv)


# Which tdsl schedule each model's kernels get (examples/digits.py: "auto" is
# td.auto_schedule, "plain" the rules of examples/schedules.py).
SCHEDULES = {"mlp": "auto", "cnn": "plain"}
LR = 0.01


def prepare(kind: str, batch: int):
    """The three implementations of one workload as harness.Impl rows, each with its
    gradients at the initial parameters (for the check), and the float64 reference."""
    import numpy as np

    from benchmarks import harness, training_peers as peers
    from examples import digits, train_cnn, train_mlp

    model = {"mlp": train_mlp.model, "cnn": train_cnn.model}[kind]()
    grads_fn = {"mlp": peers.mlp_grads, "cnn": peers.cnn_grads}[kind]
    data = digits.load(model.image_shape)
    x = np.ascontiguousarray(data.x_train[:batch])
    t = digits.one_hot(data.y_train[:batch])
    init = [p.astype(np.float32) for p in model.init(np.random.default_rng(0))]
    _, reference = grads_fn([p.astype(np.float64) for p in init], x.astype(np.float64),
                            t.astype(np.float64))
    rows = []

    trainer = {}

    def tdsl_impl(threads=None):
        if not trainer:
            trainer["t"] = digits.Trainer(model, batch, how=SCHEDULES[kind])
            trainer["t"].params = [p.copy() for p in init]
            trainer["t"].gradients(x, t)
            trainer["grads"] = [g.copy() for g in trainer["t"].grads]
        tr = trainer["t"]

        def run():
            tr.set_threads(threads)
            tr.step(x, t, LR)
        return run, (lambda: trainer["grads"]), tr.compile_s

    def numpy_impl():
        params = [p.copy() for p in init]
        step = peers.numpy_step(grads_fn)
        _, grads = grads_fn(params, x, t)
        return (lambda: step(params, x, t, LR)), (lambda: grads), 0.0

    def jax_impl():
        import jax
        step, value_and_grad = peers.jax_step(kind)
        start = time.perf_counter()
        state = {"params": [jax.device_put(p) for p in init]}
        jax.block_until_ready(step(state["params"], x, t, LR))
        compile_s = time.perf_counter() - start
        grads = [np.asarray(g) for g in value_and_grad(state["params"], x, t)[1]]

        def run():
            loss, state["params"] = step(state["params"], x, t, LR)
            jax.block_until_ready(state["params"])
        return run, (lambda: grads), compile_s

    # "tdsl 1 thread": the same kernels with a team of one (a share of the budget that
    # needs no barrier; on a loaded machine a team of two waits for its other thread).
    for name, make in (("tdsl", tdsl_impl), ("tdsl 1 thread", lambda: tdsl_impl(1)),
                       ("jax", jax_impl), ("numpy", numpy_impl)):
        impl = harness.prepare_impl(name, make)
        impl.schedule = SCHEDULES[kind] if name.startswith("tdsl") else ""
        rows.append(impl)
    for impl in rows:
        if impl.timed:
            bad = _compare(impl.result(), reference, model)
            if bad:
                impl.status, impl.reason = "wrong", bad
    return rows


def _compare(got, want, model) -> str | None:
    """None if every gradient is within float32 rounding of the float64 chain rule."""
    import numpy as np
    for p, g, w in zip(model.params, got, want):
        scale = float(np.abs(w).max()) or 1.0
        err = float(np.abs(np.asarray(g, np.float64) - w).max()) / scale
        if not err < 1e-3:
            return f"d loss / d {p.name}: max error {err:.2g} of the largest gradient"
    return None


def table(results, threads: int, wait_policy: str) -> str:
    """The Markdown section: machine, then one row per implementation and workload."""
    import jax
    import numpy as np

    from benchmarks import harness, machine
    lines = [f"CPU: {machine._cpu_model()}, -march=native = {machine._native_march()}; "
             f"{threads} threads for every implementation (process pinned to {threads} "
             f"cores, OMP/OpenBLAS/TDSL threads = {threads}, XLA's pool sized by the "
             f"affinity), OMP_WAIT_POLICY={wait_policy} (tdsl's OpenMP threads); load "
             f"average at the end {machine._loadavg()} (the machine is "
             f"shared: above {threads}, other jobs took the cores). JAX {jax.__version__} "
             f"(XLA CPU), NumPy {np.__version__} ({machine._blas()}). One run, "
             "interleaved rounds (benchmarks/harness.py); a step = forward, loss, backward "
             "and the SGD update of every parameter. tdsl schedules: MLP "
             f"`td.auto_schedule`, CNN `{SCHEDULES['cnn']}` (examples/schedules.py).", "",
             "| model | batch | impl | median ms | p10 ms | IQR ms | vs jax (median) | "
             "compile s | note |", "|---|---:|---|---:|---:|---:|---:|---:|---|"]
    for (kind, batch), rows in results.items():
        jax_row = next((r for r in rows if r.name == "jax" and r.samples), None)
        jax_median = harness.Stats.of(jax_row.samples).median_s if jax_row else None
        for r in rows:
            if not r.samples:
                lines.append(f"| {kind} | {batch} | {r.name} | - | - | - | - | - | "
                             f"{r.status}: {r.reason} |")
                continue
            st = harness.Stats.of(r.samples)
            ratio = f"{jax_median / st.median_s:.2f}x" if jax_median else "-"
            lines.append(f"| {kind} | {batch} | {r.name} | {1e3 * st.median_s:.3f} | "
                         f"{1e3 * st.p10_s:.3f} | {1e3 * st.iqr_s:.3f} | {ratio} | "
                         f"{r.compile_s:.1f} | {r.schedule} |")
    lines += ["", "`vs jax` is JAX's median over this row's: above 1.00x the row is faster "
              "than JAX.", "", WHERE_TIME_GOES]
    return "\n".join(lines)


# What the profile of the CNN step showed (each stage built alone, one thread, batch 256;
# 2026-12-03), kept with the table because it explains the rows where tdsl is slower.
WHERE_TIME_GOES = """\
**Where tdsl loses time.** Measured on this machine (2026-12-02/03). (1) *Threads on a
shared machine.* Every parallel stage of a step ends at an OpenMP barrier, which waits
for the team's other thread. With GNU OpenMP's default (idle threads spin) and the load
average above the two cores, that thread was often off its core: in a run without
`OMP_WAIT_POLICY` the CNN's two-thread medians were 14.2 ms (batch 64) and 164 ms (256)
for p10s of 2.0 and 46.6 ms, against JAX's 3.1 and 13.5 ms. Sleeping threads (passive,
this table) fix that, but waking them costs more than the second thread saves on small
kernels: the one-thread rows are often tdsl's best. (2) *Speed per core, the CNN.*
td.grad now writes the second convolution's input gradient as a correlation of the
zero-padded head with the flipped kernel, made directly at the 8 x 8 interior
(`act1_grad`, tdsl/autodiff/correlate.py), and the pool's adjoint as an elementwise
select; examples/schedules.py register-tiles the convolutions (an output channel's 8
rows in registers) and the filter gradients (9 taps' partial sums in registers). One
thread then spends about 6.3 ms per step at batch 256 (each stage built alone, on a
loaded machine; 18.5 ms before, same conditions): 1.5 ms in `w2_grad`, 1.1 ms in
`act1_grad`, 0.8 ms in the forward `conv2_sum`, 0.8 ms in `act2_grad` (the pool's
adjoint: elementwise, but its `i // 2`, `i % 2` reads keep the vectorized row from being
contiguous), 0.5 ms in `fc_matmul`, 0.4 ms in `pool_argmax`. The convolutions run at
about 30-45 GFLOP/s of a core's ~100: each filter tap loads one unaligned row per output
row (one load per FMA), and `w2_grad` re-reads the padded input from L3 once per output
filter; a tile over several output channels, and a `td.auto_schedule` whose tiles fit
8 x 8 images, are what is left."""


def write_results(text: str, path: Path) -> None:
    """Replace the delimited section of RESULTS.md (or append it); the rest is untouched."""
    section = f"{BEGIN}\n## Training (benchmarks/training.py)\n\n{text}\n{END}"
    from benchmarks import report
    report.replace_section(path, BEGIN, END, section)


def main(argv: list[str] | None = None) -> int:
    opts = _args(argv)
    pin_threads(opts.threads, opts.omp_wait_policy)
    sys.path.insert(0, str(ROOT))
    from benchmarks import harness
    from examples.digits import keep_freed_memory
    keep_freed_memory()           # for every row: NumPy's temporaries are large blocks too
    results = {}
    for kind in opts.models.split(","):
        for batch in (int(b) for b in opts.batches.split(",")):
            print(f"{kind} batch {batch}: compiling and checking", flush=True)
            results[(kind, batch)] = prepare(kind, batch)
    for (kind, batch), rows in results.items():
        print(f"{kind} batch {batch}: timing", flush=True)
        harness.measure(rows, rounds=opts.rounds, calls=opts.calls)
    text = table(results, opts.threads, opts.omp_wait_policy)
    print(text)
    if opts.write:
        write_results(text, Path(__file__).with_name("RESULTS.md"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
