#!/usr/bin/python3
"""Tiny models with a FaceFusion face enhancer's I/O contract, for tests that check what fswap
feeds the model and does with its output (tests/unit/test_face_enhancer.cc):

  identity_512.onnx      input [1,3,512,512] -> output = input
  weight_probe_512.onnx  input [1,3,512,512], weight float64 [1] -> output = input * weight

  /usr/bin/python3 tests/support/make_enhancer_probes.py OUT_DIR
"""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "replicas"))
from onnx_builder import Builder  # noqa: E402

IMAGE = (1, 3, 512, 512)


def identity(out):
    b = Builder("identity_512", 0)
    x = b.input("input", IMAGE)
    b.rename_output(b.node("Identity", [x], IMAGE), "output")
    b.output("output", list(IMAGE))
    b.finish(os.path.join(out, "identity_512.onnx"))


def weight_probe(out):
    b = Builder("weight_probe_512", 0)
    x = b.input("input", IMAGE)
    w = b.input("weight", (1,), dtype=11)  # float64, as codeformer's
    w32 = b.node("Cast", [w], (1,), to=1)
    b.rename_output(b.mul(x, w32), "output")
    b.output("output", list(IMAGE))
    b.finish(os.path.join(out, "weight_probe_512.onnx"))


if __name__ == "__main__":
    os.makedirs(sys.argv[1], exist_ok=True)
    identity(sys.argv[1])
    weight_probe(sys.argv[1])
