#!/usr/bin/python3
"""Tiny models with a FaceFusion frame enhancer's I/O contract (any tile size: the spatial
dimensions are dynamic), for tests that check what fswap feeds the model and does with its
output (tests/unit/test_frame_enhancer.cc, tests/integration/test_frame_enhancer_cli.cc):

  nearest_x2.onnx / nearest_x4.onnx / nearest_x8.onnx
                       input [1,3,h,w] -> output [1,3,s*h,s*w], each value repeated s x s
  contrast_x4.onnx     input [1,3,h,w] -> nearest x4 of 1.5*x - 0.25 (values leave 0..1: the clip)
  one_channel_x4.onnx  input [1,1,h,w] -> nearest x4 (a wrong contract)
  image_named_x4.onnx  nearest x4 with its input named `image` (FaceFusion feeds `input`)

  /usr/bin/python3 tests/support/make_frame_enhancer_probes.py OUT_DIR
"""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "replicas"))
from onnx_builder import Builder  # noqa: E402


def probe(out, name, scale, channels=3, contrast=False, input_name="input"):
    b = Builder(name, 0)
    x = b.input(input_name, (1, channels, 16, 16), dims=[1, channels, "height", "width"])
    if contrast:
        x = b.add(b.mul(x, 1.5), -0.25)
    b.rename_output(b.resize(x, scale, "nearest"), "output")
    b.output("output", [1, channels, f"height_x{scale}", f"width_x{scale}"])
    b.finish(os.path.join(out, name + ".onnx"))


if __name__ == "__main__":
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for s in (2, 4, 8):
        probe(out, f"nearest_x{s}", s)
    probe(out, "contrast_x4", 4, contrast=True)
    probe(out, "one_channel_x4", 4, channels=1)
    probe(out, "image_named_x4", 4, input_name="image")
