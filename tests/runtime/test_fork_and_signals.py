"""A Module survives fork (the child calls parallel kernels after the parent ran one,
though GNU OpenMP's pool does not survive fork) and Ctrl-C during a long kernel.

Each test runs its own Python process: forking the test runner, or sending it SIGINT,
would test pytest rather than tdsl.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(code: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args],
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


FORK = """
    import os, signal, sys, threading
    import numpy as np
    import tdsl as td

    def twice(name):
        n = td.var("n")
        X = td.placeholder((n, 64), name="X")
        Y = td.compute((n, 64), lambda i, j: X[i, j] * 2.0 + 1.0, name="Y")
        s = td.create_schedule(Y)
        s[Y].parallel(Y.op.axis[0])
        return td.build(s, [X, Y], name=name)

    mod = twice("twice")
    other = twice("other")
    other.export(sys.argv[1])                  # loaded only in the child, below
    x = np.arange(256 * 64, dtype="float32").reshape(256, 64)
    y = np.zeros_like(x)
    mod(x, y, num_threads=2)                   # the parent's OpenMP pool now exists
    assert (y == x * 2 + 1).all()

    def child():
        signal.alarm(60)                       # a hang fails the test, not the suite
        y = np.zeros_like(x)
        mod(x, y, num_threads=2)               # the thread that forked
        assert (y == x * 2 + 1).all()
        loaded = td.load(sys.argv[1])          # first loaded after the fork
        y[:] = 0
        loaded(x, y, num_threads=2)
        assert (y == x * 2 + 1).all()
        out = []
        t = threading.Thread(target=lambda: out.append(mod(x, np.empty_like(x))))
        t.start(); t.join()                    # a thread born in the child
        assert out == [None]
        grandchild = os.fork()                 # and once more
        if grandchild == 0:
            signal.alarm(60)
            z = np.zeros_like(x)
            mod(x, z, num_threads=2)
            os._exit(0 if (z == x * 2 + 1).all() else 3)
        _, status = os.waitpid(grandchild, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status

    for round in range(2):
        pid = os.fork()
        if pid == 0:
            try:
                child()
                code = 0
            except BaseException as e:
                print("child failed:", repr(e), flush=True)
                code = 1
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, f"child exit {status}"
        y[:] = 0
        mod(x, y, num_threads=2)               # the parent is unaffected
        assert (y == x * 2 + 1).all()
    print("fork ok")
"""


def test_forked_children_run_parallel_kernels(tmp_path):
    result = _run(FORK, str(tmp_path / "other.so"))
    assert "fork ok" in result.stdout


CTRL_C = """
    import os, signal, threading, time
    import numpy as np
    import tdsl as td

    # Ctrl-C as at a terminal: a job started in the background by a shell without job
    # control (`cmd &` in a script) inherits SIGINT ignored, and Python then installs no
    # KeyboardInterrupt handler at all
    signal.signal(signal.SIGINT, signal.default_int_handler)

    n = td.var("n")
    A = td.placeholder((n, n), name="A")
    B = td.placeholder((n, n), name="B")
    k = td.reduce_axis(n, name="k")
    C = td.compute((n, n), lambda i, j: td.sum(A[i, k] * B[k, j], axis=k), name="C")
    mod = td.build(td.create_schedule(C), [A, B, C])
    rng = np.random.default_rng(0)
    a, b = rng.random((900, 900), "float32"), rng.random((900, 900), "float32")
    c = np.zeros((900, 900), "float32")
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
    start = time.perf_counter()
    timer.start()
    try:
        mod(a, b, c)                           # about a second of naive matmul
        time.sleep(5)                          # if the kernel was faster than the timer
        print("no interrupt")
    except KeyboardInterrupt:
        print(f"interrupted after {time.perf_counter() - start:.2f} s")
        # The signal waits for the kernel (it runs without the GIL) and is raised after.
        print("kernel completed:", np.allclose(c, a @ b, rtol=1e-3))
    small_a, small_b = a[:5, :5].copy(), b[:5, :5].copy()
    try:
        mod(small_a, small_b, np.zeros((5, 6), "float32"))
    except ValueError as e:
        print("still checks:", "argument C" in str(e))
    small_b = b[:5, :5].copy()
    out = np.zeros((5, 5), "float32")
    mod(a[:5, :5].copy(), small_b, out)
    assert np.allclose(out, a[:5, :5] @ small_b, rtol=1e-5)
    print("usable after Ctrl-C")
"""


def test_ctrl_c_during_a_kernel_leaves_the_module_usable():
    result = _run(CTRL_C)
    assert "interrupted after" in result.stdout, result.stdout
    assert "kernel completed: True" in result.stdout
    assert "still checks: True" in result.stdout
    assert "usable after Ctrl-C" in result.stdout
