#!/usr/bin/env python3
"""PyTorch baseline for the replica benchmark (issue 4): each replica ONNX file is interpreted
with native torch ops (fp16, channels_last, cudnn.benchmark) and timed at several batch sizes.

  python3 tools/bench/torch_baseline.py --models DIR_OR_FILES... [--batches 1 8 32] [--runs 50]
        [--compile [--compile-mode M] [--compile-timeout S]] [--check] [--force-batch] [--size H W]
  python3 tools/bench/torch_baseline.py --models DIR_OR_FILES... --list-ops   (no torch needed)

Modes: eager_fp16_cl (eager, fp16 weights and activations, channels_last), cudagraph (the same
module captured in a torch.cuda.CUDAGraph with static input/output buffers) and, with --compile,
compiled (torch.compile in a child process, killed after --compile-timeout seconds per model).
Timing: CUDA events around each run (synchronised, so a row is latency, not throughput), warm-up
runs first, median of --runs. One JSON line per (model, mode, batch) on stdout; a table on stderr.
A model whose ONNX batch dimension is fixed at 1 is skipped at batch > 1 unless --force-batch,
which feeds batch B anyway and keeps the row only if item 0 matches the batch-1 output.
--check runs onnxruntime (CPU, fp32) at batch 1 and compares the interpreter in fp32 (TF32 off)
and in fp16 against it (max |torch - ort| / max |ort| over each output): a line on stderr, a
{"mode": "check_fp32_vs_ort", "max_rel_err": ..., "ok": ...} line on stdout, the fp16 figure as
"fp16_vs_ort" in the batch-1 eager row; the exit status is 1 if an fp32 check exceeds 1e-3.
"""
import argparse, glob, json, math, os, signal, statistics, subprocess, sys, time
from collections import Counter

import numpy as np
import onnx
from onnx import helper, numpy_helper

try:
    import torch
    import torch.nn.functional as F
    Base = torch.nn.Module
except ImportError:  # --list-ops works without torch
    torch = F = None
    Base = object

ONNX_DT = {1: "float32", 2: "uint8", 3: "int8", 5: "int16", 6: "int32", 7: "int64", 9: "bool",
           10: "float16", 11: "float64", 16: "bfloat16"}
DEFAULT_HW = {"real_esrgan_x4": (256, 256)}  # symbolic height/width; everything else 640x640
H, META = {}, {}  # op -> handler(ctx, attrs, *inputs); op -> input slots read as host values


def op(*names, meta=()):
    def reg(fn):
        for n in names:
            H[n], META[n] = fn, tuple(meta)
        return fn
    return reg


def ints(v):
    if isinstance(v, np.ndarray) or (torch is not None and isinstance(v, torch.Tensor)):
        v = v.tolist()
    return [int(i) for i in v] if isinstance(v, (list, tuple)) else [int(v)]


def scal(v):
    return (v[0] if v else None) if isinstance(v, (list, tuple)) else v


def tdtype(onnx_type):
    if onnx_type not in ONNX_DT:
        raise NotImplementedError(f"ONNX tensor type {onnx_type}")
    return getattr(torch, ONNX_DT[onnx_type])


# ---------------------------------------------------------------- elementwise
UNARY = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Exp": "exp", "Log": "log",
         "Sqrt": "sqrt", "Abs": "abs", "Neg": "neg", "Reciprocal": "reciprocal", "Floor": "floor",
         "Ceil": "ceil", "Round": "round", "Sin": "sin", "Cos": "cos", "Erf": "erf", "Sign": "sign",
         "Not": "logical_not"}
for _o, _f in UNARY.items():
    op(_o)(lambda c, a, x, _f=_f: getattr(torch, _f)(x))
BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Pow": "pow", "Equal": "eq", "Greater": "gt",
          "Less": "lt", "GreaterOrEqual": "ge", "LessOrEqual": "le", "And": "logical_and",
          "Or": "logical_or", "Xor": "logical_xor"}
for _o, _f in BINARY.items():
    op(_o)(lambda c, a, x, y, _f=_f: getattr(torch, _f)(x, y))
op("Identity", "Dropout")(lambda c, a, x, *r: x)
op("LeakyRelu")(lambda c, a, x: F.leaky_relu(x, a.get("alpha", 0.01)))
op("Elu")(lambda c, a, x: F.elu(x, a.get("alpha", 1.0)))
op("Celu")(lambda c, a, x: F.celu(x, a.get("alpha", 1.0)))
op("Selu")(lambda c, a, x: a.get("gamma", 1.05070102214813232421875) * torch.where(
    x > 0, x, a.get("alpha", 1.67326319217681884765625) * torch.expm1(x)))
op("HardSigmoid")(lambda c, a, x: torch.clamp(a.get("alpha", 0.2) * x + a.get("beta", 0.5), 0, 1))
op("HardSwish")(lambda c, a, x: F.hardswish(x))
op("Softplus")(lambda c, a, x: F.softplus(x))
op("Softsign")(lambda c, a, x: F.softsign(x))
op("Mish")(lambda c, a, x: F.mish(x))
op("Gelu")(lambda c, a, x: F.gelu(x, approximate=a.get("approximate", "none")))
op("Div")(lambda c, a, x, y: x / y if x.is_floating_point() else torch.div(x, y, rounding_mode="trunc"))
op("Mod")(lambda c, a, x, y: torch.fmod(x, y) if a.get("fmod", 0) else torch.remainder(x, y))
op("Where")(lambda c, a, cond, x, y: torch.where(cond, x, y))


@op("Max", "Min", "Sum", "Mean")
def variadic(c, a, *xs):
    f = {"Max": torch.maximum, "Min": torch.minimum}.get(a["_op"], torch.add)
    y = xs[0]
    for x in xs[1:]:
        y = f(y, x)
    return y / len(xs) if a["_op"] == "Mean" else y


@op("PRelu")
def prelu(c, a, x, s):
    if s.numel() == 1 or (x.dim() >= 2 and tuple(s.shape) == (x.shape[1],) + (1,) * (x.dim() - 2)):
        return F.prelu(x, s.reshape(-1))
    return torch.where(x >= 0, x, x * s)


@op("Clip", meta=(1, 2))
def clip(c, a, x, lo=None, hi=None):
    lo = scal(lo) if lo is not None else a.get("min")
    hi = scal(hi) if hi is not None else a.get("max")
    return x if lo is None and hi is None else torch.clamp(x, lo, hi)


@op("Cast")
def cast(c, a, x):
    dt = tdtype(a["to"])
    return x.to(c.dtype if dt.is_floating_point and not c.host else dt)


# ---------------------------------------------------------------- convolution, pooling, norms
def spatial_pads(a, x, k, s, d):
    nd, ap = len(k), a.get("auto_pad", "NOTSET")
    if ap in ("SAME_UPPER", "SAME_LOWER"):
        tot = [max((-(-x.shape[2 + i] // s[i]) - 1) * s[i] + (k[i] - 1) * d[i] + 1 - x.shape[2 + i], 0)
               for i in range(nd)]
        lo = [t // 2 if ap == "SAME_UPPER" else t - t // 2 for t in tot]
        return lo, [t - l for t, l in zip(tot, lo)]
    p = [0] * 2 * nd if ap == "VALID" else list(a.get("pads", [0] * 2 * nd))
    return p[:nd], p[nd:]


def pre_pad(x, beg, end, value=0.0, force=False):
    """Asymmetric (or over-large) padding goes through F.pad; returns x and the op's own padding."""
    if beg == end and not force:
        return x, list(beg)
    tp = []
    for i in reversed(range(len(beg))):
        tp += [beg[i], end[i]]
    return F.pad(x, tp, value=value), [0] * len(beg)


@op("Conv")
def conv(c, a, x, w, b=None):
    nd = w.dim() - 2
    k, s, d = a.get("kernel_shape", list(w.shape[2:])), a.get("strides", [1] * nd), a.get("dilations", [1] * nd)
    x, p = pre_pad(x, *spatial_pads(a, x, k, s, d))
    return (F.conv1d, F.conv2d, F.conv3d)[nd - 1](x, w, b, s, p, d, a.get("group", 1))


@op("ConvTranspose")
def conv_transpose(c, a, x, w, b=None):
    nd = w.dim() - 2
    s, d = a.get("strides", [1] * nd), a.get("dilations", [1] * nd)
    pads, op_pad = a.get("pads", [0] * 2 * nd), a.get("output_padding", [0] * nd)
    fn = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[nd - 1]
    beg, end = pads[:nd], pads[nd:]
    if beg == end:
        return fn(x, w, b, s, beg, op_pad, a.get("group", 1), d)
    y = fn(x, w, b, s, 0, op_pad, a.get("group", 1), d)
    return y[(slice(None),) * 2 + tuple(slice(beg[i], y.shape[2 + i] - end[i]) for i in range(nd))]


@op("MaxPool")
def maxpool(c, a, x):
    k = a["kernel_shape"]
    nd = len(k)
    s, d = a.get("strides", [1] * nd), a.get("dilations", [1] * nd)
    beg, end = spatial_pads(a, x, k, s, d)
    x, p = pre_pad(x, beg, end, float("-inf"), force=any(2 * q > kk for q, kk in zip(beg, k)))
    return (F.max_pool1d, F.max_pool2d, F.max_pool3d)[nd - 1](x, k, s, p, d, bool(a.get("ceil_mode", 0)))


@op("AveragePool")
def avgpool(c, a, x):
    k = a["kernel_shape"]
    nd, cip = len(k), bool(a.get("count_include_pad", 0))
    s = a.get("strides", [1] * nd)
    beg, end = spatial_pads(a, x, k, s, [1] * nd)
    if beg != end or any(2 * q > kk for q, kk in zip(beg, k)):
        if not cip:
            raise NotImplementedError("AveragePool with asymmetric pads and count_include_pad=0")
        x, beg = pre_pad(x, beg, end, 0.0, force=True)
    return (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[nd - 1](x, k, s, beg, bool(a.get("ceil_mode", 0)), cip)


op("GlobalAveragePool")(lambda c, a, x: x.mean(dim=tuple(range(2, x.dim())), keepdim=True))
op("GlobalMaxPool")(lambda c, a, x: x.amax(dim=tuple(range(2, x.dim())), keepdim=True))
op("BatchNormalization")(lambda c, a, x, sc, b, m, v: F.batch_norm(x, m, v, sc, b, False, 0.0, a.get("epsilon", 1e-5)))
op("InstanceNormalization")(lambda c, a, x, sc, b: F.instance_norm(x, weight=sc, bias=b, eps=a.get("epsilon", 1e-5)))


@op("LayerNormalization")
def layernorm(c, a, x, sc, b=None):
    shp = tuple(x.shape[a.get("axis", -1) % x.dim():])
    sc = sc if tuple(sc.shape) == shp else sc.expand(shp).contiguous()
    b = b if b is None or tuple(b.shape) == shp else b.expand(shp).contiguous()
    return F.layer_norm(x, shp, sc, b, a.get("epsilon", 1e-5))


@op("Gemm")
def gemm(c, a, A, B, C=None):
    A, B = (A.t() if a.get("transA", 0) else A), (B.t() if a.get("transB", 0) else B)
    alpha, beta = a.get("alpha", 1.0), a.get("beta", 1.0)
    if C is None:
        return A @ B if alpha == 1 else (A @ B) * alpha
    return torch.addmm(C, A, B, beta=beta, alpha=alpha)


op("MatMul")(lambda c, a, x, y: torch.matmul(x, y))
op("Einsum")(lambda c, a, *xs: torch.einsum(a["equation"], *xs))


@op("Softmax", "LogSoftmax")
def softmax(c, a, x):
    f = F.softmax if a["_op"] == "Softmax" else F.log_softmax
    if c.opset >= 13:
        return f(x, a.get("axis", -1))
    ax = a.get("axis", 1) % x.dim()  # opset < 13: over the flattened trailing dims
    return f(x.reshape(math.prod(x.shape[:ax]), -1), -1).reshape(x.shape)


# ---------------------------------------------------------------- reductions
REDUCE = {"ReduceMean": lambda x, ax, k: torch.mean(x, ax, k), "ReduceSum": lambda x, ax, k: torch.sum(x, ax, k),
          "ReduceMax": lambda x, ax, k: torch.amax(x, ax, k), "ReduceMin": lambda x, ax, k: torch.amin(x, ax, k),
          "ReduceL2": lambda x, ax, k: torch.linalg.vector_norm(x, 2, ax, k),
          "ReduceL1": lambda x, ax, k: torch.linalg.vector_norm(x, 1, ax, k),
          "ReduceSumSquare": lambda x, ax, k: torch.sum(x * x, ax, k),
          "ReduceLogSumExp": lambda x, ax, k: torch.logsumexp(x, ax, k),
          "ReduceLogSum": lambda x, ax, k: torch.log(torch.sum(x, ax, k))}


@op(*REDUCE, "ReduceProd", meta=(1,))
def reduce(c, a, x, axes=None):
    ax = ints(axes) if axes else a.get("axes")
    if not ax:
        if a.get("noop_with_empty_axes", 0):
            return x
        ax = list(range(x.dim()))
    ax, keep = sorted((q % x.dim() for q in ax), reverse=True), bool(a.get("keepdims", 1))
    if a["_op"] == "ReduceProd":
        for q in ax:
            x = torch.prod(x, q, keep)
        return x
    return REDUCE[a["_op"]](x, ax, keep)


op("ArgMax")(lambda c, a, x: torch.argmax(x, a.get("axis", 0), bool(a.get("keepdims", 1))))
op("ArgMin")(lambda c, a, x: torch.argmin(x, a.get("axis", 0), bool(a.get("keepdims", 1))))


# ---------------------------------------------------------------- shape and data movement
@op("Reshape", meta=(1,))
def reshape(c, a, x, shape):
    s = ints(shape)
    if not a.get("allowzero", 0):
        s = [x.shape[i] if v == 0 else v for i, v in enumerate(s)]
    return x.reshape(s)


@op("Flatten")
def flatten(c, a, x):
    ax = a.get("axis", 1)
    ax = ax + x.dim() if ax < 0 else ax
    return x.reshape(math.prod(x.shape[:ax]), -1)


op("Transpose")(lambda c, a, x: x.permute(a.get("perm", list(range(x.dim() - 1, -1, -1)))))
op("Concat")(lambda c, a, *xs: torch.cat(xs, a["axis"]))
op("Shape")(lambda c, a, x: np.array(x.shape[a.get("start", 0):a.get("end", x.dim())], np.int64))
op("Size")(lambda c, a, x: np.array(x.numel(), np.int64))
op("Expand", meta=(1,))(lambda c, a, x, s: x.expand(torch.broadcast_shapes(tuple(x.shape), tuple(ints(s)))))
op("Tile", meta=(1,))(lambda c, a, x, r: x.repeat(ints(r)))
op("GatherElements")(lambda c, a, x, i: torch.gather(x, a.get("axis", 0), torch.where(i < 0, i + x.shape[a.get("axis", 0)], i)))


@op("Split", meta=(1,))
def split(c, a, x, sizes=None):
    ax = a.get("axis", 0)
    sizes = ints(sizes) if sizes else a.get("split")
    if not sizes:
        num, d = a.get("num_outputs", a["_nout"]), x.shape[ax]
        sizes = [-(-d // num)] * (num - 1) + [d - -(-d // num) * (num - 1)]
    return tuple(torch.split(x, list(sizes), ax))


@op("Slice", meta=(1, 2, 3, 4))
def slice_(c, a, x, starts=None, ends=None, axes=None, steps=None):
    if starts is None:  # opset < 10
        starts, ends, axes = a["starts"], a["ends"], a.get("axes")
    st, en = ints(starts), ints(ends)
    ax = ints(axes) if axes else list(range(len(st)))
    sp = ints(steps) if steps else [1] * len(st)
    idx, neg = [slice(None)] * x.dim(), []
    for s, e, q, k in zip(st, en, ax, sp):
        q = q + x.dim() if q < 0 else q
        lo, hi, _ = slice(s, e, k).indices(x.shape[q])  # the same clamping rules as ONNX
        if k > 0:
            idx[q] = slice(lo, hi, k)
        else:
            neg.append((q, list(range(lo, hi, k))))
    y = x[tuple(idx)]
    for q, sel in neg:
        y = y.index_select(q, torch.tensor(sel, dtype=torch.long, device=y.device))
    return y


@op("Gather", meta=(1,))
def gather(c, a, x, idx):
    ax = a.get("axis", 0)
    ax, n = (ax + x.dim() if ax < 0 else ax), x.shape[ax]
    if not isinstance(idx, torch.Tensor):  # constant indices: views where possible
        if not isinstance(idx, list):
            return x.select(ax, int(idx) % n)
        if idx and all(isinstance(i, int) for i in idx) and idx[0] >= 0 \
                and idx == list(range(idx[0], idx[0] + len(idx))):
            return x.narrow(ax, idx[0], len(idx))
        idx = torch.tensor(idx, dtype=torch.long).to(x.device)
    idx = torch.where(idx < 0, idx + n, idx)
    y = x.index_select(ax, idx.reshape(-1))
    return y.reshape(tuple(x.shape[:ax]) + tuple(idx.shape) + tuple(x.shape[ax + 1:]))


@op("Unsqueeze", meta=(1,))
def unsqueeze(c, a, x, axes=None):
    ax = ints(axes) if axes is not None else a["axes"]
    r = x.dim() + len(ax)
    for q in sorted(q + r if q < 0 else q for q in ax):
        x = x.unsqueeze(q)
    return x


@op("Squeeze", meta=(1,))
def squeeze(c, a, x, axes=None):
    ax = ints(axes) if axes else a.get("axes")
    if not ax:
        return x.squeeze()
    for q in sorted((q % x.dim() for q in ax), reverse=True):
        x = x.squeeze(q)
    return x


@op("DepthToSpace")
def depth_to_space(c, a, x):
    b, (n, ch, h, w) = a["blocksize"], x.shape
    if a.get("mode", "DCR") == "CRD":
        return F.pixel_shuffle(x, b)
    y = x.reshape(n, b, b, ch // (b * b), h, w).permute(0, 3, 4, 1, 5, 2)
    return y.reshape(n, ch // (b * b), h * b, w * b)


@op("SpaceToDepth")
def space_to_depth(c, a, x):
    b, (n, ch, h, w) = a["blocksize"], x.shape
    y = x.reshape(n, ch, h // b, b, w // b, b).permute(0, 3, 5, 1, 2, 4)
    return y.reshape(n, ch * b * b, h // b, w // b)


PAD_MODES = {"constant": None, "reflect": "reflect", "edge": "replicate", "wrap": "circular"}


@op("Pad", meta=(1, 2, 3))
def pad(c, a, x, pads=None, value=None, axes=None):
    mode, r = a.get("mode", "constant"), x.dim()
    p = ints(pads) if pads is not None else list(a["pads"])
    v = scal(value) if value is not None else None
    ax = [q + r if q < 0 else q for q in ints(axes)] if axes else list(range(r))
    beg, end = dict(zip(ax, p[:len(ax)])), dict(zip(ax, p[len(ax):]))
    tp = []
    for i in reversed(range(r)):
        tp += [beg.get(i, 0), end.get(i, 0)]
    if mode == "constant":
        return F.pad(x, tp, value=float(v if v is not None else a.get("value", 0.0)))
    if any(tp[2 * (r - 2):]):
        raise NotImplementedError(f"Pad mode={mode} on the batch or channel dims")
    return F.pad(x, tp[:2 * (r - 2)], mode=PAD_MODES[mode])


def resize_mode(a, rank, upsample=False):
    """(torch interpolate mode, align_corners) for an ONNX Resize/Upsample, or NotImplementedError."""
    mode = a.get("mode", "nearest")
    ctm = "asymmetric" if upsample else a.get("coordinate_transformation_mode", "half_pixel")
    nm = "floor" if upsample else a.get("nearest_mode", "round_prefer_floor")
    if a.get("antialias", 0) or a.get("exclude_outside", 0) or a.get("axes") \
            or a.get("keep_aspect_ratio_policy", "stretch") != "stretch":
        raise NotImplementedError("Resize with antialias/exclude_outside/axes/keep_aspect_ratio_policy")
    half = ctm in ("half_pixel", "pytorch_half_pixel", "align_corners")
    if mode == "nearest" and ctm == "asymmetric" and nm == "floor":
        return "nearest", None
    if mode == "nearest" and ctm in ("half_pixel", "pytorch_half_pixel") and nm == "round_prefer_ceil":
        return "nearest-exact", None
    if mode in ("linear", "bilinear") and half and rank in (3, 4, 5):
        return {3: "linear", 4: "bilinear", 5: "trilinear"}[rank], ctm == "align_corners"
    if mode == "cubic" and half and rank == 4 and a.get("cubic_coeff_a", -0.75) == -0.75:
        return "bicubic", ctm == "align_corners"
    raise NotImplementedError(f"Resize mode={mode} coordinate_transformation_mode={ctm} nearest_mode={nm}")


def interpolate(c, a, x, scales, sizes, upsample=False):
    mode, ac = resize_mode(a, x.dim(), upsample)
    if sizes:
        s = ints(sizes)
        if s[1] != x.shape[1] or (s[0] != x.shape[0] and not c.relax_batch):
            raise NotImplementedError("Resize of the batch or channel dim")
        return F.interpolate(x, size=s[2:], mode=mode, align_corners=ac)
    sc = [float(v) for v in scales]
    if sc[0] != 1 or sc[1] != 1:
        raise NotImplementedError("Resize of the batch or channel dim")
    return F.interpolate(x, scale_factor=sc[2:], mode=mode, align_corners=ac)


@op("Resize", meta=(1, 2, 3))
def resize(c, a, x, roi=None, scales=None, sizes=None):
    return interpolate(c, a, x, roi if c.opset == 10 else scales, None if c.opset == 10 else sizes)


op("Upsample", meta=(1,))(lambda c, a, x, s=None: interpolate(c, a, x, s if s is not None else a["scales"], None, True))


# ---------------------------------------------------------------- constants
@op("Constant")
def constant(c, a):
    for k in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if k in a:
            return torch.from_numpy(np.array(a[k], np.float32 if "float" in k else None if k == "value" else np.int64))
    raise NotImplementedError(f"Constant with {sorted(a)}")


@op("ConstantOfShape", meta=(0,))
def constant_of_shape(c, a, shape):
    v = a.get("value", np.zeros(1, np.float32))
    dt = torch.from_numpy(np.zeros(0, v.dtype)).dtype
    dt = c.dtype if dt.is_floating_point and not c.host else dt
    return torch.full(ints(shape), v.reshape(-1)[0].item(), dtype=dt, device=c.device)


op("Range", meta=(0, 1, 2))(lambda c, a, s, l, d: torch.arange(scal(s), scal(l), scal(d), device=c.device))


# ---------------------------------------------------------------- graph
def attrs_of(node):
    a = {"_op": node.op_type, "_nout": len(node.output)}
    for at in node.attribute:
        v = helper.get_attribute_value(at)
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, onnx.TensorProto):
            v = numpy_helper.to_array(v)
        elif isinstance(v, list) and v and isinstance(v[0], bytes):
            v = [s.decode() for s in v]
        a[at.name] = v
    return a


def check_node(node, a):
    """Static support check (also used by --list-ops): raises NotImplementedError naming the node."""
    op_, where = node.op_type, f"(node {node.name!r})"
    if node.domain not in ("", "ai.onnx"):
        raise NotImplementedError(f"op {node.domain}::{op_} {where}: custom domains are not supported")
    if op_ not in H:
        raise NotImplementedError(f"ONNX op {op_} {where} has no torch handler in torch_baseline.py")
    if op_ != "Split" and any(node.output[1:]):
        raise NotImplementedError(f"{op_} {where}: optional outputs {list(node.output[1:])} are not supported")
    if op_ in ("Resize", "Upsample"):
        resize_mode(a, 4, op_ == "Upsample")
    if (op_ == "Pad" and a.get("mode", "constant") not in PAD_MODES) \
            or (op_ == "BatchNormalization" and a.get("training_mode", 0)) \
            or (op_ == "ConvTranspose" and ("output_shape" in a or a.get("auto_pad", "NOTSET") != "NOTSET")) \
            or (op_ in ("ArgMax", "ArgMin") and a.get("select_last_index", 0)) \
            or (op_ == "AveragePool" and any(d != 1 for d in a.get("dilations", []))):
        raise NotImplementedError(f"{op_} {where} with attributes {({k: v for k, v in a.items() if k[0] != '_'})}")


def opset_of(model):
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)


def input_specs(model):
    inits = {t.name for t in model.graph.initializer}
    return [(i.name, i.type.tensor_type.elem_type,
             [d.dim_param or (d.dim_value if d.dim_value > 0 else None) for d in i.type.tensor_type.shape.dim])
            for i in model.graph.input if i.name not in inits]


def toposort(g):
    have = {i.name for i in g.input} | {t.name for t in g.initializer} | {""}
    out, pending = [], list(g.node)
    while pending:
        rest = []
        for n in pending:
            if all(i in have for i in n.input):
                out.append(n)
                have.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            raise ValueError(f"graph has a cycle or an undefined input at node {rest[0].name!r}")
        pending = rest
    return out


def run_node(ctx, fn, a, vals, metas, host):
    """Host values (numpy: constants, Shape arithmetic) become python lists in meta slots, CPU
    tensors in a host node's data slots, device tensors otherwise; host nodes give numpy back."""
    args = []
    for v, m in zip(vals, metas):
        if isinstance(v, np.ndarray):
            v = v.tolist() if m else torch.from_numpy(np.array(v)) if host else ctx.to_dev(v)
        args.append(v)
    out = fn(ctx, a, *args)
    out = tuple(out) if isinstance(out, (tuple, list)) else (out,)
    return tuple(o.numpy() if isinstance(o, torch.Tensor) else o for o in out) if host else out


class HostCtx:
    host, dtype = True, None

    def __init__(self, opset, relax_batch):
        self.opset, self.relax_batch, self.device = opset, relax_batch, torch.device("cpu")


class OnnxModule(Base):
    """The ONNX graph as a torch module: float initializers become buffers in `dtype`, nodes whose
    inputs are all constant are folded at build time, shape arithmetic runs on the host."""
    host = False

    def __init__(self, model, dtype, device, relax_batch=False):
        super().__init__()
        self.dtype, self.device, self.relax_batch, self.opset = dtype, torch.device(device), relax_batch, opset_of(model)
        self.hostctx = HostCtx(self.opset, relax_batch)
        g = model.graph
        consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
        self.input_names = [s[0] for s in input_specs(model)]
        self.output_names = [o.name for o in g.output]
        hostvals, nodes = set(), []
        for node in toposort(g):
            a = attrs_of(node)
            check_node(node, a)
            meta = META[node.op_type]
            if all(not n or n in consts for n in node.input):  # constant folding (CPU, fp32)
                vals = [consts[n] if n else None for n in node.input]
                outs = run_node(self.hostctx, H[node.op_type], a, vals, [j in meta for j in range(len(vals))], True)
                consts.update((n, v) for n, v in zip(node.output, outs) if n)
                continue
            host = all(not n or n in consts or n in hostvals for n in node.input)
            if host or node.op_type in ("Shape", "Size"):
                hostvals.update(node.output)
            nodes.append((node, a, host))
        last = {n: i for i, (node, _, _) in enumerate(nodes) for n in node.input if n and n not in consts}
        keep, bufs, self.plan = set(self.output_names), {}, []
        for i, (node, a, host) in enumerate(nodes):
            refs, meta = [], META[node.op_type]
            for j, n in enumerate(node.input):
                if not n:
                    refs.append(("val", None))
                elif n not in consts:
                    refs.append(("env", n))
                elif host or j in meta:
                    refs.append(("val", consts[n] if host else consts[n].tolist()))
                else:
                    if n not in bufs:
                        bufs[n] = f"k{len(bufs)}"
                        self.register_buffer(bufs[n], self.to_dev(consts[n]))
                    refs.append(("buf", bufs[n]))
            frees = [n for n in set(node.input) if last.get(n) == i and n not in keep]
            frees += [o for o in node.output if o and o not in last and o not in keep]
            self.plan.append((H[node.op_type], a, refs, [j in meta for j in range(len(refs))],
                              list(node.output), frees, host))
        for n in self.output_names:
            if n in consts:
                bufs[n] = f"k{len(bufs)}"
                self.register_buffer(bufs[n], self.to_dev(consts[n]))
        self.out_bufs = {n: bufs[n] for n in self.output_names if n in consts}

    def to_dev(self, v):
        t = torch.from_numpy(np.array(v))
        return (t.to(self.dtype) if t.is_floating_point() else t).to(self.device)

    def forward(self, *xs):
        env = dict(zip(self.input_names, xs))
        for fn, a, refs, metas, outs, frees, host in self.plan:
            vals = [env[k] if kind == "env" else getattr(self, k) if kind == "buf" else k for kind, k in refs]
            res = run_node(self.hostctx if host else self, fn, a, vals, metas, host)
            for n, v in zip(outs, res):
                if n:
                    env[n] = v
            for n in frees:
                del env[n]
        return tuple(getattr(self, self.out_bufs[n]) if n in self.out_bufs else env[n] for n in self.output_names)


# ---------------------------------------------------------------- inputs, timing, checks
def concrete_shape(dims, batch, hw, relax):
    out = []
    for i, d in enumerate(dims):
        if i == 0 and (not isinstance(d, int) or (relax and d == 1 and len(dims) >= 2)):
            out.append(batch)
        elif isinstance(d, int):
            out.append(d)
        elif d is None:
            raise ValueError(f"dim {i} has neither a value nor a name")
        elif "height" in d.lower() or d.lower() == "h":
            out.append(hw[0])
        elif "width" in d.lower() or d.lower() == "w":
            out.append(hw[1])
        else:
            raise ValueError(f"symbolic dim {d!r} at position {i}: no value for it")
    return out


def make_inputs(specs, batch, hw, relax, seed=1234):
    xs = []  # one generator per input: item 0 of a batch equals the batch-1 input
    for k, (name, et, dims) in enumerate(specs):
        shp, dt = concrete_shape(dims, batch, hw, relax), np.dtype(ONNX_DT[et] if et != 16 else "float32")
        rng = np.random.default_rng(seed + k)
        xs.append(rng.random(shp, dtype=np.float32).astype(dt) if dt.kind == "f" else np.zeros(shp, dt))
    return xs


def device_inputs(m, xs):
    ts = [m.to_dev(x) for x in xs]
    return [t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t for t in ts]


def rel_err(outs, refs):
    """max |out - ref| / max |ref| per output."""
    def f32(t):
        return t.detach().float().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t, np.float32)
    errs = []
    for o, r in zip(outs, refs):
        o, r = f32(o), f32(r)
        errs.append(float("inf") if o.shape != r.shape else
                    float(np.abs(o - r).max() / max(np.abs(r).max(), 1e-30)) if r.size else 0.0)
    return errs


def time_ms(fn, warmup, runs):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    st, en, ts = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True), []
    for _ in range(runs):
        st.record()
        fn()
        en.record()
        en.synchronize()
        ts.append(st.elapsed_time(en))
    return statistics.median(ts), min(ts)


def check_ort(path, model, specs, hw, dev):
    import onnxruntime as ort
    xs = make_inputs(specs, 1, hw, False)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    ref = sess.run(None, {s[0]: x for s, x in zip(specs, xs)})
    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):  # torch >= 2.9: the new TF32 switches
        objs, attr, off = (torch.backends.cuda.matmul, torch.backends.cudnn.conv), "fp32_precision", "ieee"
    else:
        objs, attr, off = (torch.backends.cuda.matmul, torch.backends.cudnn), "allow_tf32", False
    old = [getattr(o, attr) for o in objs]
    for o in objs:
        setattr(o, attr, off)
    try:
        m = OnnxModule(model, torch.float32, dev)
        with torch.no_grad():
            errs = rel_err(m(*device_inputs(m, xs)), ref)
    finally:
        for o, v in zip(objs, old):
            setattr(o, attr, v)
        m = None
        torch.cuda.empty_cache()
    return ref, errs


def capture_graph(m, xs):
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            m(*xs)
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        outs = m(*xs)
    return g, outs


# ---------------------------------------------------------------- driver
def model_paths(items):
    out = []
    for it in items:
        out += sorted(glob.glob(os.path.join(it, "*.onnx"))) if os.path.isdir(it) else [it]
    return out


def stem(path):
    return os.path.basename(path)[:-5] if path.endswith(".onnx") else os.path.basename(path)


def list_ops(paths):
    seen, bad = Counter(), 0
    for p in paths:
        m = onnx.load(p, load_external_data=False)
        hist, problems = Counter(n.op_type for n in m.graph.node), []
        seen.update(hist)
        for node in m.graph.node:
            try:
                check_node(node, attrs_of(node))
            except NotImplementedError as e:
                problems.append(str(e))
        specs = input_specs(m)
        dyn = any(d and not isinstance(d[0], int) for _, _, d in specs)
        print(f"{stem(p)}: opset {opset_of(m)}, {len(m.graph.node)} nodes, batch {'dynamic' if dyn else 'fixed'}, "
              f"inputs {[(n, d) for n, _, d in specs]}")
        print("  " + ", ".join(f"{o} x{k}" + ("" if o in H else " [NO HANDLER]") for o, k in sorted(hist.items())))
        for msg in sorted(set(problems)):
            print("  UNSUPPORTED: " + msg)
        bad += bool(problems)
    print(f"{len(paths)} models, {len(seen)} distinct ops: {', '.join(sorted(seen))}; "
          f"{'all supported' if not bad else f'{bad} model(s) with unsupported nodes'} "
          f"({len(H)} ops have handlers)")
    return 1 if bad else 0


def row(model, mode, b, ms=None, note=None, **kw):
    r = {"model": model, "mode": mode, "batch": b, "median_ms": None if ms is None else round(ms, 4),
         "ms_per_item": None if ms is None else round(ms / b, 4)}
    r.update(kw)
    if note:
        r["note"] = note
    return r


def why(e):
    return f"n/a: {type(e).__name__}: {str(e).strip().splitlines()[0][:200] if str(e).strip() else ''}"


def bench_model(path, args, emit, dev_name):
    name, model = stem(path), onnx.load(path)
    specs = input_specs(model)
    dyn = any(d and not isinstance(d[0], int) for _, _, d in specs)
    relax, hw = args.force_batch and not dyn, tuple(args.size) if args.size else DEFAULT_HW.get(name, (640, 640))
    modes = ["eager_fp16_cl", "cudagraph"] + (["compiled"] * args.compile)
    ok = [b for b in args.batches if b == 1 or dyn or args.force_batch]
    for b in args.batches:
        if b not in ok:
            for mo in modes:
                emit(row(name, mo, b, note="skipped: the ONNX batch dim is fixed at 1 (--force-batch tries anyway)"))
    ref = None
    if args.check:
        try:
            ref, errs = check_ort(path, model, specs, hw, args.device)
            good = max(errs, default=0) < 1e-3
            print(f"[check] {name}: fp32 torch vs onnxruntime CPU, max rel err per output "
                  f"{[f'{e:.2e}' for e in errs]} -> {'OK' if good else 'MISMATCH'}", file=sys.stderr)
            emit(row(name, "check_fp32_vs_ort", 1, max_rel_err=max(errs, default=0), ok=good), table=False)
        except Exception as e:  # noqa: BLE001
            good = False
            print(f"[check] {name}: could not run: {why(e)}", file=sys.stderr)
        args.check_failed |= not good
    m = OnnxModule(model, torch.float16, args.device, relax).to(memory_format=torch.channels_last)
    del model
    out1, cap = None, []
    with torch.no_grad():
        for b in ok:
            xs = device_inputs(m, make_inputs(specs, b, hw, relax))
            try:
                out = [o.clone() for o in m(*xs)]
                extra, note = {"device": dev_name, **({"forced_batch": True} if relax and b > 1 else {})}, None
                if b == 1:
                    out1 = out
                if b == 1 and ref is not None:
                    extra["fp16_vs_ort"] = max(rel_err(out, ref), default=0)
                    print(f"[check] {name}: fp16 torch vs onnxruntime CPU fp32, max rel err {extra['fp16_vs_ort']:.2e}",
                          file=sys.stderr)
                if not all(bool(torch.isfinite(o).all()) for o in out if o.is_floating_point()):
                    note = "non-finite values in the fp16 output"
                if relax and b > 1:
                    if out1 is None:
                        out1 = [o.clone() for o in m(*device_inputs(m, make_inputs(specs, 1, hw, relax)))]
                    bad = [o.shape[0] != b * r.shape[0] or o.shape[1:] != r.shape[1:] for o, r in zip(out, out1)]
                    if any(bad) or max(rel_err([o[:r.shape[0]] for o, r in zip(out, out1)], out1)) > 2e-2:
                        raise RuntimeError("graph is not batch-separable (item 0 differs from the batch-1 run)")
                ms, mn = time_ms(lambda: m(*xs), args.warmup, args.runs)
                emit(row(name, "eager_fp16_cl", b, ms, note, min_ms=round(mn, 4), runs=args.runs, **extra))
            except Exception as e:  # noqa: BLE001  (OOM, unsupported shapes: report and go on)
                for mo in modes:
                    emit(row(name, mo, b, note=why(e)))
                torch.cuda.empty_cache()
                continue
            cap.append(b)
            try:
                g, gout = capture_graph(m, xs)
                g.replay()
                err = max(rel_err(gout, out), default=0)
                ms, mn = time_ms(g.replay, args.warmup, args.runs)
                emit(row(name, "cudagraph", b, ms, None if err < 1e-2 else f"replay differs from eager by {err:.1e}",
                         min_ms=round(mn, 4), runs=args.runs, device=dev_name))
                del g, gout
            except Exception as e:  # noqa: BLE001
                emit(row(name, "cudagraph", b, note=why(e)))
            torch.cuda.empty_cache()
    m = None  # free the fp16 module before a compile child loads its own
    torch.cuda.empty_cache()
    if args.compile and cap:
        run_compiled(path, name, cap, args, emit)


def run_compiled(path, name, batches, args, emit):
    cmd = [sys.executable, os.path.abspath(__file__), "--compile-child", "--models", path, "--batches",
           *map(str, batches), "--runs", str(args.runs), "--warmup", str(args.warmup), "--device", args.device,
           "--compile-mode", args.compile_mode] + (["--force-batch"] if args.force_batch else []) \
        + (["--size", *map(str, args.size)] if args.size else [])
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = p.communicate(timeout=args.compile_timeout)
        tail = [ln for ln in err.strip().splitlines() if ln.strip()][-1:] or [""]
        reason = f"n/a: compile child exited with {p.returncode}: {tail[0][:200]}"
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)  # the child and its inductor workers (its own session)
        try:
            out, err = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            out, err = "", ""
        reason = f"n/a: over the {args.compile_timeout:.0f} s per-model compile cap"
    got = set()
    for line in out.splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue
        emit(r)
        got.add(r["batch"])
    for b in batches:
        if b not in got:
            emit(row(name, "compiled", b, note=reason))


def compile_child(args, dev_name):
    path = args.models[0]
    name, model = stem(path), onnx.load(path)
    specs = input_specs(model)
    relax = args.force_batch and not any(d and not isinstance(d[0], int) for _, _, d in specs)
    hw = tuple(args.size) if args.size else DEFAULT_HW.get(name, (640, 640))
    m = OnnxModule(model, torch.float16, args.device, relax).to(memory_format=torch.channels_last)
    del model
    cm = torch.compile(m, mode=args.compile_mode, dynamic=False)
    with torch.no_grad():
        for b in args.batches:
            try:
                xs = device_inputs(m, make_inputs(specs, b, hw, relax))
                ref = [o.clone() for o in m(*xs)]
                t0 = time.time()
                err = max(rel_err(cm(*xs), ref), default=0)
                torch.cuda.synchronize()
                cs = time.time() - t0
                ms, mn = time_ms(lambda: cm(*xs), args.warmup, args.runs)
                r = row(name, "compiled", b, ms, None if err < 2e-2 else f"differs from eager by {err:.1e}",
                        min_ms=round(mn, 4), runs=args.runs, device=dev_name, compile_s=round(cs, 1),
                        compile_mode=args.compile_mode)
            except Exception as e:  # noqa: BLE001
                r = row(name, "compiled", b, note=why(e))
            print(json.dumps(r), flush=True)


def print_table(rows, batches, dev_name):
    cells, order = {}, []
    for r in rows:
        k = (r["model"], r["mode"])
        if k not in cells:
            cells[k] = {}
            order.append(k)
        ms = r.get("median_ms")
        cells[k][r["batch"]] = f"{ms:.4f} ({r['ms_per_item']:.4f})" if ms is not None else \
            "skip" if (r.get("note") or "").startswith("skipped") else "n/a"
    err = sys.stderr
    print(f"\nPyTorch {torch.__version__} on {dev_name}: median ms per batch (ms per item)", file=err)
    print(f"{'model':22s} {'mode':14s}" + "".join(f" {'batch ' + str(b):>20s}" for b in batches), file=err)
    for k in order:
        print(f"{k[0]:22s} {k[1]:14s}" + "".join(f" {cells[k].get(b, '-'):>20s}" for b in batches), file=err)
    notes = sorted({(r["model"], r["mode"], r["batch"], r["note"]) for r in rows if r.get("note")})
    for mo, md, b, n in notes:
        print(f"  {mo} {md} batch {b}: {n}", file=err)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", required=True, help="replica .onnx files or folders of them")
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 8, 32])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (child process per model)")
    ap.add_argument("--compile-mode", default="max-autotune-no-cudagraphs",
                    help="torch.compile mode: max-autotune-no-cudagraphs (default), reduce-overhead, default, ...")
    ap.add_argument("--compile-timeout", type=float, default=300, help="seconds per model for compile + timing")
    ap.add_argument("--check", action="store_true", help="compare against onnxruntime CPU fp32 at batch 1")
    ap.add_argument("--force-batch", action="store_true", help="run batch > 1 on models whose batch is fixed at 1")
    ap.add_argument("--size", nargs=2, type=int, metavar=("H", "W"), help="value of symbolic height/width dims")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--list-ops", action="store_true", help="list each model's ops and whether they are handled")
    ap.add_argument("--compile-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    paths = model_paths(args.models)
    if args.list_ops:
        return list_ops(paths)
    if torch is None:
        sys.exit("torch is not installed (only --list-ops works without it)")
    torch.backends.cudnn.benchmark = True
    dev_name = torch.cuda.get_device_name(torch.device(args.device))
    if args.compile_child:
        return compile_child(args, dev_name)
    rows, args.check_failed = [], False

    def emit(r, table=True):
        print(json.dumps(r), flush=True)
        if table:
            rows.append(r)

    for p in paths:
        try:
            bench_model(p, args, emit, dev_name)
        except Exception as e:  # noqa: BLE001  (a model that cannot be built: say why, go on)
            print(f"[error] {stem(p)}: {why(e)}", file=sys.stderr)
            for mo in ["eager_fp16_cl", "cudagraph"] + (["compiled"] * args.compile):
                for b in args.batches:
                    emit(row(stem(p), mo, b, note=why(e)))
            torch.cuda.empty_cache()
    print_table(rows, args.batches, dev_name)
    return 1 if args.check_failed else 0


if __name__ == "__main__":
    sys.exit(main())
