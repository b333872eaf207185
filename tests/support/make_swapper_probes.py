#!/usr/bin/python3
"""Tiny models with the I/O contracts of FaceFusion's swappers, embedding converters, occluder, face
parser and landmarkers, for tests that check what fswap feeds them and does with their outputs
(tests/unit/test_facefusion_swapper_models.cc, test_facefusion_masks.cc,
test_facefusion_landmarkers.cc). Each computes a fixed formula the tests recompute:

  swap_probe_S.onnx         source [1,512], target [1,3,S,S] -> output = 0.75*target + source[:, 0:3]
                            (S = 128, 256, 512; static batch 1, as FaceFusion's files)
  swap_probe_batch_256.onnx the same with a dynamic batch N on source, target and output
  swap_probe_b3_256.onnx    the same with a static batch of 3
  swap_image_probe_256.onnx source [1,3,112,112], target [1,3,256,256]
                            -> output = 0.75*target + mean over H,W of source
  converter_probe.onnx      input [1,512] -> output = 2*input + 1
  xseg_K.onnx (K = 1, 2, 3) input [1,256,256,3] (NHWC) -> output [1,256,256,1] = a_K*(c0 - c2) + 0.5,
                            a = 1.6, -1.2, 0.8 (occluder probes under the occluders' names)
  bisenet_resnet_34.onnx    input [1,3,512,512] -> output [1,19,512,512], class k = w_k * input[k % 3] + b_k,
                            w_k = (k - 9) / 9, b_k = 0.1 * (k % 5)
  fan_68_5.onnx             input [1,5,2] -> output [1,68,2], point k = input[k % 5] * (1 + k / 100)
  peppa_wutz.onnx           input [1,3,256,256] -> output [1,204] = mean(input) * (1 + i / 50) + i / 10
  2dfan4.onnx               input [1,3,256,256] -> points [1,68,3] = the same 204 values,
                            heatmaps [1,68,4,4] with per-point maximum 0.5 + k / 200
  nan/2dfan4.onnx           the same contract, every output NaN (an fp16 overflow's result)
  fairface.onnx             input [1,3,224,224] -> race_id = argmax(m0, m1, m2, 0, 0, 0, 0),
                            gender_id = argmax(m1, m2), age_id = argmax(m2, m0, m1, 0.1 x 6), int64 [1],
                            m = the input's per-channel means

  /usr/bin/python3 tests/support/make_swapper_probes.py OUT_DIR
"""
import os
import sys

import numpy as np

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "replicas"))
from onnx_builder import Builder  # noqa: E402


def swap_probe(out, size, dynamic, fixed=1):
    name = f"swap_probe_batch_{size}" if dynamic else f"swap_probe_b{fixed}_{size}" if fixed > 1 else f"swap_probe_{size}"
    b = Builder(name, 0)
    n = "N" if dynamic else fixed
    s = b.input("source", (1, 512), dims=[n, 512])
    t = b.input("target", (1, 3, size, size), dims=[n, 3, size, size])
    head = b.node("Slice", [s, b.i64([0]), b.i64([3]), b.i64([1])], (1, 3))
    head = b.reshape(head, [-1, 3, 1, 1], (1, 3, 1, 1))
    b.rename_output(b.add(b.mul(t, 0.75), head), "output")
    b.output("output", [n, 3, size, size])
    b.finish(os.path.join(out, name + ".onnx"))


def swap_image_probe(out):
    b = Builder("swap_image_probe_256", 0)
    s = b.input("source", (1, 3, 112, 112))
    t = b.input("target", (1, 3, 256, 256))
    m = b.node("ReduceMean", [s], (1, 3, 1, 1), axes=[2, 3], keepdims=1)
    b.rename_output(b.add(b.mul(t, 0.75), m), "output")
    b.output("output", [1, 3, 256, 256])
    b.finish(os.path.join(out, "swap_image_probe_256.onnx"))


def converter_probe(out):
    b = Builder("converter_probe", 0)
    x = b.input("input", (1, 512))
    b.rename_output(b.add(b.mul(x, 2.0), 1.0), "output")
    b.output("output", [1, 512])
    b.finish(os.path.join(out, "converter_probe.onnx"))


OCCLUDER_SLOPES = {1: 1.6, 2: -1.2, 3: 0.8}


def occluder_probe(out, k):
    b = Builder(f"xseg_{k}", 0)
    x = b.input("input", (1, 256, 256, 3))
    c0 = b.node("Slice", [x, b.i64([0]), b.i64([1]), b.i64([3])], (1, 256, 256, 1))
    c2 = b.node("Slice", [x, b.i64([2]), b.i64([3]), b.i64([3])], (1, 256, 256, 1))
    b.rename_output(b.add(b.mul(b.sub(c0, c2), OCCLUDER_SLOPES[k]), 0.5), "output")
    b.output("output", [1, 256, 256, 1])
    b.finish(os.path.join(out, f"xseg_{k}.onnx"))


def parser_probe(out):
    b = Builder("bisenet_resnet_34", 0)
    x = b.input("input", (1, 3, 512, 512))
    w = np.zeros((19, 3, 1, 1), np.float32)
    for k in range(19):
        w[k, k % 3, 0, 0] = (k - 9) / 9
    bias = np.array([0.1 * (k % 5) for k in range(19)], np.float32)
    y = b.conv(x, 19, 1, p=0, w=b.const(w), bias=False)
    y = b.add(y, b.const(bias.reshape(1, 19, 1, 1)))
    b.rename_output(y, "output")
    b.output("output", [1, 19, 512, 512])
    b.finish(os.path.join(out, "bisenet_resnet_34.onnx"))


def fan_68_5_probe(out):
    b = Builder("fan_68_5", 0)
    x = b.input("input", (1, 5, 2))
    g = b.gather(x, [k % 5 for k in range(68)], axis=1)  # [1, 68, 2]
    scale = np.array([1 + k / 100 for k in range(68)], np.float32).reshape(1, 68, 1)
    b.rename_output(b.mul(g, b.const(scale)), "output")
    b.output("output", [1, 68, 2])
    b.finish(os.path.join(out, "fan_68_5.onnx"))


def mean_pattern(b, x):
    m = b.node("ReduceMean", [x], (1, 1, 1, 1), axes=[1, 2, 3], keepdims=1)
    m = b.reshape(m, [1, 1], (1, 1))
    w = np.array([1 + i / 50 for i in range(204)], np.float32).reshape(1, 204)
    c = np.array([i / 10 for i in range(204)], np.float32).reshape(1, 204)
    return b.add(b.mul(m, b.const(w)), b.const(c))


def peppa_probe(out):
    b = Builder("peppa_wutz", 0)
    x = b.input("input", (1, 3, 256, 256))
    b.rename_output(mean_pattern(b, x), "output")
    b.output("output", [1, 204])
    b.finish(os.path.join(out, "peppa_wutz.onnx"))


def fan2d_probe(out, poison=1.0):
    b = Builder("2dfan4", 0)
    x = b.input("input", (1, 3, 256, 256))
    pts = b.reshape(b.mul(mean_pattern(b, x), poison), [1, 68, 3], (1, 68, 3))
    heat = np.zeros((1, 68, 4, 4), np.float32)
    for k in range(68):
        heat[0, k] = np.linspace(0, 0.5 + k / 200, 16).reshape(4, 4)
    zero = b.mul(b.node("ReduceMean", [x], (1, 1, 1, 1), axes=[1, 2, 3], keepdims=1), poison - 1.0)
    b.rename_output(pts, "landmarks")
    b.rename_output(b.add(b.const(heat), zero), "heatmaps")
    b.output("landmarks", [1, 68, 3])
    b.output("heatmaps", [1, 68, 4, 4])
    b.finish(os.path.join(out, "2dfan4.onnx"))


def fairface_probe(out):
    b = Builder("fairface", 0)
    x = b.input("input", (1, 3, 224, 224))
    m = b.reshape(b.node("ReduceMean", [x], (1, 3, 1, 1), axes=[2, 3], keepdims=1), [1, 3], (1, 3))
    m0, m1, m2 = b.split(m, [1, 1, 1], axis=1)
    zeros = b.const(np.zeros((1, 4), np.float32))
    race = b.concat([m0, m1, m2, zeros])
    gender = b.concat([m1, m2])
    age = b.concat([m2, m0, m1, b.const(np.full((1, 6), 0.1, np.float32))])
    for t, name in ((race, "race_id"), (gender, "gender_id"), (age, "age_id")):
        b.rename_output(b.node("ArgMax", [t], (1,), axis=1, keepdims=0), name)
        b.output(name, [1], dtype=7)
    b.finish(os.path.join(out, "fairface.onnx"))


if __name__ == "__main__":
    d = sys.argv[1]
    os.makedirs(d, exist_ok=True)
    for size in (128, 256, 512):
        swap_probe(d, size, False)
    swap_probe(d, 256, True)
    swap_probe(d, 256, False, fixed=3)
    swap_image_probe(d)
    converter_probe(d)
    for k in OCCLUDER_SLOPES:
        occluder_probe(d, k)
    parser_probe(d)
    fan_68_5_probe(d)
    peppa_probe(d)
    fan2d_probe(d)
    os.makedirs(os.path.join(d, "nan"), exist_ok=True)
    fan2d_probe(os.path.join(d, "nan"), poison=float("nan"))
    fairface_probe(d)
