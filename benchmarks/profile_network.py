"""Profile networks compiled by `td.compile`: per-kernel time share and GFLOP/s, and the
same network in ONNX Runtime (2 threads) timed interleaved in the same process.

    python -m benchmarks.profile_network resnet18 mobilenetv2 mlp1 mlp64 transformer
    python -m benchmarks.profile_network resnet18 --kernels     # per-kernel table
    python -m benchmarks.profile_network resnet18 --export /tmp/new # library of this tdsl
    python -m benchmarks.profile_network resnet18 --compare /tmp/old /tmp/new  # interleaved

Each network is built twice by one builder (`Net`): as tdsl.nn stages and as an ONNX
graph with the same weights, so the two compute the same function (checked before
timing). GFLOP/s counts 2 flops per multiply-add of convolutions and dense layers only.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time

import numpy as np

import tdsl as td
from tdsl import nn


class Net:
    """Builds a tdsl graph and the equivalent ONNX graph side by side."""

    def __init__(self, seed=0):
        from onnx import helper
        self.h = helper
        self.rng = np.random.default_rng(seed)
        self.params: dict = {}
        self.nodes: list = []
        self.inits: list = []
        self.flops = 0
        self.k = 0

    def name(self, base):
        self.k += 1
        return f"{base}{self.k}"

    def weight(self, shape, scale=None, positive=False):
        name = self.name("w")
        fan = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        a = self.rng.standard_normal(shape).astype("float32")
        a *= scale if scale is not None else 1.0 / math.sqrt(max(fan, 1))
        if positive:
            a = np.abs(a) + 0.5
        t = td.placeholder(shape, name=name)
        self.params[t] = a.astype("float32")
        from onnx import numpy_helper
        self.inits.append(numpy_helper.from_array(self.params[t], name))
        return t, name

    def node(self, op, ins, **attrs):
        out = self.name(op.lower())
        self.nodes.append(self.h.make_node(op, ins, [out], **attrs))
        return out

    # each op: (tdsl tensor, onnx name) -> (tdsl tensor, onnx name)
    def conv(self, x, cout, k, stride=1, pad=0, groups=1, bias=False):
        t, o = x
        cin = int(t.shape[1].value)
        w, wn = self.weight((cout, cin // groups, k, k))
        b, bn = self.weight((cout,), scale=0.1) if bias else (None, None)
        y = nn.conv2d(t, w, b, stride=stride, padding=pad, groups=groups)
        oh, ow = int(y.shape[2].value), int(y.shape[3].value)
        self.flops += 2 * cout * oh * ow * (cin // groups) * k * k
        ins = [o, wn] + ([bn] if bias else [])
        return y, self.node("Conv", ins, kernel_shape=[k, k], strides=[stride, stride],
                            pads=[pad] * 4, group=groups)

    def bn(self, x):
        t, o = x
        c = int(t.shape[1].value)
        g, gn = self.weight((c,), scale=0.2, positive=True)
        b, bn = self.weight((c,), scale=0.1)
        m, mn = self.weight((c,), scale=0.1)
        v, vn = self.weight((c,), scale=0.2, positive=True)
        return nn.batch_norm(t, g, b, m, v), self.node("BatchNormalization",
                                                       [o, gn, bn, mn, vn])

    def relu(self, x):
        return nn.relu(x[0]), self.node("Relu", [x[1]])

    def relu6(self, x):
        lo, hi = self._scalar(0.0), self._scalar(6.0)
        return nn.minimum(nn.maximum(x[0], 0.0), 6.0), self.node("Clip", [x[1], lo, hi])

    def _scalar(self, v):
        from onnx import numpy_helper
        name = self.name("c")
        self.inits.append(numpy_helper.from_array(np.array(v, np.float32), name))
        return name

    def add(self, a, b):
        return nn.add(a[0], b[0]), self.node("Add", [a[1], b[1]])

    def maxpool(self, x, k, stride, pad):
        return nn.max_pool2d(x[0], k, stride, pad), \
            self.node("MaxPool", [x[1]], kernel_shape=[k, k], strides=[stride] * 2,
                      pads=[pad] * 4)

    def gap_flatten(self, x):
        y = nn.flatten(nn.global_avg_pool2d(x[0]))
        return y, self.node("Flatten", [self.node("GlobalAveragePool", [x[1]])])

    def dense(self, x, out, bias=True):
        t, o = x
        fin = int(t.shape[-1].value)
        w, wn = self.weight((out, fin))
        b, bn = self.weight((out,), scale=0.1) if bias else (None, None)
        rows = int(np.prod([int(d.value) for d in t.shape[:-1]]))
        self.flops += 2 * rows * fin * out
        y = nn.dense(t, w, b)
        if bias:
            return y, self.node("Gemm", [o, wn, bn], transB=1)
        return y, self.node("Gemm", [o, wn], transB=1)

    def onnx_model(self, x, y, in_shape):
        h = self.h
        from onnx import TensorProto
        out_shape = [int(d.value) for d in y[0].shape]
        graph = h.make_graph(self.nodes, "net",
                             [h.make_tensor_value_info(x[1], TensorProto.FLOAT, in_shape)],
                             [h.make_tensor_value_info(y[1], TensorProto.FLOAT, out_shape)],
                             self.inits)
        return h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])

    def input(self, shape):
        return td.placeholder(shape, name="x"), "x"


def resnet18(size=224):
    n = Net(0)
    x = n.input((1, 3, size, size))
    h = n.relu(n.bn(n.conv(x, 64, 7, 2, 3)))
    h = n.maxpool(h, 3, 2, 1)
    cin = 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        for b in range(2):
            s = stride if b == 0 else 1
            y = n.relu(n.bn(n.conv(h, cout, 3, s, 1)))
            y = n.bn(n.conv(y, cout, 3, 1, 1))
            skip = h if (s == 1 and cin == cout) else n.bn(n.conv(h, cout, 1, s, 0))
            h = n.relu(n.add(y, skip))
            cin = cout
    y = n.dense(n.gap_flatten(h), 1000)
    return n, x, y, (1, 3, size, size)


def mobilenetv2(size=224):
    n = Net(1)
    x = n.input((1, 3, size, size))
    h = n.relu6(n.bn(n.conv(x, 32, 3, 2, 1)))
    cin = 32
    for t, c, reps, s in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                          (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)):
        for r in range(reps):
            stride = s if r == 0 else 1
            hidden = cin * t
            y = h
            if t != 1:
                y = n.relu6(n.bn(n.conv(y, hidden, 1)))
            y = n.relu6(n.bn(n.conv(y, hidden, 3, stride, 1, groups=hidden)))
            y = n.bn(n.conv(y, c, 1))
            h = n.add(h, y) if (stride == 1 and cin == c) else y
            cin = c
    h = n.relu6(n.bn(n.conv(h, 1280, 1)))
    y = n.dense(n.gap_flatten(h), 1000)
    return n, x, y, (1, 3, size, size)


def mlp(batch):
    n = Net(2)
    x = n.input((batch, 784))
    h = n.relu(n.dense(x, 512))
    h = n.relu(n.dense(h, 512))
    y = n.dense(h, 10)
    return n, x, y, (batch, 784)


def transformer(seq=128, width=256, heads=4, hidden=1024):
    """A post-norm encoder block: multi-head attention, layer_norm, gelu MLP, layer_norm."""
    n = Net(3)
    x = n.input((seq, width))
    dh = width // heads

    def split_heads(t):                # (seq, width) -> (heads, seq, dh)
        y = nn.transpose(nn.reshape(t[0], (seq, heads, dh)), (1, 0, 2))
        shp = n._const_shape((seq, heads, dh))
        o = n.node("Transpose", [n.node("Reshape", [t[1], shp])], perm=[1, 0, 2])
        return y, o

    q, k, v = (split_heads(n.dense(x, width)) for _ in range(3))
    kt = nn.transpose(k[0], (0, 2, 1)), n.node("Transpose", [k[1]], perm=[0, 2, 1])
    scores = nn.mul(nn.batch_matmul(q[0], kt[0]), 1.0 / math.sqrt(dh)), None
    n.flops += 2 * 2 * heads * seq * seq * dh
    sc = n.node("Mul", [n.node("MatMul", [q[1], kt[1]]), n._scalar(1.0 / math.sqrt(dh))])
    p = nn.softmax(scores[0]), n.node("Softmax", [sc], axis=-1)
    a = nn.batch_matmul(p[0], v[0]), n.node("MatMul", [p[1], v[1]])
    a = nn.reshape(nn.transpose(a[0], (1, 0, 2)), (seq, width)), \
        n.node("Reshape", [n.node("Transpose", [a[1]], perm=[1, 0, 2]),
                           n._const_shape((seq, width))])
    h = n.layer_norm(n.add(x, n.dense(a, width)))
    f = n.dense(n.gelu(n.dense(h, hidden)), width)
    y = n.layer_norm(n.add(h, f))
    return n, x, y, (seq, width)


def _const_shape(self, shape):
    from onnx import numpy_helper
    name = self.name("shape")
    self.inits.append(numpy_helper.from_array(np.array(shape, np.int64), name))
    return name


def _layer_norm(self, x):
    c = int(x[0].shape[-1].value)
    g, gn = self.weight((c,), scale=0.2, positive=True)
    b, bn = self.weight((c,), scale=0.1)
    return nn.layer_norm(x[0], g, b), self.node("LayerNormalization", [x[1], gn, bn],
                                                axis=-1, epsilon=1e-5)


def _gelu(self, x):
    # ONNX opset 17 has no Gelu: 0.5 x (1 + erf(x / sqrt 2))
    o = x[1]
    e = self.node("Erf", [self.node("Mul", [o, self._scalar(1 / math.sqrt(2))])])
    o = self.node("Mul", [self.node("Mul", [o, self._scalar(0.5)]),
                          self.node("Add", [e, self._scalar(1.0)])])
    return nn.gelu(x[0]), o


Net._const_shape, Net.layer_norm, Net.gelu = _const_shape, _layer_norm, _gelu

NETWORKS = {"resnet18": resnet18, "mobilenetv2": mobilenetv2, "mlp1": lambda: mlp(1),
            "mlp64": lambda: mlp(64), "transformer": transformer}


def profile(which: str, rounds=5, reps=4, kernels=False, ort=True, threads=2):
    net_b, x, y, in_shape = NETWORKS[which]()
    t0 = time.perf_counter()
    net = td.compile([y[0]], inputs=[x[0]], params=net_b.params, name=which)
    compile_s = time.perf_counter() - t0
    xa = np.random.default_rng(7).standard_normal(in_shape).astype("float32")
    got = net(xa)
    sess = None
    if ort:
        import onnxruntime as rt
        opts = rt.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        sess = rt.InferenceSession(net_b.onnx_model(x, y, in_shape).SerializeToString(),
                                   opts, providers=["CPUExecutionProvider"])
        want = sess.run(None, {"x": xa})[0]
        err = np.abs(got - want).max() / (np.abs(want).max() + 1e-30)
        if err > 1e-3:
            print(f"{which}: tdsl and ONNX Runtime differ (max rel err {err:.2e})")
    tds, orts, per_call = [], [], []
    for _ in range(rounds):                          # interleaved A/B
        for _ in range(reps):
            before = net.kernel_seconds()
            t0 = time.perf_counter()
            net(xa, num_threads=threads)
            tds.append(1e3 * (time.perf_counter() - t0))
            per_call.append([a - b for a, b in zip(net.kernel_seconds(), before)])
        if sess is not None:
            for _ in range(reps):
                t0 = time.perf_counter()
                sess.run(None, {"x": xa})
                orts.append(1e3 * (time.perf_counter() - t0))
    gf = net_b.flops / 1e6

    def stats(ts):
        return (statistics.median(ts), min(ts)) if ts else (float("nan"),) * 2
    (tdm, tdb), (ortm, ortb) = stats(tds), stats(orts)
    print(f"{which:12s} tdsl {tdm:8.2f} ms (min {tdb:7.2f}, {gf / tdb:6.1f} GFLOP/s) | "
          f"onnxruntime {ortm:8.2f} ms (min {ortb:7.2f}, {gf / ortb:6.1f} GFLOP/s) | "
          f"{net_b.flops / 1e9:.3f} GFLOP, {len(net.kernels)} kernels, compile "
          f"{compile_s:.1f} s", flush=True)
    if kernels:
        best = [1e3 * min(c[k] for c in per_call) for k in range(len(net.kernels))]
        med = [1e3 * statistics.median(c[k] for c in per_call) for k in range(len(net.kernels))]
        total = sum(best)
        rows = sorted(zip(best, med, net.kernels), key=lambda r: -r[0])
        print("  share(min)  min ms  median ms  G(2*points)/s at min  kernel: stages")
        for b, m, info in rows:
            print(f"  {100 * b / total:5.1f}%  {b:8.3f}  {m:8.3f}  {2 * info.work / b / 1e6:6.1f}"
                  f"  {info.name}: {', '.join(info.stages)}")
    return net


def export(which: str, directory: str) -> None:
    """Compile `which` with the tdsl this process imports; write its library to
    `directory/<which>.so` (to time libraries of two versions of tdsl in one process)."""
    net_b, x, y, _ = NETWORKS[which]()
    net = td.compile([y[0]], inputs=[x[0]], params=net_b.params, name=which)
    os.makedirs(directory, exist_ok=True)
    net.export(os.path.join(directory, f"{which}.so"))


def compare(which: str, directories: list[str], rounds=10, reps=3, threads=2) -> None:
    """Time the libraries of `which` exported to `directories` and ONNX Runtime (`threads`
    threads each), interleaved in this process: min and median ms per inference."""
    import onnxruntime as rt
    net_b, x, y, in_shape = NETWORKS[which]()
    xa = np.random.default_rng(7).standard_normal(in_shape).astype("float32")
    libs = [td.load(os.path.join(d, f"{which}.so")) for d in directories]
    opts = rt.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    sess = rt.InferenceSession(net_b.onnx_model(x, y, in_shape).SerializeToString(), opts,
                               providers=["CPUExecutionProvider"])
    want = sess.run(None, {"x": xa})[0]
    runs = [lambda m=m: m(xa, num_threads=threads) for m in libs] + \
        [lambda: sess.run(None, {"x": xa})]
    for k, m in enumerate(libs):
        err = np.abs(m(xa) - want).max() / (np.abs(want).max() + 1e-30)
        assert err < 1e-3, f"{directories[k]}: {which} differs from ONNX Runtime ({err:.1e})"
    times = [[] for _ in runs]
    for _ in range(rounds):
        for k, run in enumerate(runs):
            for _ in range(reps):
                t0 = time.perf_counter()
                run()
                times[k].append(1e3 * (time.perf_counter() - t0))
    gf = net_b.flops / 1e6
    cells = []
    for name, ts in zip([*directories, "onnxruntime"], times):
        best, med = min(ts), statistics.median(ts)
        cells.append(f"{name}: min {best:8.2f} ms ({gf / best:6.1f} GFLOP/s) median {med:8.2f}")
    print(f"{which:12s} {net_b.flops / 1e9:.3f} GFLOP, {threads} threads | " + " | ".join(cells),
          flush=True)


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("networks", nargs="*", default=list(NETWORKS))
    p.add_argument("--kernels", action="store_true")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--no-ort", action="store_true")
    p.add_argument("--export", metavar="DIR", help="compile and write the libraries to DIR")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--compare", metavar="DIR", nargs="+",
                   help="time the libraries exported to each DIR and ONNX Runtime, interleaved")
    a = p.parse_args(argv)
    print(f"load average {os.getloadavg()}", flush=True)
    for which in a.networks:
        if a.export:
            export(which, a.export)
        elif a.compare:
            compare(which, a.compare, rounds=a.rounds, threads=a.threads)
        else:
            profile(which, rounds=a.rounds, kernels=a.kernels, ort=not a.no_ort,
                    threads=a.threads)


if __name__ == "__main__":
    sys.exit(main())
