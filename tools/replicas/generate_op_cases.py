#!/usr/bin/python3
"""Write tiny single-op ONNX graphs covering every op in src/backends/op.h (FSWAP_OP_LIST), one file per
case named <Op>__<case>.onnx, plus cases.json describing each case for the op harness.

  /usr/bin/python3 tools/replicas/generate_op_cases.py --out /tmp/opcases [--no-check]

Constant operands (shapes, axes, pads, scales, sizes, K, indices, weights) are initializers, so a case
runs with its data inputs only. Each data input has a [low, high] range for the harness's random
generator (uniform for floats, integers in [low, high] for ints, 0/1 for bool).
Cases whose opset is newer than onnx 1.12 knows (18+: Reduce* axes as input, Pad axes, Mish;
20: Gelu) are written with the helper but not passed through onnx.checker ("checker": false).
"""
import argparse
import json
import os
import re

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SEED = 1234
DT = {"float32": TensorProto.FLOAT, "float16": TensorProto.FLOAT16, "float64": TensorProto.DOUBLE,
      "int64": TensorProto.INT64, "int32": TensorProto.INT32, "int8": TensorProto.INT8,
      "uint8": TensorProto.UINT8, "bool": TensorProto.BOOL}
TRANSCENDENTAL = {"Exp", "Log", "Sin", "Cos", "Erf", "Tanh", "Sigmoid", "Softplus", "Gelu", "Mish", "Elu",
                  "Selu", "Softmax", "LogSoftmax", "Pow", "HardSwish", "LpNormalization", "ReduceL2",
                  "LayerNormalization", "InstanceNormalization", "Resize", "Upsample", "ReduceProd"}
ACCUM = {"Conv", "ConvTranspose", "MatMul", "Gemm", "ReduceSum", "ReduceMean", "ReduceSumSquare",
         "AveragePool", "GlobalAveragePool", "BatchNormalization", "Mean", "Sum"}

CASES = []


def case(op, name, nodes, inputs, outputs, inits=None, opset=17, rtol=None, atol=None, checker=None, note=None):
    """inputs: [(name, dtype, shape, low, high)]; outputs: [(name, dtype)]; inits: {name: ndarray}."""
    CASES.append(dict(op=op, name=name, nodes=nodes, inputs=inputs, outputs=outputs, inits=inits or {},
                      opset=opset, rtol=rtol, atol=atol, checker=checker, note=note))


def one(op, name, ins, attrs=None, outs=1, inits=None, out_dtype=None, node_inputs=None, **kw):
    """Single-node case. ins: data inputs [(name, dtype, shape, low, high)]; node_inputs default: data
    inputs then initializers in dict order; '' entries allowed."""
    inits = inits or {}
    names = node_inputs if node_inputs is not None else [i[0] for i in ins] + list(inits)
    od = out_dtype or (ins[0][1] if ins else "float32")
    if isinstance(outs, int):
        outs = [(f"Y{k}" if outs > 1 else "Y", od) for k in range(outs)]
    nd = helper.make_node(op, names, [o[0] for o in outs], **(attrs or {}))
    case(op, name, [nd], ins, outs, inits, **kw)


def f(shape, lo=-1.0, hi=1.0, name="X", dt="float32"):
    return (name, dt, list(shape), lo, hi)


def arr(v, dt=np.float32):
    return np.array(v, dtype=dt)


def I(v):
    return np.array(v, dtype=np.int64)


def rnd(shape, seed=0, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


S4 = [2, 3, 4, 5]

# ---------------------------------------------------------------- element-wise unary
for op, lo, hi in (("Abs", -2, 2), ("Neg", -2, 2), ("Reciprocal", 0.5, 2), ("Sqrt", 0.01, 4), ("Exp", -3, 3),
                   ("Log", 0.01, 4), ("Floor", -5, 5), ("Ceil", -5, 5), ("Round", -5, 5), ("Sin", -4, 4),
                   ("Cos", -4, 4), ("Erf", -3, 3)):
    one(op, "4d", [f(S4, lo, hi)])
    one(op, "1d", [f([7], lo, hi)])
one("Abs", "int64", [f([3, 4], -9, 9, dt="int64")])
one("Neg", "int64", [f([3, 4], -9, 9, dt="int64")])
one("Not", "bool", [f([3, 4], 0, 1, dt="bool")])
one("Identity", "float", [f(S4)])
one("Identity", "int64", [f([5], -9, 9, dt="int64")])
one("Dropout", "inference", [f(S4)])
one("Dropout", "ratio_mask", [f(S4)], inits={"ratio": arr(0.3)}, outs=[("Y", "float32"), ("mask", "bool")],
    note="inference mode: output == input, mask all true")
CAST = [("float32", "int64", -100, 100), ("float32", "int32", -100, 100), ("float32", "float16", -100, 100),
        ("float16", "float32", -100, 100), ("float32", "float64", -100, 100), ("float64", "float32", -100, 100),
        ("int64", "float32", -1000, 1000), ("int32", "float32", -1000, 1000), ("float32", "uint8", 0, 255),
        ("uint8", "float32", 0, 255), ("int8", "float32", -128, 127), ("float32", "bool", -1, 1),
        ("bool", "float32", 0, 1), ("int64", "int32", -1000, 1000), ("int32", "int64", -1000, 1000),
        ("bool", "int64", 0, 1)]
for a, b, lo, hi in CAST:
    one("Cast", f"{a}_to_{b}", [f([3, 4, 5], lo, hi, dt=a)], {"to": DT[b]}, out_dtype=b)

# ---------------------------------------------------------------- activations
one("Relu", "4d", [f(S4)])
one("LeakyRelu", "default", [f(S4)])
one("LeakyRelu", "alpha0.2", [f(S4)], {"alpha": 0.2})
one("PRelu", "per_channel", [f(S4)], inits={"slope": rnd([3, 1, 1], 1, 0.3)})
one("PRelu", "scalar", [f(S4)], inits={"slope": arr([0.25])})
one("PRelu", "2d_per_feature", [f([4, 6])], inits={"slope": rnd([6], 2, 0.3)})
one("Elu", "alpha1", [f(S4, -3, 3)])
one("Elu", "alpha0.5", [f(S4, -3, 3)], {"alpha": 0.5})
one("Selu", "default", [f(S4, -3, 3)])
one("Sigmoid", "4d", [f(S4, -6, 6)])
one("HardSigmoid", "default", [f(S4, -6, 6)])
one("HardSigmoid", "a1_6_b0_5", [f(S4, -6, 6)], {"alpha": 1.0 / 6, "beta": 0.5})
one("HardSwish", "4d", [f(S4, -6, 6)])
one("Tanh", "4d", [f(S4, -3, 3)])
one("Softplus", "4d", [f(S4, -5, 5)])
one("Softsign", "4d", [f(S4, -5, 5)])
one("Gelu", "none", [f(S4, -3, 3)], opset=20, checker=False)
one("Gelu", "tanh", [f(S4, -3, 3)], {"approximate": "tanh"}, opset=20, checker=False)
one("Mish", "4d", [f(S4, -5, 5)], opset=18, checker=False)
one("Clip", "min_max", [f(S4, -2, 2)], inits={"lo": arr(-0.5), "hi": arr(0.5)})
one("Clip", "min_only", [f(S4, -2, 2)], inits={"lo": arr(0.0)})
one("Clip", "max_only", [f(S4, -2, 2)], node_inputs=["X", "", "hi"], inits={"hi": arr(6.0)})
one("Clip", "none", [f(S4, -2, 2)])
one("Clip", "int64", [f([3, 4], -9, 9, dt="int64")], inits={"lo": I(-2), "hi": I(3)})
for ax in (-1, 1, 0):
    one("Softmax", f"axis{ax}", [f(S4, -4, 4)], {"axis": ax})
    one("LogSoftmax", f"axis{ax}", [f(S4, -4, 4)], {"axis": ax})
one("Softmax", "opset11_axis1_flatten", [f(S4, -4, 4)], {"axis": 1}, opset=11,
    note="opset<13 Softmax coerces to 2-D at axis")

# ---------------------------------------------------------------- binary / variadic
BC = [("same", S4, S4), ("bcast_last", S4, [5]), ("bcast_chan", S4, [3, 1, 1]), ("scalar", S4, []),
      ("both", [2, 1, 4, 1], [1, 3, 1, 5]), ("lhs_small", [4, 1], [2, 3, 4, 5]),
      # rows of whole 16-byte packs (the CUDA rows kernel): a bias along the last dim, one value a row
      ("bcast_last16", [2, 3, 4, 16], [16]), ("rows16", [6, 16], [6, 1])]
for op in ("Add", "Sub", "Mul", "Div"):
    for nm, a, b in BC:
        lo = 0.5 if op == "Div" else -1
        one(op, nm, [f(a), f(b, lo, 2, name="B")])
    one(op, "const_rhs", [f(S4)], inits={"B": rnd([4, 5], 3) + (3 if op == "Div" else 0)})
    one(op, "int64", [f([3, 4], -9, 9, dt="int64"), f([4], 1, 9, name="B", dt="int64")])
one("Div", "int64_neg_trunc", [f([3, 4], -20, 20, dt="int64"), f([4], 1, 7, name="B", dt="int64")],
    note="integer division truncates toward zero")
one("Pow", "scalar_exp2", [f(S4, -2, 2)], inits={"E": arr(2.0)})
one("Pow", "scalar_exp0.5", [f(S4, 0.01, 4)], inits={"E": arr(0.5)})
one("Pow", "bcast", [f(S4, 0.1, 2), f([5], -2, 2, name="E")])
one("Pow", "int_exponent", [f(S4, -2, 2)], inits={"E": I(3)})
one("Mod", "fmod_float", [f(S4, -10, 10), f([5], 1, 3, name="B")], {"fmod": 1})
one("Mod", "int64_sign_of_divisor", [f([3, 4], -20, 20, dt="int64"), f([4], 1, 7, name="B", dt="int64")])
one("Mod", "int64_neg_divisor", [f([3, 4], -20, 20, dt="int64")], inits={"B": I([-3])})
for op in ("Min", "Max", "Sum", "Mean"):
    one(op, "one_input", [f(S4)])
    one(op, "two_same", [f(S4), f(S4, name="B")])
    one(op, "three_bcast", [f(S4), f([5], name="B"), f([3, 1, 1], name="C")])
one("Min", "int64", [f([3, 4], -9, 9, dt="int64"), f([4], -9, 9, name="B", dt="int64")])
one("Max", "int64", [f([3, 4], -9, 9, dt="int64"), f([4], -9, 9, name="B", dt="int64")])
for op in ("Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"):
    one(op, "float_bcast", [f(S4), f([5], name="B")], out_dtype="bool")
    one(op, "int64", [f([3, 4], -3, 3, dt="int64"), f([3, 1], -3, 3, name="B", dt="int64")], out_dtype="bool")
one("Equal", "bool", [f([3, 4], 0, 1, dt="bool"), f([4], 0, 1, name="B", dt="bool")], out_dtype="bool")
for op in ("And", "Or", "Xor"):
    one(op, "same", [f([3, 4], 0, 1, dt="bool"), f([3, 4], 0, 1, name="B", dt="bool")])
    one(op, "bcast", [f([2, 3, 4], 0, 1, dt="bool"), f([4], 0, 1, name="B", dt="bool")])
one("Where", "same", [f([3, 4], 0, 1, name="C", dt="bool"), f([3, 4]), f([3, 4], name="B")], out_dtype="float32")
one("Where", "bcast", [f([4], 0, 1, name="C", dt="bool"), f([2, 3, 4]), f([3, 1], name="B")], out_dtype="float32")
one("Where", "scalar_else", [f([3, 4], 0, 1, name="C", dt="bool"), f([3, 4])], inits={"B": arr(-1.0)},
    out_dtype="float32")
one("Where", "int64", [f([3, 4], 0, 1, name="C", dt="bool"), f([3, 4], -9, 9, dt="int64"),
                      f([4], -9, 9, name="B", dt="int64")], out_dtype="int64")

# ---------------------------------------------------------------- linear algebra, convolution
one("MatMul", "2d", [f([4, 6]), f([6, 5], name="B")], atol=1e-4)
one("MatMul", "3d_batched", [f([2, 4, 6]), f([2, 6, 5], name="B")], atol=1e-4)
one("MatMul", "4d_bcast_batch", [f([2, 1, 4, 6]), f([3, 6, 5], name="B")], atol=1e-4)
one("MatMul", "3d_x_2d_const", [f([2, 7, 16])], inits={"W": rnd([16, 9], 4)}, atol=1e-4)
one("MatMul", "vec_lhs", [f([6]), f([2, 6, 5], name="B")], atol=1e-4)
one("MatMul", "vec_rhs", [f([2, 4, 6]), f([6], name="B")], atol=1e-4)
one("MatMul", "large_k", [f([8, 300]), f([300, 17], name="B")], atol=1e-4)
one("Gemm", "transB_bias", [f([4, 6])], {"transB": 1}, inits={"W": rnd([5, 6], 5), "C": rnd([5], 6)}, atol=1e-4)
one("Gemm", "transA_alpha_beta", [f([6, 4])], {"transA": 1, "alpha": 0.5, "beta": 2.0},
    inits={"W": rnd([6, 5], 7), "C": rnd([4, 5], 8)}, atol=1e-4)
one("Gemm", "no_bias", [f([4, 6]), f([6, 5], name="B")], atol=1e-4)
one("Gemm", "scalar_bias", [f([4, 6])], inits={"W": rnd([6, 5], 9), "C": arr([0.5])}, atol=1e-4)
one("Gemm", "col_bias", [f([4, 6])], inits={"W": rnd([6, 5], 9), "C": rnd([4, 1], 10)}, atol=1e-4)
# One row against output-major weights (an MLP's Linear at batch 1): k a multiple of 8, odd k with
# alpha and beta on a C of Y's shape, and weights as a runtime input.
one("Gemm", "row_transB_bias", [f([1, 24])], {"transB": 1}, inits={"W": rnd([40, 24], 11), "C": rnd([40], 12)},
    atol=1e-4)
one("Gemm", "row_transB_alpha_beta_odd", [f([1, 13])], {"transB": 1, "alpha": 0.5, "beta": 2.0},
    inits={"W": rnd([7, 13], 13), "C": rnd([1, 7], 14)}, atol=1e-4)
one("Gemm", "row_transB_input", [f([1, 256]), f([70, 256], name="B")], {"transB": 1}, atol=1e-4)


def conv(name, x, cout, k, g=1, bias=True, op="Conv", **attrs):
    cin = x[1]
    ks = [k] * (len(x) - 2) if isinstance(k, int) else k
    if op == "Conv":
        w = rnd([cout, cin // g] + ks, 11, (1.0 / (cin // g * np.prod(ks))) ** 0.5)
    else:
        w = rnd([cin, cout // g] + ks, 11, (1.0 / (cin * np.prod(ks))) ** 0.5)
    inits = {"W": w}
    if bias:
        inits["B"] = rnd([cout], 12, 0.1)
    one(op, name, [f(x)], dict(attrs, group=g) if g != 1 else attrs, inits=inits, atol=1e-4)


conv("3x3_pad1", [1, 3, 8, 8], 4, 3, pads=[1, 1, 1, 1])
conv("3x3_nopad", [2, 3, 9, 7], 4, 3)
conv("3x3_stride2", [1, 4, 9, 9], 6, 3, strides=[2, 2], pads=[1, 1, 1, 1])
conv("asym_pads", [1, 3, 8, 8], 4, 3, pads=[0, 1, 2, 1])
conv("dilation2", [1, 3, 10, 10], 4, 3, dilations=[2, 2], pads=[2, 2, 2, 2])
conv("groups2", [1, 4, 8, 8], 6, 3, g=2, pads=[1, 1, 1, 1])
conv("depthwise", [1, 8, 8, 8], 8, 3, g=8, pads=[1, 1, 1, 1])
conv("depthwise_stride2", [1, 8, 9, 9], 8, 3, g=8, strides=[2, 2], pads=[1, 1, 1, 1])
conv("auto_pad_same_upper_s2", [1, 3, 9, 8], 4, 4, auto_pad="SAME_UPPER", strides=[2, 2])
conv("auto_pad_same_lower", [1, 3, 8, 8], 4, 4, auto_pad="SAME_LOWER")
conv("auto_pad_valid", [1, 3, 8, 8], 4, 3, auto_pad="VALID")
conv("1x1_nobias", [1, 16, 5, 5], 8, 1, bias=False)
conv("7x7_stride2_pad3", [1, 3, 32, 32], 8, 7, strides=[2, 2], pads=[3, 3, 3, 3])
conv("rect_kernel", [1, 3, 8, 8], 4, [1, 3], pads=[0, 1, 0, 1])
conv("conv1d", [1, 3, 16], 4, 3, pads=[1, 1])
conv("wide_channels", [1, 64, 6, 6], 32, 3, pads=[1, 1, 1, 1])
conv("stride2_k4_p1", [1, 4, 8, 8], 3, 4, op="ConvTranspose", strides=[2, 2], pads=[1, 1, 1, 1])
conv("stride2_k3_outpad1", [1, 4, 5, 5], 3, 3, op="ConvTranspose", strides=[2, 2], pads=[1, 1, 1, 1],
     output_padding=[1, 1])
conv("stride1_k3", [1, 4, 5, 5], 3, 3, op="ConvTranspose", pads=[1, 1, 1, 1])
conv("groups2", [1, 4, 5, 5], 6, 3, g=2, op="ConvTranspose", strides=[2, 2])
conv("dilation2", [1, 4, 5, 5], 3, 3, op="ConvTranspose", dilations=[2, 2])
conv("nobias_asym_pads", [1, 4, 5, 5], 3, 3, bias=False, op="ConvTranspose", strides=[2, 2], pads=[0, 1, 1, 0])
conv("output_shape", [1, 4, 5, 5], 3, 3, op="ConvTranspose", strides=[2, 2], output_shape=[10, 10])
conv("auto_pad_same_upper", [1, 4, 5, 5], 3, 3, op="ConvTranspose", strides=[2, 2], auto_pad="SAME_UPPER")
conv("1d", [1, 4, 7], 3, 4, op="ConvTranspose", strides=[2], pads=[1, 1])

# ---------------------------------------------------------------- normalisation
C3 = lambda s: rnd([3], s, 0.2)  # noqa: E731
one("BatchNormalization", "4d", [f(S4)], inits={"s": C3(1) + 1, "b": C3(2), "m": C3(3), "v": np.abs(C3(4)) + 0.5})
one("BatchNormalization", "2d_eps", [f([4, 3])], {"epsilon": 1e-3},
    inits={"s": C3(1) + 1, "b": C3(2), "m": C3(3), "v": np.abs(C3(4)) + 0.5})
one("BatchNormalization", "3d", [f([2, 3, 7])], inits={"s": C3(1) + 1, "b": C3(2), "m": C3(3), "v": np.abs(C3(4)) + 0.5})
one("InstanceNormalization", "4d", [f(S4)], inits={"s": C3(5) + 1, "b": C3(6)})
one("InstanceNormalization", "3d_eps", [f([2, 3, 40])], {"epsilon": 1e-3}, inits={"s": C3(5) + 1, "b": C3(6)})
one("LayerNormalization", "last_axis", [f(S4)], inits={"s": rnd([5], 7) + 1, "b": rnd([5], 8)})
one("LayerNormalization", "axis1_3d", [f([2, 6, 4])], {"axis": 1, "epsilon": 1e-6},
    inits={"s": rnd([6, 4], 7) + 1, "b": rnd([6, 4], 8)})
one("LayerNormalization", "no_bias_axis_neg2", [f([2, 6, 4])], {"axis": -2}, inits={"s": rnd([6, 4], 7) + 1})
one("LayerNormalization", "bcast_scale", [f([2, 6, 4])], {"axis": 1}, inits={"s": rnd([4], 7) + 1})
one("LpNormalization", "p2_axis1", [f(S4)], {"axis": 1, "p": 2})
one("LpNormalization", "p1_axis_last", [f([4, 6])], {"axis": -1, "p": 1})

# ---------------------------------------------------------------- pooling
X8 = [1, 3, 9, 9]
one("MaxPool", "k3s2p1", [f(X8)], {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]})
one("MaxPool", "k2s2", [f([1, 3, 8, 8])], {"kernel_shape": [2, 2], "strides": [2, 2]})
one("MaxPool", "ceil_mode", [f([1, 3, 8, 8])], {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1})
one("MaxPool", "k5s1p2", [f(X8)], {"kernel_shape": [5, 5], "pads": [2, 2, 2, 2]})
one("MaxPool", "dilation2", [f(X8)], {"kernel_shape": [2, 2], "dilations": [2, 2]})
one("MaxPool", "same_upper", [f(X8)], {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"})
one("MaxPool", "1d", [f([1, 3, 10])], {"kernel_shape": [3], "strides": [2]})
one("MaxPool", "with_indices", [f([1, 3, 8, 8])], {"kernel_shape": [2, 2], "strides": [2, 2]},
    outs=[("Y", "float32"), ("Idx", "int64")])
one("AveragePool", "k3s2p1_exclude_pad", [f(X8)], {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]})
one("AveragePool", "k3s2p1_include_pad", [f(X8)],
    {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "count_include_pad": 1})
one("AveragePool", "k2s2", [f([1, 3, 8, 8])], {"kernel_shape": [2, 2], "strides": [2, 2]})
one("AveragePool", "ceil_mode", [f([1, 3, 8, 8])], {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1})
one("AveragePool", "ceil_mode_pad_include", [f([1, 3, 7, 7])],
    {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1, "count_include_pad": 1})
one("AveragePool", "same_upper", [f(X8)], {"kernel_shape": [2, 2], "strides": [2, 2], "auto_pad": "SAME_UPPER"})
one("GlobalAveragePool", "4d", [f(S4)])
one("GlobalAveragePool", "3d", [f([2, 3, 11])])
one("GlobalMaxPool", "4d", [f(S4)])

# ---------------------------------------------------------------- reductions
for op in ("ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2", "ReduceSumSquare", "ReduceSum"):
    lo, hi = (0.5, 1.5) if op == "ReduceProd" else (-1, 1)
    if op == "ReduceSum":  # axes is an input from opset 13
        one(op, "axes_input_last_keep", [f(S4)], inits={"axes": I([-1])})
        one(op, "axes_input_12_nokeep", [f(S4)], {"keepdims": 0}, inits={"axes": I([1, 2])})
        one(op, "no_axes_all", [f(S4)])
        one(op, "empty_axes_noop", [f(S4)], {"noop_with_empty_axes": 1}, inits={"axes": I([])})
        one(op, "int64", [f([3, 4], -9, 9, dt="int64")], inits={"axes": I([0])})
        continue
    one(op, "axes_attr_last_keep", [f(S4, lo, hi)], {"axes": [-1]}, opset=13)
    one(op, "axes_attr_12_nokeep", [f(S4, lo, hi)], {"axes": [1, 2], "keepdims": 0}, opset=13)
    one(op, "all_axes", [f(S4, lo, hi)], opset=13)
    one(op, "opset18_axes_input", [f(S4, lo, hi)], inits={"axes": I([-2, 1])}, opset=18, checker=False)
    one(op, "opset18_axes_input_nokeep", [f(S4, lo, hi)], {"keepdims": 0}, inits={"axes": I([3])}, opset=18,
        checker=False)
one("ReduceMax", "int64", [f([3, 4], -9, 9, dt="int64")], {"axes": [1]}, opset=13)
for op in ("ArgMax", "ArgMin"):
    one(op, "axis1_keep", [f(S4)], {"axis": 1}, out_dtype="int64")
    one(op, "axis_neg1_nokeep", [f(S4)], {"axis": -1, "keepdims": 0}, out_dtype="int64")
    one(op, "select_last_index", [f([3, 6], 0, 2, dt="int64")], {"axis": 1, "select_last_index": 1},
        out_dtype="int64", note="small int range: ties are frequent")
    one(op, "first_index_ties", [f([3, 6], 0, 2, dt="int64")], {"axis": 1}, out_dtype="int64")

# ---------------------------------------------------------------- layout and indexing
one("Reshape", "zero_and_minus1", [f(S4)], inits={"shape": I([0, -1, 5])})
one("Reshape", "flatten_all", [f(S4)], inits={"shape": I([-1])})
one("Reshape", "add_dims", [f([6, 4])], inits={"shape": I([2, 3, 1, 4])})
one("Reshape", "int64", [f([6, 4], -9, 9, dt="int64")], inits={"shape": I([4, 6])})
for ax in (0, 1, 2, -1):
    one("Flatten", f"axis{ax}", [f(S4)], {"axis": ax})
one("Transpose", "default_reverse", [f(S4)])
one("Transpose", "nchw_to_nhwc", [f(S4)], {"perm": [0, 2, 3, 1]})
one("Transpose", "nhwc_to_nchw", [f(S4)], {"perm": [0, 3, 1, 2]})
one("Transpose", "2d", [f([7, 3])], {"perm": [1, 0]})
one("Transpose", "5d", [f([2, 3, 2, 4, 2])], {"perm": [0, 2, 1, 4, 3]})
one("Squeeze", "axes_input_neg", [f([2, 1, 4, 1])], inits={"axes": I([-1])})
one("Squeeze", "axes_input_two", [f([1, 3, 1, 5])], inits={"axes": I([0, 2])})
one("Squeeze", "no_axes", [f([1, 3, 1, 5])])
one("Unsqueeze", "axes_input", [f([3, 5])], inits={"axes": I([0])})
one("Unsqueeze", "axes_neg_and_pos", [f([3, 5])], inits={"axes": I([1, -1])})
one("Unsqueeze", "scalar_to_1d", [f([])], inits={"axes": I([0])})
one("Concat", "axis1_three", [f([2, 3, 4]), f([2, 1, 4], name="B"), f([2, 2, 4], name="C")], {"axis": 1})
one("Concat", "axis_neg1", [f([2, 3, 4]), f([2, 3, 2], name="B")], {"axis": -1})
one("Concat", "axis0_with_const", [f([2, 3])], {"axis": 0}, inits={"B": rnd([1, 3], 13)})
one("Concat", "int64", [f([2], -9, 9, dt="int64")], {"axis": 0}, inits={"B": I([7, 8, 9])})
one("Split", "equal_3", [f([2, 6, 4])], {"axis": 1}, outs=3)
one("Split", "sizes_input", [f([2, 6, 4])], {"axis": 1}, inits={"split": I([1, 2, 3])}, outs=3)
one("Split", "axis_neg1", [f([2, 3, 8])], {"axis": -1}, inits={"split": I([6, 2])}, outs=2)
one("Split", "opset18_num_outputs_uneven", [f([2, 7])], {"axis": 1, "num_outputs": 3}, outs=3, opset=18,
    checker=False)


def slc(name, shape, starts, ends, axes=None, steps=None):
    inits = {"starts": I(starts), "ends": I(ends)}
    ni = ["X", "starts", "ends"]
    if axes is not None:
        inits["axes"] = I(axes)
        ni.append("axes")
    if steps is not None:
        if axes is None:
            ni.append("")
        inits["steps"] = I(steps)
        ni.append("steps")
    one("Slice", name, [f(shape)], inits=inits, node_inputs=ni)


slc("basic_axes", [4, 6, 5], [1, 2], [3, 5], [0, 1])
slc("no_axes", [4, 6], [1, 0], [3, 4])
slc("negative_axes_starts", [4, 6, 5], [-3], [-1], [-1])
slc("clamp_int_max", [4, 6, 5], [2], [2 ** 63 - 1], [1])
slc("step2", [4, 10], [1], [10], [1], [2])
slc("negative_step", [4, 10], [-1], [-(2 ** 63)], [1], [-1])
slc("negative_step3", [4, 10], [8, 3], [1, 0], [1, 0], [-3, -1])
slc("empty_result", [4, 6], [3], [1], [1])
one("Gather", "axis0_1d", [f([5, 4])], {"axis": 0}, inits={"idx": I([4, 0, 2])})
one("Gather", "axis1_2d_idx", [f([3, 5, 4])], {"axis": 1}, inits={"idx": I([[0, 1], [4, 3]])})
one("Gather", "negative_indices", [f([5, 4])], {"axis": -1}, inits={"idx": I([-1, 0, -4])})
one("Gather", "scalar_index", [f([3, 5, 4])], {"axis": 1}, inits={"idx": I(2)})
one("Gather", "int64_data_shape_style", [f([4], -9, 9, dt="int64")], {"axis": 0}, inits={"idx": I(0)})
one("GatherElements", "axis1", [f([3, 4])], {"axis": 1}, inits={"idx": I([[0, 3], [1, 1], [2, 0]])})
one("GatherElements", "axis0_neg_idx", [f([3, 4])], {"axis": 0}, inits={"idx": I([[0, -1, 1, 2]])})
one("Expand", "bcast", [f([3, 1])], inits={"shape": I([2, 3, 4])})
one("Expand", "shape_smaller_rank", [f([2, 1, 4])], inits={"shape": I([3, 1])})
one("Tile", "2d", [f([2, 3])], inits={"rep": I([2, 3])})
one("Tile", "4d", [f(S4)], inits={"rep": I([1, 2, 1, 2])})
one("Pad", "constant_value", [f([1, 2, 4, 5])], {"mode": "constant"},
    inits={"pads": I([0, 0, 1, 2, 0, 0, 2, 1]), "v": arr(1.5)})
one("Pad", "constant_default", [f([3, 4])], inits={"pads": I([1, 0, 0, 2])})
one("Pad", "reflect", [f([1, 2, 4, 5])], {"mode": "reflect"}, inits={"pads": I([0, 0, 2, 3, 0, 0, 1, 2])})
one("Pad", "edge", [f([1, 2, 4, 5])], {"mode": "edge"}, inits={"pads": I([0, 0, 3, 1, 0, 0, 2, 4])})
# Untouched innermost axes (NHWC's channels; NCHW's rows when only C is padded) move in 16-byte words.
one("Pad", "reflect_channels16", [f([1, 16, 4, 5])], {"mode": "reflect"}, inits={"pads": I([0, 0, 1, 2, 0, 0, 2, 1])})
one("Pad", "constant_inner_rows", [f([2, 3, 4, 8])], inits={"pads": I([0, 1, 0, 0, 0, 2, 0, 0])})
one("Pad", "negative_crop", [f([1, 2, 6, 6])], inits={"pads": I([0, 0, -1, 1, 0, 0, 2, -2])})
one("Pad", "opset18_axes", [f([1, 2, 4, 5])], {"mode": "reflect"}, inits={"pads": I([1, 1, 2, 2]), "v": arr(0.0),
    "axes": I([-2, -1])}, opset=18, checker=False)


def rs(name, shape, mode, ctm, scales=None, sizes=None, **extra):
    attrs = {"mode": mode, "coordinate_transformation_mode": ctm}
    attrs.update(extra)
    if scales is not None:
        one("Resize", name, [f(shape)], attrs, inits={"scales": arr(scales)}, node_inputs=["X", "", "scales"])
    else:
        one("Resize", name, [f(shape)], attrs, inits={"sizes": I(sizes)}, node_inputs=["X", "", "", "sizes"])


for ctm in ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"):
    rs(f"linear_{ctm}_scales_x2", [1, 2, 5, 6], "linear", ctm, scales=[1, 1, 2, 2])
    rs(f"linear_{ctm}_sizes", [1, 2, 5, 6], "linear", ctm, sizes=[1, 2, 9, 13])
    rs(f"linear_{ctm}_down_scales", [1, 2, 8, 8], "linear", ctm, scales=[1, 1, 0.5, 0.5])
    rs(f"nearest_{ctm}_scales_x2", [1, 2, 5, 6], "nearest", ctm, scales=[1, 1, 2, 2],
       nearest_mode="floor" if ctm == "asymmetric" else "round_prefer_floor")
    rs(f"nearest_{ctm}_sizes", [1, 2, 5, 6], "nearest", ctm, sizes=[1, 2, 8, 11],
       nearest_mode="floor" if ctm == "asymmetric" else "round_prefer_floor")
rs("nearest_asymmetric_floor_x1.5", [1, 2, 4, 6], "nearest", "asymmetric", scales=[1, 1, 1.5, 1.5],
   nearest_mode="floor")
rs("nearest_half_pixel_round_prefer_ceil", [1, 2, 4, 6], "nearest", "half_pixel", scales=[1, 1, 3, 3],
   nearest_mode="round_prefer_ceil")
rs("nearest_pytorch_half_pixel_ceil_down", [1, 2, 9, 9], "nearest", "pytorch_half_pixel", sizes=[1, 2, 4, 4],
   nearest_mode="ceil")
rs("cubic_half_pixel_a-0.75", [1, 2, 5, 6], "cubic", "half_pixel", scales=[1, 1, 2, 2], cubic_coeff_a=-0.75)
rs("cubic_align_corners_sizes", [1, 2, 5, 6], "cubic", "align_corners", sizes=[1, 2, 8, 8])
rs("linear_half_pixel_3d_sizes", [2, 5, 6], "linear", "half_pixel", sizes=[2, 9, 13])
one("Upsample", "nearest_x2_opset9", [f([1, 2, 4, 5])], {"mode": "nearest"}, inits={"scales": arr([1, 1, 2, 2])},
    opset=9)
one("Upsample", "linear_x2_opset9", [f([1, 2, 4, 5])], {"mode": "linear"}, inits={"scales": arr([1, 1, 2, 2])},
    opset=9, note="Upsample-9 linear is asymmetric-coordinate bilinear")
one("DepthToSpace", "DCR", [f([1, 8, 3, 4])], {"blocksize": 2, "mode": "DCR"})
one("DepthToSpace", "CRD", [f([1, 8, 3, 4])], {"blocksize": 2, "mode": "CRD"})
one("DepthToSpace", "DCR_b3", [f([2, 18, 2, 3])], {"blocksize": 3})
one("SpaceToDepth", "b2", [f([1, 2, 4, 6])], {"blocksize": 2})
one("SpaceToDepth", "b3", [f([2, 1, 6, 3])], {"blocksize": 3})
one("ScatterND", "rows", [f([4, 3]), f([2, 3], name="U")], inits={"idx": I([[1], [3]])},
    node_inputs=["X", "idx", "U"])
one("ScatterND", "elements", [f([4, 3]), f([3], name="U")], inits={"idx": I([[0, 0], [2, 1], [3, 2]])},
    node_inputs=["X", "idx", "U"])
one("ScatterND", "slices_3d", [f([2, 3, 4]), f([2, 4], name="U")], inits={"idx": I([[0, 1], [1, 2]])},
    node_inputs=["X", "idx", "U"])
one("ScatterND", "negative_index", [f([4, 3]), f([1, 3], name="U")], inits={"idx": I([[-1]])},
    node_inputs=["X", "idx", "U"], note="negative indices: valid in ORT, spec says [-r, r-1]")
TK = [("Y", "float32"), ("Idx", "int64")]
one("TopK", "k3_last_axis", [f([3, 10])], inits={"K": I([3])}, outs=TK)
one("TopK", "k2_axis1_smallest", [f([2, 6, 4])], {"axis": 1, "largest": 0}, inits={"K": I([2])}, outs=TK)
one("TopK", "k1_neg_axis", [f([2, 6, 4])], {"axis": -1}, inits={"K": I([1])}, outs=TK)
one("TopK", "k_all_int64", [f([2, 5], -20, 20, dt="int64")], inits={"K": I([5])},
    outs=[("Y", "int64"), ("Idx", "int64")], note="ties possible: compare values; indices with ties by lower index")

# ---------------------------------------------------------------- shape and constants
one("Shape", "full", [f(S4)], out_dtype="int64")
one("Shape", "start1_opset15", [f(S4)], {"start": 1}, out_dtype="int64", opset=15)
one("Shape", "start_neg2_end_neg1_opset15", [f(S4)], {"start": -2, "end": -1}, out_dtype="int64", opset=15)
one("Size", "4d", [f(S4)], out_dtype="int64")
one("Size", "scalar", [f([])], out_dtype="int64")
one("Constant", "float_tensor_add", [f([2, 3])], node_inputs=[], out_dtype="float32",
    attrs={"value": numpy_helper.from_array(rnd([2, 3], 14), "v")})
CASES[-1]["nodes"] = [helper.make_node("Constant", [], ["K"], value=numpy_helper.from_array(rnd([2, 3], 14), "v")),
                      helper.make_node("Add", ["X", "K"], ["Y"])]
one("Constant", "value_float", [f([2, 3])], node_inputs=[])
CASES[-1]["nodes"] = [helper.make_node("Constant", [], ["K"], value_float=2.5), helper.make_node("Mul", ["X", "K"], ["Y"])]
one("Constant", "value_ints", [f([2, 3])], node_inputs=[], out_dtype="float32")
CASES[-1]["outputs"] = [("Y", "float32", [3, 2])]
CASES[-1]["nodes"] = [helper.make_node("Constant", [], ["S"], value_ints=[3, 2]),
                      helper.make_node("Reshape", ["X", "S"], ["Y"])]
case("ConstantOfShape", "from_shape_default_zero", [helper.make_node("Shape", ["X"], ["S"]),
                                                    helper.make_node("ConstantOfShape", ["S"], ["Y"])],
     [f([2, 3, 4])], [("Y", "float32")])
case("ConstantOfShape", "value_int64_const_shape",
     [helper.make_node("ConstantOfShape", ["S"], ["C"], value=numpy_helper.from_array(I([7]), "v")),
      helper.make_node("Add", ["X", "C"], ["Y"])],
     [f([3, 4], -9, 9, dt="int64")], [("Y", "int64")], inits={"S": I([3, 4])})
case("ConstantOfShape", "value_float_sliced_shape",
     [helper.make_node("Shape", ["X"], ["S"], start=1),
      helper.make_node("ConstantOfShape", ["S"], ["Y"], value=numpy_helper.from_array(arr([0.5]), "v"))],
     [f([2, 3, 4])], [("Y", "float32")], opset=15)
case("Range", "float_plus_data", [helper.make_node("Range", ["a", "b", "d"], ["R"]),
                                  helper.make_node("Add", ["X", "R"], ["Y"])],
     [f([2, 8])], [("Y", "float32")], inits={"a": arr(1.0), "b": arr(5.0), "d": arr(0.5)})
case("Range", "int64_negative_delta", [helper.make_node("Range", ["a", "b", "d"], ["R"]),
                                       helper.make_node("Add", ["X", "R"], ["Y"])],
     [f([4], -9, 9, dt="int64")], [("Y", "int64")], inits={"a": I(10), "b": I(2), "d": I(-2)})
case("Range", "dynamic_limit_from_shape",
     [helper.make_node("Shape", ["X"], ["S"], start=1, end=2),
      helper.make_node("Squeeze", ["S", "ax"], ["L"]),
      helper.make_node("Range", ["a", "L", "d"], ["Y"])],
     [f([2, 6])], [("Y", "int64")], inits={"a": I(0), "d": I(1), "ax": I([0])}, opset=15)


# ------------------------------------------------------------------------------------------------
def op_list_from_header(root):
    """The ONNX ops of op.h's list: the internal ops that end it (made by graph passes, never read
    from a model, so no ONNX file can hold them) have tests of their own."""
    text = open(os.path.join(root, "src/backends/op.h")).read()
    block = text[text.index("#define FSWAP_OP_LIST"):text.index("enum class OpType")]
    return re.findall(r"X\((\w+)\)", block.split("internal ops")[0])


def write(out, check=True):
    os.makedirs(out, exist_ok=True)
    listing = []
    failures = []
    for i, c in enumerate(CASES):
        inputs = [helper.make_tensor_value_info(n, DT[dt], shp) for n, dt, shp, _, _ in c["inputs"]]
        outputs = [helper.make_tensor_value_info(o[0], DT[o[1]], o[2] if len(o) > 2 else None) for o in c["outputs"]]
        inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in c["inits"].items()]
        g = helper.make_graph(c["nodes"], f"{c['op']}__{c['name']}", inputs, outputs, inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", c["opset"])], producer_name="fswap-opcases")
        m.ir_version = 8
        try:  # give the outputs their inferred shapes (full_check wants a shape on every output)
            inf = onnx.shape_inference.infer_shapes(m, strict_mode=True)
            known = {v.name: v for v in list(inf.graph.value_info) + list(inf.graph.output)}
            for k, o in enumerate(m.graph.output):
                v = known.get(o.name)
                if v is not None and v.type.tensor_type.HasField("shape"):
                    m.graph.output[k].CopyFrom(v)
        except Exception:  # noqa: BLE001  (opset 18+ cases: onnx 1.12 cannot infer them)
            pass
        fname = f"{c['op']}__{c['name']}.onnx"
        checked = c["checker"] if c["checker"] is not None else c["opset"] <= 17
        if check and checked:
            try:
                onnx.checker.check_model(m, full_check=True)
            except Exception as e:  # noqa: BLE001
                failures.append((fname, str(e).splitlines()[0][:300]))
        onnx.save(m, os.path.join(out, fname))
        ints = all(o[1] not in ("float32", "float16", "float64") for o in c["outputs"])
        rtol = c["rtol"] if c["rtol"] is not None else (
            0.0 if ints else 1e-3 if c["op"] in TRANSCENDENTAL else 1e-4)
        atol = c["atol"] if c["atol"] is not None else (0.0 if ints else 1e-4 if c["op"] in ACCUM else 1e-5)
        if c["inputs"] and c["inputs"][0][1] == "float16" or any(o[1] == "float16" for o in c["outputs"]):
            rtol, atol = max(rtol, 1e-3), max(atol, 1e-3)
        entry = dict(file=fname, op=c["op"], case=c["name"], opset=c["opset"],
                     inputs=[dict(name=n, dtype=dt, shape=shp, low=lo, high=hi) for n, dt, shp, lo, hi in c["inputs"]],
                     outputs=[dict(name=o[0], dtype=o[1]) for o in c["outputs"]],
                     tolerance=dict(rtol=rtol, atol=atol), seed=SEED + i, onnx_checker=bool(checked))
        if c["note"]:
            entry["note"] = c["note"]
        listing.append(entry)
    with open(os.path.join(out, "cases.json"), "w") as fh:
        json.dump(dict(generator="tools/replicas/generate_op_cases.py", cases=listing), fh, indent=1)
    return listing, failures


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--no-check", action="store_true")
    a = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    listing, failures = write(a.out, check=not a.no_check)
    ops = op_list_from_header(root)
    covered = {c["op"] for c in listing}
    missing = [o for o in ops if o not in covered]
    unchecked = [c["file"] for c in listing if not c["onnx_checker"]]
    print(f"{len(listing)} cases for {len(covered)} ops in {a.out}; op.h lists {len(ops)}; missing: {missing or 'none'}")
    print(f"not passed through onnx.checker (opset newer than onnx {onnx.__version__} knows): {', '.join(unchecked)}")
    for fn, e in failures:
        print(f"CHECKER FAIL {fn}: {e}")
    if missing or failures:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
