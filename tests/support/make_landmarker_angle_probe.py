#!/usr/bin/python3
"""A 2dfan4-shaped probe that finds the brightest spot of its crop, for the landmarker's face-angle
test (tests/unit/test_facefusion_landmarker_angle.cc): whichever way the crop is turned, its
points must come back onto the spot in the frame.

  2dfan4.onnx  input [1,3,256,256] (BGR/255) -> landmarks [1,68,3], every point (x, y, 1) = the
               soft-argmax (temperature 200) of the channel mean average-pooled 4x4 to 64x64, at
               cell centres (j + 0.375 in 64-cell units, i.e. crop pixel 4j + 1.5 after FaceFusion's
               /64*256); heatmaps [1,68,64,64] = that pooled mean for every point

  /usr/bin/python3 tests/support/make_landmarker_angle_probe.py OUT_DIR
"""
import os
import sys

import numpy as np

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "replicas"))
from onnx_builder import Builder  # noqa: E402


def spot_probe(out):
    b = Builder("2dfan4", 0)
    x = b.input("input", (1, 3, 256, 256))
    grey = b.node("ReduceMean", [x], (1, 1, 256, 256), axes=[1], keepdims=1)
    pooled = b.avgpool(grey, 4, 4)  # 1,1,64,64
    flat = b.reshape(pooled, [1, 4096], (1, 4096))
    prob = b.softmax(b.mul(flat, 200.0), axis=-1)
    gy, gx = np.meshgrid(np.arange(64), np.arange(64), indexing="ij")
    grid = np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32) + np.float32(0.375)
    xy = b.matmul(prob, b.const(grid))  # 1,2
    xy1 = b.concat([xy, b.const(np.ones((1, 1), np.float32))], axis=1)  # 1,3
    points = b.mul(b.reshape(xy1, [1, 1, 3], (1, 1, 3)), b.const(np.ones((1, 68, 3), np.float32)))
    heat = b.mul(pooled, b.const(np.ones((1, 68, 1, 1), np.float32)))
    b.rename_output(points, "landmarks")
    b.rename_output(heat, "heatmaps")
    b.output("landmarks", [1, 68, 3])
    b.output("heatmaps", [1, 68, 64, 64])
    b.finish(os.path.join(out, "2dfan4.onnx"))


if __name__ == "__main__":
    os.makedirs(sys.argv[1], exist_ok=True)
    spot_probe(sys.argv[1])
