"""Notebook 8, networks: an ONNX model compiled by td.compile into one library: the
kernels it was cut into and why (fusion patterns, batch_norm folding, recompute or
materialize), the memory plan, a check and a timing against ONNX Runtime, the export,
td.load in a process without isl, and a C program that runs the library."""

from . import NP_TIME, code, md

CELLS = [
    md("""
    # 8. From a model to one library

    The earlier notebooks compiled one kernel at a time. A network is a graph of
    dozens of operators, and compiling it well is more than compiling each operator:
    which operators share a kernel (so an intermediate never goes to memory), which
    weights can be precomputed once, and how little memory the intermediates that
    remain need. `td.compile` does all of it and returns **one** C library with one
    entry point, the weights inside.

    The steps:

    1. build a small ResNet as an ONNX file and compile it with `td.compile(path)`;
    2. read `print(net)`: the fusion decisions, batch_norm folding, the memory plan;
    3. check it against ONNX Runtime on several inputs, and time both;
    4. export it, load it from a Python that has no compiler, and call it from C;
    5. try it: change the model and predict its kernels.

    It needs the `onnx` and `onnxruntime` packages (`pip install -e '.[test]'`).
    """),
    code("""
    import os
    import statistics
    import subprocess
    import sys
    import tempfile
    import textwrap
    import time
    from collections import Counter
    from pathlib import Path

    import numpy as np
    import onnx
    import onnxruntime as ort

    import tdsl as td
    from tdsl.testing import onnx_models
    """),
    code(NP_TIME),
    md("""
    ## 1. A model in ONNX

    ONNX is the exchange format of deep-learning frameworks: a graph of standard
    operators (`Conv`, `BatchNormalization`, `Relu`, `Gemm`, ...) with the weights as
    initializers. `torch.onnx.export` writes one; here `tdsl.testing.onnx_models` builds
    one with `onnx.helper`, without a download: a ResNet with two residual blocks
    (one keeps the shape, one halves the image and doubles the channels through a
    1x1 projection), on 32 x 32 images, 10 classes, random weights from a fixed seed.
    """),
    code("""
    folder = Path(tempfile.mkdtemp(prefix="tdsl-networks-"))
    model = onnx_models.resnet18(image=32, width=8, blocks=(1, 1), classes=10)
    path = folder / "resnet.onnx"
    onnx.save(model, path)

    print(f"{path.name}: {path.stat().st_size / 1024:.0f} KiB, {len(model.graph.node)} nodes, "
          f"{len(model.graph.initializer)} weight tensors")
    print("input ", [(i.name, [d.dim_value for d in i.type.tensor_type.shape.dim])
                     for i in model.graph.input])
    print("output", [(o.name, [d.dim_value for d in o.type.tensor_type.shape.dim])
                     for o in model.graph.output])
    print(dict(Counter(n.op_type for n in model.graph.node)))
    for node in model.graph.node[:6]:
        print(f"  {node.name:8} {node.op_type:20} {list(node.input)} -> {list(node.output)}")
    """),
    md("""
    `td.compile` reads the file (`tdsl.frontends.onnx`: each ONNX operator becomes a
    `tdsl.nn` operator, each initializer a weight), cuts the graph into kernels,
    schedules each one with `td.auto_schedule` (isl checks every schedule), compiles
    them all with gcc into one library and loads it. The library goes into the compile
    cache: a second `td.compile` of the same model takes a fraction of a second.
    """),
    code("""
    start = time.perf_counter()
    net = td.compile(str(path))
    print(f"compiled in {time.perf_counter() - start:.1f} s (from the cache: {net.cached})")
    print(repr(net))
    start = time.perf_counter()
    again = td.compile(str(path))
    print(f"again: {time.perf_counter() - start:.2f} s (from the cache: {again.cached})")

    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype("float32")
    y = net(x)                               # NumPy in, NumPy out
    print(y.shape, y.round(3))
    """),
    md("""
    What the importer does not know, it refuses, naming the operator and the node,
    before anything is compiled: a wrong result is never an option. Here a model with
    a local response normalization (`LRN`, from AlexNet), which tdsl's importer does
    not convert. A wrong input array is refused at the call, like a kernel's.
    """),
    code("""
    from onnx import TensorProto, helper

    image = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["h"], name="relu"),
                               helper.make_node("LRN", ["h"], ["y"], name="norm", size=3)],
                              "alexnet_piece", [image], [image])
    try:
        td.compile(helper.make_model(graph))
    except td.TdslError as e:
        print(textwrap.fill(f"{type(e).__name__}: {e}", 100))
    try:
        net(np.ascontiguousarray(x[:, :, :31]))         # one row short
    except ValueError as e:
        print(f"{type(e).__name__}: {e}")
    """),
    md("""
    ## 2. What `print(net)` says

    `print(net)` lists every kernel with the operators inside it, its schedule and its
    share of the time, then the memory plan. The schedules are the long part; here
    they are left out (each is the `td.auto_schedule` text of notebook 7), and the
    first kernel's is shown after. The time shares count every call so far, and so
    far there was one: a first call on several threads also starts OpenMP's threads,
    inside its first parallel loops, so its shares say little. Section 3 measures
    them over many calls.
    """),
    code("""
    text = str(net)
    print("\\n".join(line for line in text.splitlines() if not line.startswith("    ")))
    """),
    md("""
    **Fusion.** Each stage has a *pattern*, the classes TVM's FuseOps and XLA use:
    `elementwise` (Relu, Add), `broadcast` (a bias added per channel), `injective` (a
    copy with new indices: the zero padding of a convolution), `reduction` (a sum, a
    max), `out_fusable` (a convolution or a matrix multiply: a reduction whose output
    can take an elementwise epilogue). The rules: injective stages go into their
    consumer (the max pool's padding is computed inside its kernel; a convolution's
    zero padding is not computed at all: the convolution reads its input in place and
    skips the taps that fall on the zeros, as ONNX Runtime's MLAS does); elementwise
    and broadcast stages after an `out_fusable` one become its epilogue, in the same C
    function. So `conv_3`, its folded batch norm's bias, the residual `Add` and the
    `Relu` are one kernel, and of the four only the block's output leaves it. (Inside
    the kernel, `td.auto_schedule` still decides what gets a buffer: here the raw
    convolution gets a small one of the kernel's own, a strip of pixels held in
    registers, and the epilogue is a second loop over that strip while it is in
    cache.) A kernel holds
    one `out_fusable` stage, so the 1x1 projection of the shortcut (`conv_6`) is a
    kernel of its own, whose output the `Add` inside `conv_5`'s kernel reads.

    **Batch norm folding.** At inference a batch norm is `gamma * (z - mean) /
    sqrt(var + eps) + beta`, an affine map per channel. Applied to a convolution's
    output it can be multiplied into the convolution's weights and added to its bias
    once, at compile time: the `folded:` lines. The per-channel scale
    `gamma / sqrt(var + eps)` depends on weights only, so it is evaluated at compile
    time too (`evaluated at compile time:`), and the `bn_*` stages left in the kernels
    are just the bias addition.

    **Recompute or materialize.** Fusing a producer into a reader that reads each
    element many times repeats its work: a matrix multiply reads each element of its
    left operand once per output column. Where the patterns allow both, `td.compile`
    counts the work of each plan (operations per point, times the points of the
    iteration domains) and picks the cheaper, SystemML's choice: the `fusion choice:`
    line. Here the global average pool's division, recomputed once per output class
    inside the final `Gemm`, would cost a little more than one write and one read of
    its 16 values, so it gets its own buffer.
    """),
    code("""
    print(f"kernel 0: {net.kernels[0].name}, stages {net.kernels[0].stages}")
    print(net.kernels[0].schedule)
    for folding in net.folded:
        print(folding)
    for choice in net.choices:
        print(choice)
    assert any(f.what == "batch_norm" for f in net.folded)
    assert len(net.kernels) < len(model.graph.node)
    """),
    md("""
    **The memory plan.** Every stage that stays between two kernels needs a buffer
    (the buffers inside a kernel are its own business).
    Each is live from the kernel that writes it to the last kernel that reads it; two
    buffers that are never live at the same time can share memory. The plan places
    them in one arena, allocated once per call: its size is the *peak* of the live
    bytes, against the sum of the buffers if each had its own (the numbers in the plan
    above). The `kernels a..b` column is each buffer's lifetime.
    """),
    code("""
    print(net.plan)
    print(f"peak {net.plan.peak:,} bytes vs {net.plan.total:,} bytes with one buffer each: "
          f"{net.plan.peak / net.plan.total:.0%}")
    assert net.plan.peak < net.plan.total
    """),
    md("""
    ## 3. Against ONNX Runtime

    ONNX Runtime runs the same file; it is the reference. The outputs agree to
    float32 rounding (the sums run in a different order) on several random inputs.
    """),
    code("""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    for trial in range(5):
        x = rng.standard_normal((1, 3, 32, 32)).astype("float32")
        want = session.run(None, {"x": x})[0]
        got = net(x)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
        print(f"input {trial}: max |tdsl - ORT| = {np.abs(got - want).max():.1e}, "
              f"same class: {got.argmax() == want.argmax()}")
    """),
    md("""
    A timing of one inference, one thread each (`num_threads=1`; ONNX Runtime's
    `intra_op_num_threads=1`), so the table compares the code rather than how busy
    the machine's other cores are. Both are called from Python with a NumPy array; at
    this size the call itself is a good share of the time. These are the numbers of
    this machine only; `benchmarks/networks.py` measures the full-size models.
    """),
    code("""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session1 = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    ms = {
        "tdsl (td.compile)": np_time(lambda: net(x, num_threads=1), repeat=50) * 1e3,
        f"ONNX Runtime {ort.__version__}": np_time(lambda: session1.run(None, {"x": x}),
                                                   repeat=50) * 1e3,
    }
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), "unknown CPU") \\
        if os.path.exists("/proc/cpuinfo") else "unknown CPU"
    print(f"{cpu}; {td.target().describe()}")
    print_table(("runtime", "ms per inference (median of 50)"),
                [(name, f"{t:.3f}") for name, t in ms.items()])
    """),
    md("""
    The library counts the time spent in each kernel, summed over every call: that is
    what `print(net)` reports as shares. Reading the counters before and after each
    call gives one call's time per kernel; the median over 50 calls (a sum over calls
    would let one call the machine interrupted dominate) shows the convolutions'
    kernels taking most of it. The kernels' total compares with the table's median:
    the rest of a call is Python and the checks of the arrays at the boundary, a few
    microseconds with tdsl's C extension for calls (`tdsl/runtime/_fastcall.c`;
    about 25 µs through ctypes where it is not built).
    """),
    code("""
    per_call = []
    for _ in range(50):
        before = net.kernel_seconds()
        net(x, num_threads=1)
        per_call.append([now - then for now, then in zip(net.kernel_seconds(), before)])
    per_kernel = np.median(per_call, axis=0)
    print_table(("kernel", "ms (median)", "share", "stages"),
                [(k.name, f"{s * 1e3:.4f}", f"{s / per_kernel.sum():.0%}", ", ".join(k.stages))
                 for k, s in zip(net.kernels, per_kernel)])
    print(f"in the kernels: {np.median(np.sum(per_call, axis=1)) * 1e3:.3f} ms per call (median)")
    """),
    md("""
    ## 4. One library: export, load, call from C

    `net.export(path)` copies the library (every kernel, the weights as constant
    arrays, the entry point `network_call`, a JSON manifest of the arguments) to
    `path` and writes a C header beside it. The header documents the entry:
    """),
    code("""
    header = net.export(folder / "resnet.so")
    print(header.name, "and", (folder / "resnet.so").name,
          f"({(folder / 'resnet.so').stat().st_size / 1024:.0f} KiB)")
    text = header.read_text()
    print(text[text.index("/* network_call"):text.index("/* network:")])
    """),
    md("""
    `td.load` reads the manifest and calls the entry through ctypes: it needs no
    compiler, no isl and none of tdsl's lowering. To show it, a fresh Python loads the
    library with `islpy` made unimportable and gcc unreachable, runs it, and lists
    which of tdsl's compiler packages it imported (none).
    """),
    code("""
    child = textwrap.dedent('''
        import sys
        class Blocked:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("islpy", "cgen"):
                    raise ImportError("blocked: " + name)
        sys.meta_path.insert(0, Blocked())
        import numpy as np
        import tdsl as td
        net = td.load(sys.argv[1] + "/resnet.so")
        np.save(sys.argv[1] + "/child.npy", net(np.load(sys.argv[1] + "/x.npy")))
        print(net)
        print("compiler modules imported:", sorted(m for m in sys.modules if m.startswith(
            ("islpy", "cgen", "tdsl.poly", "tdsl.schedule", "tdsl.graph", "tdsl.backends"))))
    ''')
    np.save(folder / "x.npy", x)
    env = dict(os.environ, TDSL_CC="/nonexistent/gcc")
    run = subprocess.run([sys.executable, "-c", child, str(folder)], env=env,
                         capture_output=True, text=True, timeout=120)
    print(run.stdout or run.stderr)
    np.testing.assert_array_equal(np.load(folder / "child.npy"), net(x))
    """),
    md("""
    And without Python at all: a C program includes the header, links the library,
    and calls `network_call` with one pointer and one shape per argument (inputs then
    outputs) and a thread count. The entry checks every shape before it runs a kernel
    and returns an error code and a message otherwise, like a Python call would. The
    program reads the image from a file, writes the 10 scores to another, and asks for
    one wrong shape to show the refusal.
    """),
    code("""
    c_program = r'''
    #include <stdio.h>
    #include "resnet.h"

    int main(void) {
      static float x[1 * 3 * 32 * 32], y[1 * 10];
      FILE* f = fopen("x.bin", "rb");
      if (!f || fread(x, sizeof x, 1, f) != 1) return 1;
      fclose(f);
      void* data[2] = {x, y};
      const int64_t shape_x[4] = {1, 3, 32, 32}, shape_y[2] = {1, 10};
      const int64_t* shapes[2] = {shape_x, shape_y};
      char err[256];
      int rc = network_call(data, shapes, 1, err, sizeof err);
      if (rc != TDSL_OK) { printf("error %d: %s\\n", rc, err); return 1; }
      f = fopen("y.bin", "wb");
      fwrite(y, sizeof y, 1, f);
      fclose(f);
      const int64_t bad[4] = {1, 3, 31, 32};
      const int64_t* wrong[2] = {bad, shape_y};
      rc = network_call(data, wrong, 1, err, sizeof err);
      printf("wrong shape: error %d: %s\\n", rc, err);
      return 0;
    }
    '''
    (folder / "main.c").write_text(c_program)
    x.tofile(folder / "x.bin")
    build = subprocess.run(["gcc", "-std=c11", "-Wall", "main.c", "resnet.so",
                            f"-Wl,-rpath,{folder}", "-o", "main"],
                           cwd=folder, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    run = subprocess.run(["./main"], cwd=folder, capture_output=True, text=True, timeout=60)
    print(run.stdout)
    y_c = np.fromfile(folder / "y.bin", "float32").reshape(1, 10)
    print("C:     ", y_c.round(4))
    print("Python:", net(x).round(4))
    np.testing.assert_array_equal(y_c, net(x, num_threads=1))
    """),
    md("""
    ## 5. Try it

    Predict, then check. An MLP exported from PyTorch is a chain of `Gemm` (a dense
    layer with its bias) and `Relu`. Each `Gemm` is an `out_fusable` stage, its bias
    and the `Relu` after it are its epilogue: one kernel per layer, and one buffer per
    hidden layer, of which only two are live at once (a layer reads one, writes the
    next). Change `sizes` (more layers, wider ones), predict the kernel count and the
    peak, and run the cell. A transformer
    block (`onnx_models.transformer_block(seq=16, width=32, heads=2)`) is a harder
    prediction: which of its softmax, layer norms and matrix multiplies share a kernel?
    """),
    code("""
    sizes = (64, 128, 128, 64, 10)
    mlp = onnx_models.mlp(sizes=sizes)
    small = td.compile(mlp)
    print("\\n".join(line for line in str(small).splitlines() if not line.startswith("    ")))

    layers = len(sizes) - 1
    assert len(small.kernels) == layers, (len(small.kernels), layers)
    assert len(small.plan.slots) == layers - 1 and small.plan.peak < small.plan.total
    session = ort.InferenceSession(mlp.SerializeToString(), providers=["CPUExecutionProvider"])
    v = np.random.default_rng(2).standard_normal((1, sizes[0])).astype("float32")
    np.testing.assert_allclose(small(v), session.run(None, {"x": v})[0], rtol=1e-4, atol=1e-4)
    print(f"{layers} layers -> {len(small.kernels)} kernels; peak {small.plan.peak} bytes "
          f"of {small.plan.total}; same outputs as ONNX Runtime")
    """),
    md("""
    **What to remember.** `td.compile` turns a model into one library in three
    decisions you can read: which stages share a kernel (the operator patterns, and a
    count of the work where fusing would repeat it), which work moves to compile time
    (batch norms folded into the weights), and where the intermediates live (an arena
    sized by liveness). Every kernel is scheduled by `td.auto_schedule` and proven
    legal by isl like the kernels of the earlier notebooks. The result runs from
    Python with one call per inference, loads without a compiler, and links into a C
    program through its header.
    """),
]
