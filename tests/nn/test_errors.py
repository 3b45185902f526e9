"""Every argument error of tdsl.nn, raised at the call with a NumPy-style message that
names what was expected and what came. Nothing here builds a kernel."""

from __future__ import annotations

import numpy as np
import pytest

import tdsl as td
from tdsl import nn

N = td.var("n")
X2 = td.placeholder((5, 8), name="x2")
W2 = td.placeholder((3, 7), name="w2")
X4 = td.placeholder((2, 4, 9, 9), name="x4")


def P(*shape, name="p"):
    return td.placeholder(shape, name=name)


V = td.TdslValueError
T = td.TdslTypeError

# id, call, error class, regex the message must match
CASES = [
    # linear
    ("dense_not_tensor", lambda: nn.dense(np.zeros((5, 8)), W2), T,
     r"nn\.dense: x must be a tdsl tensor .*got ndarray \(wrap NumPy data"),
    ("dense_features", lambda: nn.dense(X2, W2), V,
     r"nn\.dense: x has 8 input features \(shape \(5, 8\)\) but w expects 7 \(shape \(3, 7\)\)"),
    ("dense_rank", lambda: nn.dense(X4, W2), V,
     r"nn\.dense: x must have 2 dimensions \(batch, in_features\); got 4 \(shape \(2, 4, 9, 9\)\)"),
    ("dense_bias", lambda: nn.dense(X2, P(3, 8), P(4)), V,
     r"nn\.dense: bias must have shape \(3,\) \(out_features of w\); got \(4,\)"),
    ("dense_symbolic_features", lambda: nn.dense(P(N, 8), P(3, td.var("k"))), V,
     r"x has 8 input features \(shape \(n, 8\)\) but w expects k \(shape \(3, k\)\)"),
    ("matmul_inner", lambda: nn.matmul(X2, W2), V,
     r"nn\.matmul: the contracted dimensions differ: a has 8 columns \(shape \(5, 8\)\), "
     r"b has 3 rows \(shape \(3, 7\)\)"),
    ("matmul_rank", lambda: nn.matmul(P(5), W2), V,
     r"nn\.matmul: a must have 2 dimensions \(n, k\); got 1"),
    ("batch_matmul_batch", lambda: nn.batch_matmul(P(2, 3, 4), P(3, 4, 5)), V,
     r"nn\.batch_matmul: the batch sizes differ: a has 2 \(shape \(2, 3, 4\)\), b has 3"),
    ("batch_matmul_inner", lambda: nn.batch_matmul(P(2, 3, 4), P(2, 5, 5)), V,
     r"nn\.batch_matmul: the contracted dimensions differ: a has 4 columns .* b has 5 rows"),
    # conv
    ("conv_channels", lambda: nn.conv2d(X4, P(6, 3, 3, 3)), V,
     r"nn\.conv2d: x has 4 input channels \(shape \(2, 4, 9, 9\)\) but w expects 3 "
     r"\(shape \(6, 3, 3, 3\)\)"),
    ("conv_group_channels", lambda: nn.conv2d(X4, P(6, 3, 3, 3), groups=2), V,
     r"with groups=2, w must have in_channels / groups = 2 channels \(w\.shape\[1\]\); got 3"),
    ("conv_groups_in", lambda: nn.conv2d(X4, P(6, 2, 3, 3), groups=3), V,
     r"nn\.conv2d: in_channels 4 is not divisible by groups=3"),
    ("conv_groups_out", lambda: nn.conv2d(X4, P(5, 2, 3, 3), groups=2), V,
     r"nn\.conv2d: out_channels 5 \(w\.shape\[0\]\) is not divisible by groups=2"),
    ("conv_groups_symbolic", lambda: nn.conv2d(P(2, N, 9, 9), P(6, 2, 3, 3), groups=2), V,
     r"groups=2 needs constant channel counts; got x \(2, n, 9, 9\)"),
    ("conv_window", lambda: nn.conv2d(X4, P(6, 4, 11, 3)), V,
     r"nn\.conv2d: the input height 9 is smaller than the window \(11\)"),
    ("conv_window_padded", lambda: nn.conv2d(X4, P(6, 4, 3, 13), padding=1), V,
     r"nn\.conv2d: the input width 9 padded to 11 is smaller than the window \(13\)"),
    ("conv_dilation", lambda: nn.conv2d(X4, P(6, 4, 3, 3), dilation=5), V,
     r"the input height 9 is smaller than the window \(11 with dilation 5\)"),
    ("conv_stride_zero", lambda: nn.conv2d(X4, P(6, 4, 3, 3), stride=0), V,
     r"nn\.conv2d: stride must be at least 1; got 0"),
    ("conv_padding_negative", lambda: nn.conv2d(X4, P(6, 4, 3, 3), padding=-1), V,
     r"nn\.conv2d: padding must be at least 0; got -1"),
    ("conv_stride_triple", lambda: nn.conv2d(X4, P(6, 4, 3, 3), stride=(1, 2, 3)), V,
     r"stride must be an int or a pair \(height, width\); got \(1, 2, 3\)"),
    ("conv_stride_float", lambda: nn.conv2d(X4, P(6, 4, 3, 3), stride=1.5), T,
     r"nn\.conv2d: stride must be an integer; got 1\.5"),
    ("conv_bias", lambda: nn.conv2d(X4, P(6, 4, 3, 3), P(4)), V,
     r"nn\.conv2d: bias must have shape \(6,\) \(out_channels of w\); got \(4,\)"),
    ("conv_rank", lambda: nn.conv2d(X2, P(6, 4, 3, 3)), V,
     r"nn\.conv2d: x must have 4 dimensions \(N, C, H, W\); got 2 \(shape \(5, 8\)\)"),
    ("conv_weight_rank", lambda: nn.conv2d(X4, P(6, 4, 3)), V,
     r"nn\.conv2d: w must have 4 dimensions \(out_channels, in_channels / groups, KH, KW\)"),
    # pools
    ("max_pool_padding", lambda: nn.max_pool2d(X4, 3, padding=2), V,
     r"nn\.max_pool2d: padding should be at most half of the kernel size \(3\); got padding=2"),
    ("max_pool_window", lambda: nn.max_pool2d(X4, 10), V,
     r"nn\.max_pool2d: the input height 9 is smaller than the window \(10\)"),
    ("avg_pool_rank", lambda: nn.avg_pool2d(X2, 2), V,
     r"nn\.avg_pool2d: x must have 4 dimensions \(N, C, H, W\); got 2"),
    ("avg_pool_kernel", lambda: nn.avg_pool2d(X4, 0), V,
     r"nn\.avg_pool2d: kernel must be at least 1; got 0"),
    ("global_pool_rank", lambda: nn.global_avg_pool2d(X2), V,
     r"nn\.global_avg_pool2d: x must have 4 dimensions"),
    # normalizations and activations
    ("softmax_axis", lambda: nn.softmax(X2, axis=2), V,
     r"nn\.softmax: axis 2 is out of bounds for a tensor of 2 dimension\(s\) \(valid: -2 to 1\)"),
    ("log_softmax_axis", lambda: nn.log_softmax(X2, axis=-3), V,
     r"nn\.log_softmax: axis -3 is out of bounds"),
    ("softmax_axis_float", lambda: nn.softmax(X2, axis=1.0), T,
     r"nn\.softmax: axis must be an integer; got 1\.0"),
    ("layer_norm_gamma", lambda: nn.layer_norm(X2, P(7), None), V,
     r"nn\.layer_norm: gamma must have the shape of the normalized axes \(8,\) "
     r"\(x \(5, 8\), axis=-1\); got \(7,\)"),
    ("layer_norm_beta", lambda: nn.layer_norm(X2, None, P(5, 8)), V,
     r"nn\.layer_norm: beta must have the shape of the normalized axes \(8,\)"),
    ("layer_norm_eps", lambda: nn.layer_norm(X2, None, None, eps=-1), V,
     r"nn\.layer_norm: eps must be a non-negative number; got -1"),
    ("batch_norm_param", lambda: nn.batch_norm(X4, P(4), P(4), P(4), P(3)), V,
     r"nn\.batch_norm: var must have shape \(4,\) \(the channels of x \(2, 4, 9, 9\), "
     r"axis 1\); got \(3,\)"),
    ("batch_norm_rank", lambda: nn.batch_norm(P(4), P(4), P(4), P(4), P(4)), V,
     r"nn\.batch_norm: x must have at least 2 dimensions \(N, C, \.\.\.\); got 1"),
    ("gelu_approximate", lambda: nn.gelu(X2, approximate="erf"), V,
     r"nn\.gelu: approximate must be 'none' or 'tanh'; got 'erf'"),
    ("relu_not_tensor", lambda: nn.relu(3.0), T, r"nn\.relu: x must be a tdsl tensor"),
    # elementwise
    ("broadcast", lambda: nn.add(X2, W2), V,
     r"nn\.add: operands could not be broadcast together with shapes \(5, 8\) \(3, 7\): "
     r"dimension 0 \(from the right: 2\) is 5 in one and 3 in another"),
    ("broadcast_symbolic", lambda: nn.sub(P(N, 3), P(4, 3)), V,
     r"nn\.sub: operands could not be broadcast together with shapes \(n, 3\) \(4, 3\).*"
     r"a symbolic size matches only itself"),
    ("broadcast_numbers_only", lambda: nn.mul(1, 2.0), T,
     r"nn\.mul: at least one operand must be a tdsl tensor; got only numbers \(1, 2\.0\)"),
    ("broadcast_string", lambda: nn.div(X2, "a"), T,
     r"nn\.div: operand 1 must be a tdsl tensor or a Python number; got str"),
    # shape
    ("reshape_count", lambda: nn.reshape(X2, (3, 13)), V,
     r"nn\.reshape: cannot reshape x of shape \(5, 8\) \(40 elements\) into shape \(3, 13\) "
     r"\(39 elements\)"),
    ("reshape_two_inferred", lambda: nn.reshape(X2, (-1, -1)), V,
     r"nn\.reshape: only one dimension can be -1 \(inferred\); got shape \(-1, -1\)"),
    ("reshape_not_multiple", lambda: nn.reshape(X2, (3, -1)), V,
     r"into shape \(3, -1\): 40 is not a multiple of 3"),
    ("reshape_zero", lambda: nn.reshape(X2, (0, 40)), V,
     r"nn\.reshape: shape\[0\] must be at least 1 or -1 \(inferred\); got 0"),
    ("reshape_symbolic", lambda: nn.reshape(P(N, 4), (td.var("m"), 4)), V,
     r"cannot reshape x of shape \(n, 4\) \(n \* 4 elements\) into shape \(m, 4\): the size m "
     r"is not a size of x"),
    ("reshape_symbolic_product", lambda: nn.reshape(P(N, 3, 4), (N * 4, 4)), V,
     r"cannot reshape x of shape \(n, 3, 4\) \(n \* 12 elements\) into shape \(n \* 4, 4\) "
     r"\(n \* 16 elements\)"),
    ("reshape_float", lambda: nn.reshape(X2, (2.0, 20)), T,
     r"nn\.reshape: shape\[0\] must be an int or a size expression; got 2\.0"),
    ("flatten_order", lambda: nn.flatten(X4, 3, 1), V,
     r"nn\.flatten: start_dim 3 comes after end_dim 1"),
    ("flatten_axis", lambda: nn.flatten(X4, 4), V, r"nn\.flatten: start_dim 4 is out of bounds"),
    ("transpose_repeat", lambda: nn.transpose(X4, (0, 1, 1, 2)), V,
     r"nn\.transpose: axes \(0, 1, 1, 2\) is not a permutation of the 4 axes of x"),
    ("transpose_short", lambda: nn.transpose(X4, (0, 1, 2)), V,
     r"nn\.transpose: axes \(0, 1, 2\) is not a permutation"),
    ("concat_empty", lambda: nn.concat([], 0), V, r"nn\.concat: needs a non-empty list"),
    ("concat_rank", lambda: nn.concat([X2, X4], 0), V,
     r"nn\.concat: all tensors must have the same number of dimensions; tensors\[0\] has 2 "
     r"\(5, 8\), tensors\[1\] has 4"),
    ("concat_sizes", lambda: nn.concat([X2, W2], 0), V,
     r"nn\.concat: sizes must match except along axis 0: tensors\[0\] \(5, 8\) and "
     r"tensors\[1\] \(3, 7\) differ in dimension 1"),
    ("concat_axis", lambda: nn.concat([X2, X2], 2), V, r"nn\.concat: axis 2 is out of bounds"),
    ("pad_count", lambda: nn.pad(X2, [(1, 1)]), V,
     r"nn\.pad: pads needs one \(before, after\) pair per axis of x \(5, 8\), 2 in all; got 1"),
    ("pad_negative", lambda: nn.pad(X2, [(1, 1), (0, -1)]), V,
     r"nn\.pad: pads\[1\] must be at least 0; got -1"),
    ("pad_pair", lambda: nn.pad(X2, [(1, 1), 2]), V,
     r"nn\.pad: pads\[1\] must be a pair \(before, after\); got 2"),
    ("slice_empty", lambda: nn.slice(X2, [3], [2]), V,
     r"nn\.slice: the slice 3:2:1 of axis 0 \(size 5\) is empty"),
    ("slice_step", lambda: nn.slice(X2, [0], [2], steps=[-1]), V,
     r"nn\.slice: steps must be positive \(got -1 for axis 0\)"),
    ("slice_lengths", lambda: nn.slice(X2, [0, 0], [2]), V,
     r"nn\.slice: starts, ends, axes and steps must have the same length; got 2, 1, 2, 2"),
    ("slice_repeat", lambda: nn.slice(X2, [0, 0], [2, 2], axes=[1, -1]), V,
     r"nn\.slice: an axis is repeated in axes=\(1, 1\)"),
    ("slice_axis", lambda: nn.slice(X2, [0], [2], axes=[2]), V,
     r"nn\.slice: axis 2 is out of bounds"),
    ("slice_float", lambda: nn.slice(X2, [0.5], [2]), T,
     r"nn\.slice: starts must be a list of ints; got \[0\.5\]"),
    # reductions
    ("sum_axis", lambda: nn.sum(X2, axis=2), V, r"nn\.sum: axis 2 is out of bounds"),
    ("mean_repeat", lambda: nn.mean(X2, axis=(0, -2)), V,
     r"nn\.mean: an axis is repeated in axis=\(0, -2\)"),
    ("max_axis_type", lambda: nn.max(X2, axis="a"), T, r"nn\.max: axis must be an integer"),
    ("min_axis", lambda: nn.min(X2, axis=-3), V, r"nn\.min: axis -3 is out of bounds"),
]


@pytest.mark.parametrize("call, error, message", [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_errors_are_builtin_errors_too():
    """NumPy habits catch them: TdslValueError is a ValueError, TdslTypeError a TypeError."""
    with pytest.raises(ValueError):
        nn.add(X2, W2)
    with pytest.raises(TypeError):
        nn.relu([1.0])
