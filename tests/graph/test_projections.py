"""Projections as transformers write them: a matrix product's constant right operand packed
in register-tile panels once, at compile time (graph/panels.py); its epilogue computed in
its register tile through the reshapes of ONNX's 3-D MatMul (tiles._epilogue_host over
unit axes), gelu's diamond included (fuse._epilogue). Outputs equal to NumPy's at widths
the panel divides and does not, for both vector widths."""

from __future__ import annotations

import numpy as np
import pytest

import tdsl as td
from tdsl import nn
from tdsl.examples import register_tile_shape
from tdsl.testing import onnx_models

from .common import rand

TARGETS = ["c -mcpu=x86-64-v3", "c -mcpu=x86-64-v4"]


def _projection(rows: int, k: int, n: int):
    """relu(x w + b) of x (1, rows, k) through a 2-D product, as the ONNX importer writes
    a 3-D MatMul."""
    x = td.placeholder((1, rows, k), name="x")
    w, b = td.placeholder((k, n), name="w"), td.placeholder((n,), name="b")
    p = nn.matmul(nn.reshape(x, (rows, k), name="rows"), w, name="p2d")
    y = nn.relu(nn.add(nn.reshape(p, (1, rows, n), name="p"), b, name="y"))
    return x, w, b, y


@pytest.mark.parametrize("rows, k, n", [(128, 64, 96), (13, 40, 100), (7, 33, 16)],
                         ids=["dividing", "ragged", "one-panel"])
@pytest.mark.parametrize("target", TARGETS, ids=["avx2", "avx512"])
def test_packed_projection_equals_numpy(rows, k, n, target):
    rng = np.random.default_rng(0)
    x, w, b, y = _projection(rows, k, n)
    params = {w: rand(rng, k, n), b: rand(rng, n)}
    net = td.compile([y], inputs=[x], params=params, target=target)
    columns = register_tile_shape(target)[1]
    packed = [fo.into for fo in net.folded if fo.what == "layout"]
    if n >= columns:
        assert packed == [f"w packed in panels of {columns} columns"]
        (kernel,) = net.kernels
        text = str(kernel.schedule)
        assert "cache_read" not in text       # the panel is read in place, not copied
        assert "compute_at(s[relu]" in text   # the product is computed per tile of relu
        # column tiles outside row tiles: a panel is read by every row tile in turn
        assert "reorder(i0, i2_outer, i1_outer, i1_inner, i2_inner)" in text
    else:                                     # narrower than a panel: left as it is
        assert packed == []
    if not td.target(target).runs_here():
        pytest.skip(f"compiled only: this CPU cannot run {target}")
    for seed in (1, 2):
        xa = rand(np.random.default_rng(seed), 1, rows, k)
        want = np.maximum(xa @ params[w] + params[b], 0)
        np.testing.assert_allclose(net(xa), want, rtol=2e-4, atol=2e-4)


def test_a_weight_read_twice_is_packed_once_and_a_variable_operand_not_at_all():
    """Two products of one weight share its panels; a product of two inputs packs
    nothing (its operand changes at every call)."""
    rng = np.random.default_rng(3)
    x, u = td.placeholder((20, 32), name="x"), td.placeholder((32, 48), name="u")
    w = td.placeholder((32, 48), name="w")
    y = nn.add(nn.matmul(x, w, name="a"), nn.matmul(nn.relu(x), w, name="c"))
    z = nn.matmul(x, u, name="d")
    wa = rand(rng, 32, 48)
    net = td.compile([y, z], inputs=[x, u], params={w: wa}, target="c -mcpu=x86-64-v3")
    assert sorted(fo.stages[0] for fo in net.folded if fo.what == "layout") == ["a", "c"]
    assert net.constants == ("w_p16",)
    xa, ua = rand(rng, 20, 32), rand(rng, 32, 48)
    got_y, got_z = net(xa, ua)
    np.testing.assert_allclose(got_y, xa @ wa + np.maximum(xa, 0) @ wa, rtol=2e-4,
                               atol=2e-4)
    np.testing.assert_allclose(got_z, xa @ ua, rtol=2e-4, atol=2e-4)


def _np_gelu(v):
    from math import erf
    return 0.5 * v * (1 + np.vectorize(erf)(v / np.sqrt(2)))


@pytest.mark.parametrize("rows", [128, 11])
def test_gelu_of_a_projection_is_its_epilogue(rows):
    """gelu written as ONNX writes it (x * (1 + erf(x / sqrt 2)) * 0.5: x read twice) after
    a (1, S, D) x (D, F) projection and its bias: one kernel, the product computed in the
    register tile of the stage that writes gelu's output."""
    x = td.placeholder((1, rows, 32), name="x")
    w, b = td.placeholder((32, 48), name="w"), td.placeholder((48,), name="b")
    h = nn.add(nn.reshape(nn.matmul(nn.reshape(x, (rows, 32)), w, name="p2d"),
                          (1, rows, 48)), b, name="h")
    e = nn.erf(nn.div(h, float(np.sqrt(2.0))), name="e")
    y = nn.mul(nn.mul(h, nn.add(e, 1.0)), 0.5, name="gelu")
    rng = np.random.default_rng(4)
    params = {w: rand(rng, 32, 48) / 4, b: rand(rng, 48)}
    net = td.compile([y], inputs=[x], params=params, target="c -mcpu=x86-64-v3")
    (kernel,) = net.kernels
    assert "s[p2d].compute_at(s[gelu]" in kernel.schedule
    xa = rand(rng, 1, rows, 32)
    want = _np_gelu((xa @ params[w] + params[b]).astype(np.float64))
    np.testing.assert_allclose(net(xa), want, rtol=2e-4, atol=2e-4)


def test_encoder_block_matches_onnxruntime():
    """The transformer encoder block of the networks benchmark, small: its six projections
    read packed panels, the first feed-forward layer's gelu is in its kernel."""
    ort = pytest.importorskip("onnxruntime")
    model = onnx_models.transformer_block(seq=20, width=32, heads=2)
    net = td.compile(model)
    assert sum("packed in panels" in fo.into for fo in net.folded) == 6
    assert any({"Erf_1", "Mul_2"} <= set(k.stages) for k in net.kernels)
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    for seed in (0, 1):
        xa = rand(np.random.default_rng(seed), 1, 20, 32)
        want = session.run(None, {"x": xa})[0]
        np.testing.assert_allclose(net(xa), want, rtol=1e-4, atol=1e-4)
