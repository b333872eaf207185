"""Small ONNX graph builder used by the replica generator.

Tracks concrete shapes at a reference size (for the FLOP walk), counts parameters, and writes
initializers straight into the ModelProto so large models hold one copy of their weights.
With materialize=False no weights are drawn: parameter and FLOP counting only (fast).
"""
import math

import numpy as np
import onnx
from onnx import TensorProto, helper

F32 = TensorProto.FLOAT
NP2ONNX = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE,
           np.dtype(np.int64): TensorProto.INT64, np.dtype(np.int32): TensorProto.INT32,
           np.dtype(np.bool_): TensorProto.BOOL, np.dtype(np.uint8): TensorProto.UINT8,
           np.dtype(np.int8): TensorProto.INT8, np.dtype(np.float16): TensorProto.FLOAT16}


def bshape(a, b):
    a, b = list(a), list(b)
    n = max(len(a), len(b))
    a = [1] * (n - len(a)) + a
    b = [1] * (n - len(b)) + b
    return tuple(max(x, y) for x, y in zip(a, b))


class Builder:
    def __init__(self, name, seed, opset=17, materialize=True):
        self.rng = np.random.default_rng(seed)
        self.model = onnx.ModelProto()
        self.model.ir_version = 8
        self.model.producer_name = "fswap-replicas"
        op = self.model.opset_import.add()
        op.domain = ""
        op.version = opset
        self.g = self.model.graph
        self.g.name = name
        self.materialize = materialize
        self.shape = {}
        self.n = 0
        self.params = 0
        self.macs = 0

    # ---- naming, inputs, outputs, initializers
    def uid(self, prefix):
        self.n += 1
        return f"{prefix}_{self.n}"

    def input(self, name, shape, dims=None, dtype=F32):
        """shape: concrete reference shape; dims: declared dims (ints or dim_param strings)."""
        self.g.input.append(helper.make_tensor_value_info(name, dtype, list(dims or shape)))
        self.shape[name] = tuple(shape)
        return name

    def output(self, name, dims, dtype=F32):
        self.g.output.append(helper.make_tensor_value_info(name, dtype, list(dims)))

    def _add_init(self, name, arr):
        t = self.g.initializer.add()
        t.name = name
        t.data_type = NP2ONNX[arr.dtype]
        t.dims.extend(arr.shape)
        t.raw_data = np.ascontiguousarray(arr).tobytes()

    def weight(self, shape, std=None, fan_in=None, mean=0.0, name=None, gain=2.0):
        """A learned float32 tensor (counted as a parameter). He init by default."""
        name = name or self.uid("w")
        size = int(np.prod(shape))
        self.params += size
        self.shape[name] = tuple(shape)
        if self.materialize:
            if std is None:
                fi = fan_in or (int(np.prod(shape[1:])) if len(shape) > 1 else 1)
                std = math.sqrt(gain / fi)
            arr = self.rng.standard_normal(size, dtype=np.float32).reshape(shape)
            if std != 1.0:
                arr *= np.float32(std)
            if mean:
                arr += np.float32(mean)
            self._add_init(name, arr)
            del arr
        return name

    def const(self, arr, name=None):
        """A constant (not counted as a parameter): shapes, axes, scales, fixed kernels."""
        arr = np.asarray(arr)
        name = name or self.uid("c")
        self.shape[name] = tuple(arr.shape)
        if self.materialize or arr.size < 4096:
            self._add_init(name, arr)
        return name

    def i64(self, vals):
        return self.const(np.array(vals, dtype=np.int64))

    def f32(self, vals):
        return self.const(np.array(vals, dtype=np.float32))

    # ---- generic node
    def node(self, op, inputs, out_shape, n_out=1, out_shapes=None, **attrs):
        outs = [self.uid(op.lower()) for _ in range(n_out)]
        self.g.node.append(helper.make_node(op, list(inputs), outs, name=outs[0], **attrs))
        if out_shapes is None:
            out_shapes = [out_shape] * n_out
        for o, s in zip(outs, out_shapes):
            self.shape[o] = tuple(s)
        return outs[0] if n_out == 1 else outs

    def rename_output(self, tensor, name):
        """Make the producer of `tensor` write `name` instead (for graph outputs)."""
        for nd in self.g.node:
            for i, o in enumerate(nd.output):
                if o == tensor:
                    nd.output[i] = name
            for i, x in enumerate(nd.input):
                if x == tensor:
                    nd.input[i] = name
        self.shape[name] = self.shape[tensor]
        return name

    # ---- layers
    def conv(self, x, cout, k, s=1, p=None, g=1, d=1, bias=True, w=None, pads=None, gain=2.0, bias_mean=0.0):
        n, c, h, wd = self.shape[x]
        kh, kw = (k, k) if isinstance(k, int) else k
        if pads is None:
            if p is None:
                p = (d * (kh - 1)) // 2
            pads = [p, p, p, p] if isinstance(p, int) else [p[0], p[1], p[0], p[1]]
        if w is None:
            w = self.weight((cout, c // g, kh, kw), gain=gain)
        ins = [x, w]
        if bias:
            ins.append(self.weight((cout,), std=0.01, mean=bias_mean))
        ho = (h + pads[0] + pads[2] - d * (kh - 1) - 1) // s + 1
        wo = (wd + pads[1] + pads[3] - d * (kw - 1) - 1) // s + 1
        self.macs += n * cout * ho * wo * (c // g) * kh * kw
        return self.node("Conv", ins, (n, cout, ho, wo), kernel_shape=[kh, kw], strides=[s, s],
                         pads=list(pads), group=g, dilations=[d, d])

    def convT(self, x, cout, k, s=2, p=1, op=1, bias=True):
        n, c, h, wd = self.shape[x]
        w = self.weight((c, cout, k, k), fan_in=c * k * k // (s * s))
        ins = [x, w] + ([self.weight((cout,), std=0.01)] if bias else [])
        ho = (h - 1) * s - 2 * p + k + op
        wo = (wd - 1) * s - 2 * p + k + op
        self.macs += n * c * h * wd * cout * k * k
        return self.node("ConvTranspose", ins, (n, cout, ho, wo), kernel_shape=[k, k], strides=[s, s],
                         pads=[p, p, p, p], output_padding=[op, op])

    def bn(self, x, eps=1e-5):
        c = self.shape[x][1]
        sc = self.weight((c,), std=0.05, mean=1.0)
        b = self.weight((c,), std=0.05)
        m = self.const(self.rng.standard_normal(c).astype(np.float32) * 0.05 if self.materialize else np.zeros(c, np.float32))
        v = self.const(np.ones(c, np.float32))
        return self.node("BatchNormalization", [x, sc, b, m, v], self.shape[x], epsilon=eps)

    def inorm(self, x, eps=1e-5, affine=False):
        c = self.shape[x][1]
        if affine:
            sc, b = self.weight((c,), std=0.05, mean=1.0), self.weight((c,), std=0.05)
        else:
            sc, b = self.f32(np.ones(c)), self.f32(np.zeros(c))
        return self.node("InstanceNormalization", [x, sc, b], self.shape[x], epsilon=eps)

    def gnorm(self, x, groups=32, eps=1e-6):
        """GroupNorm the way opset<=17 exports write it: Reshape, InstanceNorm, Reshape, Mul, Add."""
        n, c, h, w = self.shape[x]
        r = self.node("Reshape", [x, self.i64([0, groups, -1])], (n, groups, c // groups * h * w))
        r = self.node("InstanceNormalization", [r, self.f32(np.ones(groups)), self.f32(np.zeros(groups))],
                      self.shape[r], epsilon=eps)
        r = self.node("Reshape", [r, self.i64([0, c, h, w] if True else [])], (n, c, h, w))
        r = self.mul(r, self.weight((c, 1, 1), std=0.05, mean=1.0))
        return self.add(r, self.weight((c, 1, 1), std=0.05))

    def gnorm_dyn(self, x, groups=32, eps=1e-6):
        """GroupNorm for dynamic spatial dims: reshape back to the input's runtime shape."""
        n, c, h, w = self.shape[x]
        r = self.node("Reshape", [x, self.i64([0, groups, -1])], (n, groups, c // groups * h * w))
        r = self.node("InstanceNormalization", [r, self.f32(np.ones(groups)), self.f32(np.zeros(groups))],
                      self.shape[r], epsilon=eps)
        shp = self.node("Shape", [x], (4,))
        r = self.node("Reshape", [r, shp], (n, c, h, w))
        r = self.mul(r, self.weight((c, 1, 1), std=0.05, mean=1.0))
        return self.add(r, self.weight((c, 1, 1), std=0.05))

    def lnorm(self, x, eps=1e-5):
        c = self.shape[x][-1]
        return self.node("LayerNormalization", [x, self.weight((c,), std=0.05, mean=1.0), self.weight((c,), std=0.05)],
                         self.shape[x], axis=-1, epsilon=eps)

    def act(self, x, kind, alpha=0.2):
        s = self.shape[x]
        if kind == "relu":
            return self.node("Relu", [x], s)
        if kind == "lrelu":
            return self.node("LeakyRelu", [x], s, alpha=alpha)
        if kind == "prelu":
            slope = self.weight((s[1], 1, 1), std=0.02, mean=0.25)
            return self.node("PRelu", [x, slope], s)
        if kind == "silu":
            return self.node("Mul", [x, self.node("Sigmoid", [x], s)], s)
        if kind == "sigmoid":
            return self.node("Sigmoid", [x], s)
        if kind == "tanh":
            return self.node("Tanh", [x], s)
        if kind == "swish":
            return self.act(x, "silu")
        raise ValueError(kind)

    def _bin(self, op, a, b):
        if isinstance(b, (int, float)):
            b = self.f32(b)
        return self.node(op, [a, b], bshape(self.shape[a], self.shape[b]))

    def add(self, a, b):
        return self._bin("Add", a, b)

    def sub(self, a, b):
        return self._bin("Sub", a, b)

    def mul(self, a, b):
        return self._bin("Mul", a, b)

    def div(self, a, b):
        return self._bin("Div", a, b)

    def pad(self, x, p, mode="reflect"):
        n, c, h, w = self.shape[x]
        # p: int, or (top, left, bottom, right)
        pads = [0, 0, p, p, 0, 0, p, p] if isinstance(p, int) else [0, 0, p[0], p[1], 0, 0, p[2], p[3]]
        return self.node("Pad", [x, self.i64(pads)], (n, c, h + pads[2] + pads[6], w + pads[3] + pads[7]), mode=mode)

    def resize(self, x, scale, mode="nearest", ctm=None):
        n, c, h, w = self.shape[x]
        attrs = {"mode": mode}
        if mode == "nearest":
            attrs.update(coordinate_transformation_mode=ctm or "asymmetric", nearest_mode="floor")
        else:
            attrs.update(coordinate_transformation_mode=ctm or "pytorch_half_pixel")
        sc = self.f32([1.0, 1.0, scale, scale])
        return self.node("Resize", [x, "", sc], (n, c, int(h * scale), int(w * scale)), **attrs)

    def resize_to(self, x, hw, mode="nearest", ctm=None):
        n, c, h, w = self.shape[x]
        attrs = {"mode": mode}
        if mode == "nearest":
            attrs.update(coordinate_transformation_mode=ctm or "asymmetric", nearest_mode="floor")
        else:
            attrs.update(coordinate_transformation_mode=ctm or "pytorch_half_pixel")
        return self.node("Resize", [x, "", "", self.i64([n, c, hw[0], hw[1]])], (n, c, hw[0], hw[1]), **attrs)

    def maxpool(self, x, k, s, p, ceil=0):
        n, c, h, w = self.shape[x]
        f = math.ceil if ceil else math.floor
        ho, wo = int(f((h + 2 * p - k) / s)) + 1, int(f((w + 2 * p - k) / s)) + 1
        return self.node("MaxPool", [x], (n, c, ho, wo), kernel_shape=[k, k], strides=[s, s], pads=[p] * 4, ceil_mode=ceil)

    def avgpool(self, x, k, s, p=0, ceil=0):
        n, c, h, w = self.shape[x]
        f = math.ceil if ceil else math.floor
        ho, wo = int(f((h + 2 * p - k) / s)) + 1, int(f((w + 2 * p - k) / s)) + 1
        return self.node("AveragePool", [x], (n, c, ho, wo), kernel_shape=[k, k], strides=[s, s], pads=[p] * 4,
                         ceil_mode=ceil, count_include_pad=0)

    def gap(self, x):
        n, c = self.shape[x][:2]
        return self.node("GlobalAveragePool", [x], (n, c, 1, 1))

    def gemm(self, x, nout, bias=True, std=None):
        m, k = self.shape[x]
        w = self.weight((nout, k), std=std, fan_in=k)
        ins = [x, w] + ([self.weight((nout,), std=0.01)] if bias else [])
        self.macs += m * nout * k
        return self.node("Gemm", ins, (m, nout), transB=1)

    def matmul(self, a, b):
        sa, sb = self.shape[a], self.shape[b]
        batch = bshape(sa[:-2], sb[:-2]) if len(sa) > 2 or len(sb) > 2 else ()
        out = tuple(batch) + (sa[-2], sb[-1])
        self.macs += int(np.prod(batch or (1,))) * sa[-2] * sa[-1] * sb[-1]
        return self.node("MatMul", [a, b], out)

    def linear(self, x, nout, bias=True):
        """MatMul + Add against a [K, N] weight (torch Linear on >2-D input)."""
        k = self.shape[x][-1]
        y = self.matmul(x, self.weight((k, nout), fan_in=k, gain=1.0))
        return self.add(y, self.weight((nout,), std=0.01)) if bias else y

    def reshape(self, x, shape, out_shape):
        return self.node("Reshape", [x, self.i64(shape)], tuple(out_shape))

    def transpose(self, x, perm):
        s = self.shape[x]
        return self.node("Transpose", [x], tuple(s[p] for p in perm), perm=list(perm))

    def concat(self, xs, axis=1):
        s = list(self.shape[xs[0]])
        s[axis] = sum(self.shape[t][axis] for t in xs)
        return self.node("Concat", xs, tuple(s), axis=axis)

    def split(self, x, sizes, axis=1):
        s = list(self.shape[x])
        shapes = []
        for z in sizes:
            t = list(s)
            t[axis] = z
            shapes.append(tuple(t))
        return self.node("Split", [x, self.i64(sizes)], None, n_out=len(sizes), out_shapes=shapes, axis=axis)

    def flatten(self, x):
        s = self.shape[x]
        return self.node("Flatten", [x], (s[0], int(np.prod(s[1:]))), axis=1)

    def softmax(self, x, axis=-1):
        return self.node("Softmax", [x], self.shape[x], axis=axis)

    def gather(self, x, idx, axis):
        s = list(self.shape[x])
        del s[axis]
        return self.node("Gather", [x, self.const(np.array(idx, dtype=np.int64))], tuple(s), axis=axis)

    def finish(self, path, external=False):
        m = self.model
        if external:
            import os
            loc = os.path.basename(path) + ".data"
            onnx.save_model(m, path, save_as_external_data=True, all_tensors_to_one_file=True,
                            location=loc, size_threshold=1024)
        else:
            onnx.save_model(m, path)
