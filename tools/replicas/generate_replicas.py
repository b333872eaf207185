#!/usr/bin/python3
"""Write replicas of FaceFusion's models: the real tensor names, shapes and the published layer
structure, with random weights from a fixed seed. See docs/REPLICAS.md.

  /usr/bin/python3 tools/replicas/generate_replicas.py --out /tmp/replicas [--only NAME ...]
  /usr/bin/python3 tools/replicas/generate_replicas.py --list
  /usr/bin/python3 tools/replicas/generate_replicas.py --print-stats [--out DIR]
"""
import argparse
import math
import os
import sys
import time
import zlib

import numpy as np

sys.dont_write_bytecode = True  # keep __pycache__ out of the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_builder import Builder  # noqa: E402

SEED = 20240601


# ------------------------------------------------------------------------------------------------
# inswapper_128: ReSwapper's StyleTransferModel_128 layout
def adain(b, x, style_src, c):
    """Instance norm, then x*scale + shift with [scale, shift] = Linear(512 -> 2c)(source)."""
    x = b.inorm(x)
    st = b.gemm(style_src, 2 * c)
    st = b.reshape(st, [-1, 2 * c, 1, 1], (b.shape[st][0], 2 * c, 1, 1))
    sc, sh = b.split(st, [c, c], axis=1)
    return b.add(b.mul(x, sc), sh)


def inswapper_128(b, hw=None):
    t = b.input("target", (1, 3, 128, 128))
    s = b.input("source", (1, 512))
    x = b.act(b.conv(b.pad(t, 3), 128, 7, p=0), "lrelu")
    x = b.act(b.conv(x, 256, 3), "lrelu")
    x = b.act(b.conv(x, 512, 3, s=2), "lrelu")
    x = b.act(b.conv(x, 1024, 3, s=2), "lrelu")
    for _ in range(6):
        y = adain(b, b.conv(b.pad(x, 1), 1024, 3, p=0), s, 1024)
        y = b.act(y, "relu")
        y = adain(b, b.conv(b.pad(y, 1), 1024, 3, p=0), s, 1024)
        x = b.add(x, y)
    x = b.act(b.conv(b.resize(x, 2, "linear"), 512, 3), "lrelu")
    x = b.act(b.conv(b.resize(x, 2, "linear"), 256, 3), "lrelu")
    x = b.act(b.conv(x, 128, 3), "lrelu")
    x = b.act(b.conv(b.pad(x, 3), 3, 7, p=0), "tanh")
    x = b.mul(b.add(x, 1.0), 0.5)
    b.rename_output(x, "output")
    b.output("output", [1, 3, 128, 128])
    # FaceFusion reads the LAST initializer as the 512x512 emap: it must stay last.
    b.weight((512, 512), std=1.0 / math.sqrt(512), name="emap")


# ------------------------------------------------------------------------------------------------
# hyperswap_1a_256: architecture unpublished; an AdaIN encoder/decoder at 256 with a mask head
def hyperswap_1a_256(b, hw=None):
    s = b.input("source", (1, 512))
    t = b.input("target", (1, 3, 256, 256))
    x = b.act(b.conv(b.pad(t, 3), 64, 7, p=0), "lrelu")
    x = b.act(b.conv(x, 128, 3, s=2), "lrelu")
    x = b.act(b.conv(x, 256, 3, s=2), "lrelu")
    x = b.act(b.conv(x, 512, 3, s=2), "lrelu")
    for _ in range(6):
        y = b.act(adain(b, b.conv(b.pad(x, 1), 512, 3, p=0), s, 512), "relu")
        y = adain(b, b.conv(b.pad(y, 1), 512, 3, p=0), s, 512)
        x = b.add(x, y)
    x = b.act(b.conv(b.resize(x, 2, "linear"), 256, 3), "lrelu")
    x = b.act(b.conv(b.resize(x, 2, "linear"), 128, 3), "lrelu")
    x = b.act(b.conv(b.resize(x, 2, "linear"), 64, 3), "lrelu")
    o = b.act(b.conv(b.pad(x, 3), 3, 7, p=0), "tanh")
    m = b.act(b.conv(x, 1, 3), "sigmoid")
    b.rename_output(o, "output")
    b.rename_output(m, "mask")
    b.output("output", [1, 3, 256, 256])
    b.output("mask", [1, 1, 256, 256])


# ------------------------------------------------------------------------------------------------
# simswap_256: SimSwap Generator_Adain_Upsample (ngf 64, 9 AdaIN blocks at 512 channels);
# BatchNorm after convs is folded into the conv bias as an eval-mode export does.
def simswap_256(b, hw=None):
    t = b.input("target", (1, 3, 256, 256))
    s = b.input("source", (1, 512))
    x = b.act(b.conv(b.pad(t, 3), 64, 7, p=0), "relu")
    x = b.act(b.conv(x, 128, 3, s=2), "relu")
    x = b.act(b.conv(x, 256, 3, s=2), "relu")
    x = b.act(b.conv(x, 512, 3, s=2), "relu")
    for _ in range(9):
        y = b.act(adain(b, b.conv(b.pad(x, 1), 512, 3, p=0), s, 512), "relu")
        y = adain(b, b.conv(b.pad(y, 1), 512, 3, p=0), s, 512)
        x = b.add(x, y)
    for c in (256, 128, 64):
        x = b.act(b.conv(b.resize(x, 2, "linear"), c, 3), "relu")
    x = b.act(b.conv(b.pad(x, 3), 3, 7, p=0), "tanh")
    x = b.mul(b.add(x, 1.0), 0.5)
    b.rename_output(x, "output")
    b.output("output", [1, 3, 256, 256])


# ------------------------------------------------------------------------------------------------
# arcface_w600k_r50: insightface iresnet50 (IBasicBlock, layers 3-4-14-3), dynamic batch
# The residual branches' last convs are drawn with gain 0.1: without trained normalisation each
# identity shortcut doubled the variance, and the activations reached 2e6, past float16.
ARCFACE_BRANCH_GAIN = 0.1


def arcface_w600k_r50(b, hw=None):
    x = b.input("input", (1, 3, 112, 112), dims=["batch", 3, 112, 112])
    x = b.act(b.conv(x, 64, 3, bias=True), "prelu")
    cin = 64
    for planes, blocks in ((64, 3), (128, 4), (256, 14), (512, 3)):
        for i in range(blocks):
            stride = 2 if i == 0 else 1
            y = b.bn(x)
            y = b.act(b.conv(y, planes, 3), "prelu")
            y = b.conv(y, planes, 3, s=stride, gain=ARCFACE_BRANCH_GAIN)
            sc = b.conv(x, planes, 1, s=stride, p=0) if (stride != 1 or cin != planes) else x
            x = b.add(y, sc)
            cin = planes
    x = b.bn(x)
    x = b.flatten(x)
    x = b.gemm(x, 512)
    x = b.bn(x)
    b.rename_output(x, "output")
    b.output("output", ["batch", 512])


# ------------------------------------------------------------------------------------------------
# SCRFD (insightface detection/scrfd): ResNetV1e-style backbone, PAFPN, per-stride heads with kps.
# Without trained normalisation the heads see activations in the thousands; the score heads are
# drawn with a gain that puts their logits near the trained model's few units, where the sigmoid
# is not a step that an fp16 rounding flips.
SCRFD_SCORE_GAIN = 1e-5


def scrfd(b, hw, stage_blocks, planes, base, neck, stacked, feat):
    H, W = hw
    x = b.input("input", (1, 3, H, W), dims=[1, 3, "height", "width"])
    x = b.act(b.conv(x, base // 2, 3, s=2), "relu")
    x = b.act(b.conv(x, base // 2, 3), "relu")
    x = b.act(b.conv(x, base, 3), "relu")
    x = b.maxpool(x, 3, 2, 1)
    cin = base
    feats = []
    for si, (nb, pl) in enumerate(zip(stage_blocks, planes)):
        for i in range(nb):
            stride = 2 if (i == 0 and si > 0) else 1
            y = b.act(b.conv(x, pl, 3, s=stride), "relu")
            y = b.conv(y, pl, 3)
            if stride != 1 or cin != pl:
                sc = b.avgpool(x, stride, stride, ceil=1) if stride != 1 else x
                sc = b.conv(sc, pl, 1, p=0)
            else:
                sc = x
            x = b.act(b.add(y, sc), "relu")
            cin = pl
        if si > 0:
            feats.append(x)
    lat = [b.conv(f, neck, 1, p=0) for f in feats]
    for i in (2, 1):
        lat[i - 1] = b.add(lat[i - 1], b.resize(lat[i], 2, "nearest"))
    inter = [b.conv(l, neck, 3) for l in lat]
    for i in range(2):
        inter[i + 1] = b.add(inter[i + 1], b.conv(inter[i], neck, 3, s=2))
    outs = [inter[0]] + [b.conv(inter[i], neck, 3) for i in (1, 2)]
    scores, boxes, kpss = [], [], []
    for o in outs:
        y = o
        for _ in range(stacked):
            y = b.act(b.conv(y, feat, 3), "relu")
        n, _, h, w = b.shape[y]
        for conv_out, per, lst in ((2, 1, scores), (8, 4, boxes), (20, 10, kpss)):
            z = b.conv(y, conv_out, 3, gain=SCRFD_SCORE_GAIN if per == 1 else 2.0)
            if per == 1:
                z = b.act(z, "sigmoid")
            z = b.transpose(z, [0, 2, 3, 1])
            lst.append(b.reshape(z, [-1, per], (h * w * 2, per)))
    names = [f"score_{s}" for s in (8, 16, 32)] + [f"bbox_{s}" for s in (8, 16, 32)] + [f"kps_{s}" for s in (8, 16, 32)]
    for t, nm, per, st in zip(scores + boxes + kpss, names, [1] * 3 + [4] * 3 + [10] * 3, [8, 16, 32] * 3):
        b.rename_output(t, nm)
        b.output(nm, [f"anchors_{st}", per])


def scrfd_2_5g(b, hw=None):
    scrfd(b, hw or (640, 640), (3, 5, 3, 2), (24, 48, 48, 80), 24, 24, 2, 64)


def retinaface_10g(b, hw=None):
    scrfd(b, hw or (640, 640), (3, 4, 2, 3), (56, 88, 88, 224), 56, 56, 3, 80)


# ------------------------------------------------------------------------------------------------
# yoloface_8n: YOLOv8n (width 0.25, depth 0.33) with a 5-keypoint pose head, decoded in-graph
def yolo_conv(b, x, c, k=1, s=1):
    return b.act(b.conv(x, c, k, s=s), "silu")


def c2f(b, x, c2, n, shortcut):
    c = c2 // 2
    y = yolo_conv(b, x, 2 * c)
    parts = list(b.split(y, [c, c], axis=1))
    cur = parts[-1]
    for _ in range(n):
        z = yolo_conv(b, yolo_conv(b, cur, c, 3), c, 3)
        cur = b.add(cur, z) if shortcut else z
        parts.append(cur)
    return yolo_conv(b, b.concat(parts), c2)


def yoloface_8n(b, hw=None):
    x = b.input("input", (1, 3, 640, 640))
    x = yolo_conv(b, x, 16, 3, 2)
    x = yolo_conv(b, x, 32, 3, 2)
    x = c2f(b, x, 32, 1, True)
    x = yolo_conv(b, x, 64, 3, 2)
    p3 = c2f(b, x, 64, 2, True)
    x = yolo_conv(b, p3, 128, 3, 2)
    p4 = c2f(b, x, 128, 2, True)
    x = yolo_conv(b, p4, 256, 3, 2)
    x = c2f(b, x, 256, 1, True)
    y = yolo_conv(b, x, 128)  # SPPF
    m1 = b.maxpool(y, 5, 1, 2)
    m2 = b.maxpool(m1, 5, 1, 2)
    m3 = b.maxpool(m2, 5, 1, 2)
    p5 = yolo_conv(b, b.concat([y, m1, m2, m3]), 256)
    h4 = c2f(b, b.concat([b.resize(p5, 2), p4]), 128, 1, False)
    o3 = c2f(b, b.concat([b.resize(h4, 2), p3]), 64, 1, False)
    o4 = c2f(b, b.concat([yolo_conv(b, o3, 64, 3, 2), h4]), 128, 1, False)
    o5 = c2f(b, b.concat([yolo_conv(b, o4, 128, 3, 2), p5]), 256, 1, False)
    boxes, clss, kpts, anchors, strides = [], [], [], [], []
    for o, st in ((o3, 8), (o4, 16), (o5, 32)):
        n, c, h, w = b.shape[o]
        def branch(cm, cout):
            z = yolo_conv(b, yolo_conv(b, o, cm, 3), cm, 3)
            z = b.conv(z, cout, 1, p=0)
            return b.reshape(z, [1, cout, -1], (1, cout, h * w))
        boxes.append(branch(64, 64))
        clss.append(branch(64, 1))
        kpts.append(branch(16, 15))
        gy, gx = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
        anchors.append(np.stack([gx.ravel(), gy.ravel()]))
        strides.append(np.full(h * w, st))
    A = sum(a.shape[1] for a in anchors)
    anc = np.concatenate(anchors, 1).astype(np.float32)  # 2 x A
    strd = np.concatenate(strides).astype(np.float32)[None]  # 1 x A
    box = b.concat(boxes, axis=2)
    box = b.reshape(box, [1, 4, 16, A], (1, 4, 16, A))
    box = b.softmax(b.transpose(box, [0, 2, 1, 3]), axis=1)  # 1,16,4,A
    dfl = b.const(np.arange(16, dtype=np.float32).reshape(1, 16, 1, 1))
    box = b.conv(box, 1, 1, p=0, bias=False, w=dfl)  # 1,1,4,A
    box = b.reshape(box, [1, 4, A], (1, 4, A))
    lt, rb = b.split(box, [2, 2], axis=1)
    ancc = b.const(anc[None])
    x1y1 = b.sub(ancc, lt)
    x2y2 = b.add(ancc, rb)
    cxy = b.mul(b.add(x1y1, x2y2), 0.5)
    wh = b.sub(x2y2, x1y1)
    stc = b.const(strd[None])
    box = b.mul(b.concat([cxy, wh], axis=1), stc)
    cls = b.act(b.concat(clss, axis=2), "sigmoid")
    kp = b.reshape(b.concat(kpts, axis=2), [1, 5, 3, A], (1, 5, 3, A))
    kxy, kc = b.split(kp, [2, 1], axis=2)
    kxy = b.mul(b.add(b.mul(kxy, 2.0), b.const((anc - 0.5)[None, None])), b.const(strd[None, None]))
    kp = b.reshape(b.concat([kxy, b.act(kc, "sigmoid")], axis=2), [1, 15, A], (1, 15, A))
    out = b.concat([box, cls, kp], axis=1)
    b.rename_output(out, "output0")
    b.output("output0", [1, 20, A])


# ------------------------------------------------------------------------------------------------
# yunet_2023_mar: libfacedetection.train YuNet-n (OpenCV zoo face_detection_yunet_2023mar): depthwise
# "DP units" (1x1 conv, 3x3 depthwise conv, BN folded, ReLU), max-pool downsampling, a top-down
# FPN with bilinear upsampling and 1-anchor heads with cls/obj (sigmoid), bbox (4) and kps (10).
def yunet_dp(b, x, cout, relu=True, std=None):
    x = b.conv(x, cout, 1, p=0, w=b.weight((cout, b.shape[x][1], 1, 1), std=std) if std else None)
    x = b.conv(x, cout, 3, g=cout)
    return b.act(x, "relu") if relu else x


def yunet_2023_mar(b, hw=None):
    x = b.input("input", (1, 3, 640, 640))
    # The model takes raw 0..255 BGR: the first conv's random weights are drawn 255x smaller so
    # activations stay near unit scale and exp(bbox wh) stays finite.
    x = b.act(b.conv(x, 16, 3, s=2, w=b.weight((16, 3, 3, 3), std=math.sqrt(2 / 27) / 255)), "relu")
    x = yunet_dp(b, x, 16)
    x = b.maxpool(x, 2, 2, 0)  # 160
    x = yunet_dp(b, yunet_dp(b, x, 16), 64)
    x = yunet_dp(b, yunet_dp(b, x, 64), 64)
    feats = []
    for _ in range(3):  # strides 8, 16, 32
        x = b.maxpool(x, 2, 2, 0)
        x = yunet_dp(b, yunet_dp(b, x, 64), 64)
        feats.append(x)
    for i in (2, 1, 0):  # top-down
        feats[i] = yunet_dp(b, feats[i], 64)
        if i > 0:
            feats[i - 1] = b.add(feats[i - 1], b.resize(feats[i], 2, "linear"))
    outs = {}
    for f, st in zip(feats, (8, 16, 32)):
        n, _, h, w = b.shape[f]
        for part, c in (("cls", 1), ("obj", 1), ("bbox", 4), ("kps", 10)):
            # Heads drawn small: offsets and log sizes of a few units, as a trained model's are.
            z = yunet_dp(b, f, c, relu=False, std=0.02 * math.sqrt(2 / 64))
            if part in ("cls", "obj"):
                z = b.act(z, "sigmoid")
            z = b.reshape(b.transpose(z, [0, 2, 3, 1]), [1, -1, c], (1, h * w, c))
            outs[f"{part}_{st}"] = (z, h * w, c)
    for part in ("cls", "obj", "bbox", "kps"):
        for st in (8, 16, 32):
            t, cells, c = outs[f"{part}_{st}"]
            b.rename_output(t, f"{part}_{st}")
            b.output(f"{part}_{st}", [1, cells, c])


# ------------------------------------------------------------------------------------------------
# 2dfan4: face-alignment FAN, 4 stacked hourglasses (depth 4, 256 features), pre-activation ConvBlocks.
# Without trained batch-norm statistics each residual sum doubles the activations' variance, and
# He-initialised branches would reach 5e9 by the last stack, past float16. The residual branches and
# the stacks' merges are drawn with gain 0.1 instead of 2 (peak ~300 on a random input), so the
# replica runs in fp16 as the real model does; the heatmap heads with a gain that puts the heatmaps
# near the real ones' [0, 1] scale (std ~0.3, not ~110), where the soft-argmax is not a hard argmax
# that a rounding flips.
FAN_BRANCH_GAIN = 0.1
FAN_HEATMAP_GAIN = 3e-4


def fan_convblock(b, x, cout):
    cin = b.shape[x][1]
    o1 = b.conv(b.act(b.bn(x), "relu"), cout // 2, 3, bias=False, gain=FAN_BRANCH_GAIN)
    o2 = b.conv(b.act(b.bn(o1), "relu"), cout // 4, 3, bias=False, gain=FAN_BRANCH_GAIN)
    o3 = b.conv(b.act(b.bn(o2), "relu"), cout // 4, 3, bias=False, gain=FAN_BRANCH_GAIN)
    out = b.concat([o1, o2, o3])
    res = x if cin == cout else b.conv(b.act(b.bn(x), "relu"), cout, 1, p=0, bias=False)
    return b.add(out, res)


def hourglass(b, x, level):
    up1 = fan_convblock(b, x, 256)
    low = fan_convblock(b, b.avgpool(x, 2, 2), 256)
    low = hourglass(b, low, level - 1) if level > 1 else fan_convblock(b, low, 256)
    low = fan_convblock(b, low, 256)
    return b.add(up1, b.resize(low, 2, "nearest"))


def fan_2dfan4(b, hw=None):
    x = b.input("input", (1, 3, 256, 256))
    x = b.act(b.conv(x, 64, 7, s=2), "relu")  # conv1 + bn1 folded
    x = fan_convblock(b, x, 128)
    x = b.avgpool(x, 2, 2)
    x = fan_convblock(b, x, 128)
    x = fan_convblock(b, x, 256)
    prev = x
    hm = None
    for i in range(4):
        hg = hourglass(b, prev, 4)
        ll = fan_convblock(b, hg, 256)
        ll = b.act(b.conv(ll, 256, 1, p=0), "relu")  # conv_last + bn_end folded
        hm = b.conv(ll, 68, 1, p=0, gain=FAN_HEATMAP_GAIN)
        if i < 3:
            prev = b.add(b.add(prev, b.conv(ll, 256, 1, p=0, gain=FAN_BRANCH_GAIN)),
                         b.conv(hm, 256, 1, p=0, gain=FAN_BRANCH_GAIN))
    # landmarks (1,68,3): soft-argmax x,y in 64-pixel heatmap coordinates and a confidence
    flat = b.reshape(hm, [1, 68, 4096], (1, 68, 4096))
    prob = b.softmax(b.mul(flat, 20.0), axis=-1)
    gy, gx = np.meshgrid(np.arange(64), np.arange(64), indexing="ij")
    grid = b.const(np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32))
    xy = b.matmul(prob, grid)
    conf = b.node("ReduceMean", [b.mul(prob, flat)], (1, 68, 1), axes=[2], keepdims=1)
    conf = b.mul(conf, 4096.0)
    lm = b.concat([xy, conf], axis=2)
    b.rename_output(lm, "landmarks")
    b.rename_output(hm, "heatmaps")
    b.output("landmarks", [1, 68, 3])
    b.output("heatmaps", [1, 68, 64, 64])


# ------------------------------------------------------------------------------------------------
# gfpgan_1.4: GFPGANv1Clean (out 512, style 512, channel multiplier 2, half-width U-Net, SFT-half)
# He-initialised, each U-Net ResBlock grew the features' rms 1.6x (14 blocks: 0.6 -> 730), and the SFT
# multiplied the decoder by those features at each of 7 levels: activations reached 4e16, past
# float16. The ResBlocks' branch convs are drawn with gain 0.5 and their 1x1 skips with gain 1 (linear,
# variance-preserving), so the features stay at rms 0.4-2.4; the SFT conditions' last convs with gain
# 0.01, the scale's around a bias of 1, as a trained SFT modulates: scale 0.3-1.6, shift within +-0.7.
# Peak |activation| 11 on a random input, output std 2.7.
GF_BRANCH_GAIN = 0.5
GF_SKIP_GAIN = 1.0
GF_COND_GAIN = 1e-2


def gf_resblock(b, x, cout, mode):
    cin = b.shape[x][1]
    sc = 0.5 if mode == "down" else 2.0
    y = b.act(b.conv(x, cin, 3), "lrelu")
    y = b.resize(y, sc, "linear")
    y = b.act(b.conv(y, cout, 3, gain=GF_BRANCH_GAIN), "lrelu")
    s = b.conv(b.resize(x, sc, "linear"), cout, 1, p=0, bias=False, gain=GF_SKIP_GAIN)
    return b.add(y, s)


def modconv(b, x, style, cout, k, demod=True, up=False):
    """StyleGAN2 modulated conv for batch 1: the weight is computed in the graph."""
    cin = b.shape[x][1]
    st = b.gemm(style, cin)  # modulation Linear(512, cin)
    st = b.reshape(st, [1, cin, 1, 1], (1, cin, 1, 1))
    w = b.mul(b.weight((cout, cin, k, k), fan_in=cin * k * k, gain=1.0), st)
    if demod:
        sq = b.mul(w, w)
        ms = b.node("ReduceMean", [sq], (cout, 1, 1, 1), axes=[1, 2, 3], keepdims=1)
        d = b.node("Sqrt", [b.add(b.mul(ms, float(cin * k * k)), 1e-8)], (cout, 1, 1, 1))
        w = b.div(w, d)
    if up:
        x = b.resize(x, 2, "linear")
    return b.conv(x, cout, k, bias=False, w=w)


def gfpgan_1_4(b, hw=None):
    x = b.input("input", (1, 3, 512, 512))
    u = {4: 256, 8: 256, 16: 256, 32: 256, 64: 256, 128: 128, 256: 64, 512: 32}
    d = {4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256, 256: 128, 512: 64}
    f = b.act(b.conv(x, u[512], 1, p=0), "lrelu")
    skips = []
    res = 512
    for _ in range(7):
        res //= 2
        f = gf_resblock(b, f, u[res], "down")
        skips.insert(0, f)
    f = b.act(b.conv(f, u[4], 3), "lrelu")
    code = b.gemm(b.flatten(f), 16 * 512)
    code = b.reshape(code, [1, 16, 512], (1, 16, 512))
    conds = []
    res = 4
    for i in range(7):
        f = b.add(f, skips[i])
        res *= 2
        f = gf_resblock(b, f, u[res], "up")
        c = u[res]
        conds.append(b.conv(b.act(b.conv(f, c, 3), "lrelu"), c, 3, gain=GF_COND_GAIN, bias_mean=1.0))
        conds.append(b.conv(b.act(b.conv(f, c, 3), "lrelu"), c, 3, gain=GF_COND_GAIN))
    lat = [b.gather(code, i, axis=1) for i in range(16)]

    def styleconv(h, li, cout, up=False):
        h = modconv(b, h, lat[li], cout, 3, up=up)
        h = b.add(b.mul(h, math.sqrt(2.0)), b.weight((1, cout, 1, 1), std=0.01))
        return b.act(h, "lrelu")

    def torgb(h, li, skip):
        r = modconv(b, h, lat[li], 3, 1, demod=False)
        r = b.add(r, b.weight((1, 3, 1, 1), std=0.01))
        return r if skip is None else b.add(r, b.resize(skip, 2, "linear"))

    out = b.weight((1, 512, 4, 4), std=1.0)  # constant input
    out = styleconv(out, 0, 512)
    skip = torgb(out, 1, None)
    li = 1
    res = 4
    for lvl in range(7):
        res *= 2
        out = styleconv(out, li, d[res], up=True)
        same, sft = b.split(out, [d[res] // 2, d[res] // 2], axis=1)
        sft = b.add(b.mul(sft, conds[2 * lvl]), conds[2 * lvl + 1])
        out = b.concat([same, sft])
        out = styleconv(out, li + 1, d[res])
        skip = torgb(out, li + 2, skip)
        li += 2
    b.rename_output(skip, "output")
    b.output("output", [1, 3, 512, 512])


# ------------------------------------------------------------------------------------------------
# codeformer: VQGAN encoder/generator (nf 64, ch_mult 1-2-2-4-4-8, 2 res blocks, attention at 16),
# 9-layer transformer (512, 8 heads, MLP 1024), 1024x256 codebook, SFT fusion at 32/64/128/256
def vq_res(b, x, cout):
    cin = b.shape[x][1]
    h = b.conv(b.act(b.gnorm(x), "swish"), cout, 3)
    h = b.conv(b.act(b.gnorm(h), "swish"), cout, 3)
    if cin != cout:
        x = b.conv(x, cout, 1, p=0)
    return b.add(x, h)


def vq_attn(b, x):
    n, c, h, w = b.shape[x]
    hn = b.gnorm(x)
    q, k, v = (b.conv(hn, c, 1, p=0) for _ in range(3))
    q = b.transpose(b.reshape(q, [1, c, h * w], (1, c, h * w)), [0, 2, 1])
    k = b.reshape(k, [1, c, h * w], (1, c, h * w))
    a = b.softmax(b.mul(b.matmul(q, k), float(c) ** -0.5), axis=2)
    v = b.reshape(v, [1, c, h * w], (1, c, h * w))
    o = b.matmul(v, b.transpose(a, [0, 2, 1]))
    o = b.conv(b.reshape(o, [1, c, h, w], (1, c, h, w)), c, 1, p=0)
    return b.add(x, o)


def codeformer(b, hw=None):
    x = b.input("input", (1, 3, 512, 512))
    wt = b.input("weight", (1,), dtype=11)  # float64 [w]
    w32 = b.node("Cast", [wt], (1,), to=1)
    nf, mult = 64, (1, 2, 2, 4, 4, 8)
    enc = {}
    h = b.conv(x, nf, 3)
    cin = nf
    res = 512
    for i, m in enumerate(mult):
        for _ in range(2):
            h = vq_res(b, h, nf * m)
            if res == 16:
                h = vq_attn(b, h)
        enc[res] = h
        if i != len(mult) - 1:
            h = b.conv(b.pad(h, (0, 0, 1, 1), "constant"), nf * m, 3, s=2, p=0)
            res //= 2
    h = vq_res(b, h, 512)
    h = vq_attn(b, h)
    h = vq_res(b, h, 512)
    lq = b.conv(b.act(b.gnorm(h), "swish"), 256, 3)  # 1,256,16,16
    # transformer over the 256 tokens (batch 1 folded away: tokens x channels)
    tok = b.transpose(b.reshape(lq, [256, 256], (256, 256)), [1, 0])
    pos = b.weight((256, 512), std=0.02)
    t = b.linear(tok, 512)
    for _ in range(9):
        t2 = b.lnorm(t)
        qk = b.add(t2, pos)
        def heads(z):
            z = b.reshape(z, [256, 8, 64], (256, 8, 64))
            return b.transpose(z, [1, 0, 2])
        q, k, v = heads(b.linear(qk, 512)), heads(b.linear(qk, 512)), heads(b.linear(t2, 512))
        a = b.softmax(b.mul(b.matmul(q, b.transpose(k, [0, 2, 1])), 0.125), axis=-1)
        o = b.reshape(b.transpose(b.matmul(a, v), [1, 0, 2]), [256, 512], (256, 512))
        t = b.add(t, b.linear(o, 512))
        t2 = b.lnorm(t)
        f = b.linear(t2, 1024)
        f = b.mul(b.mul(f, b.add(b.node("Erf", [b.mul(f, 1.0 / math.sqrt(2.0))], b.shape[f]), 1.0)), 0.5)
        t = b.add(t, b.linear(f, 512))
    logits = b.linear(b.lnorm(t), 1024, bias=False)  # 256 x 1024
    mx = b.node("ReduceMax", [logits], (256, 1), axes=[1], keepdims=1)
    onehot = b.node("Cast", [b.node("Equal", [logits, mx], (256, 1024))], (256, 1024), to=1)
    cb = b.weight((1024, 256), std=1.0 / 32)
    qf = b.matmul(onehot, cb)  # 256 x 256 (token, channel)
    qf = b.reshape(b.transpose(qf, [1, 0]), [1, 256, 16, 16], (1, 256, 16, 16))
    # generator
    g = b.conv(qf, 512, 3)
    g = vq_res(b, g, 512)
    g = vq_attn(b, g)
    g = vq_res(b, g, 512)
    res = 16
    for i in reversed(range(len(mult))):
        for j in range(2):
            g = vq_res(b, g, nf * mult[i])
            if res == 16:
                g = vq_attn(b, g)
            if j == 0 and res in (32, 64, 128, 256):
                c = nf * mult[i]
                e = vq_res(b, b.concat([enc[res], g]), c)
                sc = b.conv(b.act(b.conv(e, c, 3), "lrelu"), c, 3)
                sh = b.conv(b.act(b.conv(e, c, 3), "lrelu"), c, 3)
                g = b.add(g, b.mul(b.add(b.mul(g, sc), sh), w32))
        if i != 0:
            g = b.conv(b.resize(g, 2, "nearest"), nf * mult[i], 3)
            res *= 2
    g = b.conv(b.act(b.gnorm(g), "swish"), 3, 3)
    b.rename_output(g, "output")
    b.output("output", [1, 3, 512, 512])


# ------------------------------------------------------------------------------------------------
# real_esrgan_x4: RRDBNet (64 features, 23 RRDB, growth 32), nearest x2 upsampling twice
def real_esrgan_x4(b, hw=None):
    H, W = hw or (256, 256)
    x = b.input("input", (1, 3, H, W), dims=[1, 3, "height", "width"])
    fea = b.conv(x, 64, 3)
    body = fea
    for _ in range(23):
        rin = body
        for _ in range(3):
            dense = [rin]
            cur = rin
            for j in range(5):
                cat = b.concat(dense) if len(dense) > 1 else dense[0]
                cur = b.conv(cat, 32 if j < 4 else 64, 3)
                if j < 4:
                    cur = b.act(cur, "lrelu")
                    dense.append(cur)
            rin = b.add(b.mul(cur, 0.2), rin)
        body = b.add(b.mul(rin, 0.2), body)
    fea = b.add(fea, b.conv(body, 64, 3))
    fea = b.act(b.conv(b.resize(fea, 2, "nearest"), 64, 3), "lrelu")
    fea = b.act(b.conv(b.resize(fea, 2, "nearest"), 64, 3), "lrelu")
    out = b.conv(b.act(b.conv(fea, 64, 3), "lrelu"), 3, 3)
    b.rename_output(out, "output")
    b.output("output", [1, 3, "height_x4", "width_x4"])


# ------------------------------------------------------------------------------------------------
# xseg: DeepFaceLab XSeg (base 32), NHWC in and out, FRN + TLU blocks, BlurPool downsampling
def frn_tlu(b, x):
    c = b.shape[x][1]
    nu2 = b.node("ReduceMean", [b.mul(x, x)], b.shape[x][:2] + (1, 1), axes=[2, 3], keepdims=1)
    x = b.div(x, b.node("Sqrt", [b.add(nu2, 1e-6)], b.shape[nu2]))
    x = b.add(b.mul(x, b.weight((1, c, 1, 1), std=0.05, mean=1.0)), b.weight((1, c, 1, 1), std=0.05))
    tau = b.weight((1, c, 1, 1), std=0.05)
    return b.add(b.act(b.sub(x, tau), "relu"), tau)


def xseg_block(b, x, c):
    return frn_tlu(b, b.conv(x, c, 3))


def blurpool(b, x, fs):
    c = b.shape[x][1]
    a = {2: [1, 1], 3: [1, 2, 1], 4: [1, 3, 3, 1]}[fs]
    k = np.outer(a, a).astype(np.float32)
    k /= k.sum()
    w = b.const(np.tile(k[None, None], (c, 1, 1, 1)))
    lo, hi = (fs - 1) // 2, int(math.ceil((fs - 1) / 2))
    x = b.pad(x, (lo, lo, hi, hi), "reflect")
    return b.conv(x, c, fs, s=2, p=0, g=c, bias=False, w=w)


def xseg(b, hw=None):
    x = b.input("input", (1, 256, 256, 3))
    x = b.transpose(x, [0, 3, 1, 2])
    bc = 32
    e0 = xseg_block(b, xseg_block(b, x, bc), bc)
    x = blurpool(b, e0, 4)
    e1 = xseg_block(b, xseg_block(b, x, bc * 2), bc * 2)
    x = blurpool(b, e1, 3)
    e2 = xseg_block(b, xseg_block(b, x, bc * 4), bc * 4)
    x = blurpool(b, e2, 2)
    ee = []
    for _ in range(3):
        x = xseg_block(b, xseg_block(b, xseg_block(b, x, bc * 8), bc * 8), bc * 8)
        ee.append(x)
        x = blurpool(b, x, 2)
    x = b.gemm(b.flatten(x), 512)
    x = b.gemm(x, 4 * 4 * bc * 8)
    x = b.reshape(x, [1, bc * 8, 4, 4], (1, bc * 8, 4, 4))

    def up(h, c):
        return frn_tlu(b, b.convT(h, c, 3, s=2, p=1, op=1))

    for e in reversed(ee):
        x = b.concat([up(x, bc * 4), e])
        x = xseg_block(b, xseg_block(b, xseg_block(b, x, bc * 8), bc * 8), bc * 8)
    x = b.concat([up(x, bc * 4), e2])
    x = xseg_block(b, xseg_block(b, x, bc * 4), bc * 4)
    x = b.concat([up(x, bc * 2), e1])
    x = xseg_block(b, xseg_block(b, x, bc * 2), bc * 2)
    x = b.concat([up(x, bc), e0])
    x = xseg_block(b, xseg_block(b, x, bc), bc)
    x = b.act(b.conv(x, 1, 3), "sigmoid")
    x = b.transpose(x, [0, 2, 3, 1])
    b.rename_output(x, "output")
    b.output("output", [1, 256, 256, 1])


# ------------------------------------------------------------------------------------------------
# bisenet_resnet_34: BiSeNet face parsing (context path on ResNet-34, ARM, FFM), 19 classes
def convbnrelu(b, x, c, k):
    return b.act(b.conv(x, c, k), "relu")


def resnet34_trunk(b, x):
    """ResNet-34's stem and four stages of basic blocks; returns the last map and each stage's."""
    x = b.act(b.conv(x, 64, 7, s=2), "relu")
    x = b.maxpool(x, 3, 2, 1)
    cin = 64
    feats = []
    for planes, nb in ((64, 3), (128, 4), (256, 6), (512, 3)):
        for i in range(nb):
            st = 2 if (i == 0 and planes != 64) else 1
            y = b.conv(b.act(b.conv(x, planes, 3, s=st), "relu"), planes, 3)
            sc = b.conv(x, planes, 1, s=st, p=0) if (st != 1 or cin != planes) else x
            x = b.act(b.add(y, sc), "relu")
            cin = planes
        feats.append(x)
    return x, feats


def bisenet_resnet_34(b, hw=None):
    x = b.input("input", (1, 3, 512, 512))
    x, feats = resnet34_trunk(b, x)
    f8, f16, f32 = feats[1], feats[2], feats[3]

    def arm(f, c):
        f = convbnrelu(b, f, c, 3)
        a = b.act(b.conv(b.gap(f), c, 1, p=0), "sigmoid")
        return b.mul(f, a)

    avg = convbnrelu(b, b.gap(f32), 128, 1)
    avg = b.resize_to(avg, b.shape[f32][2:])
    s32 = b.add(arm(f32, 128), avg)
    s32 = convbnrelu(b, b.resize_to(s32, b.shape[f16][2:]), 128, 3)
    s16 = b.add(arm(f16, 128), s32)
    s16 = convbnrelu(b, b.resize_to(s16, b.shape[f8][2:]), 128, 3)
    fu = convbnrelu(b, b.concat([f8, s16]), 256, 1)
    a = b.act(b.conv(b.act(b.conv(b.gap(fu), 64, 1, p=0, bias=False), "relu"), 256, 1, p=0, bias=False), "sigmoid")
    fu = b.add(b.mul(fu, a), fu)
    o = b.conv(convbnrelu(b, fu, 256, 3), 19, 1, p=0, bias=False)
    o = b.resize_to(o, (512, 512), "linear", "align_corners")
    b.rename_output(o, "output")
    b.output("output", [1, 19, 512, 512])


# ------------------------------------------------------------------------------------------------
# The other FaceFusion swappers and their embedding converters. Except simswap_unofficial_512
# (SimSwap's deep generator), their architectures are not published in a form these replicas could
# follow: they are invented AdaIN encoder/decoder stand-ins with the real I/O contract
# (reference/facefusion.md section 2.4), sized to be plausible, not measured.
def adain_generator(b, t, style, base, downs, blocks, act="relu"):
    """Reflect-pad 7x7 conv to `base`, `downs` stride-2 convs doubling channels (capped at 512),
    `blocks` AdaIN residual blocks, bilinear-up convs back, a 7x7 conv to 3."""
    x = b.act(b.conv(b.pad(t, 3), base, 7, p=0), act)
    chans = [base]
    for _ in range(downs):
        chans.append(min(chans[-1] * 2, 512))
        x = b.act(b.conv(x, chans[-1], 3, s=2), act)
    c = chans[-1]
    for _ in range(blocks):
        y = b.act(adain(b, b.conv(b.pad(x, 1), c, 3, p=0), style, c), act)
        y = adain(b, b.conv(b.pad(y, 1), c, 3, p=0), style, c)
        x = b.add(x, y)
    for c in reversed(chans[:-1]):
        x = b.act(b.conv(b.resize(x, 2, "linear"), c, 3), act)
    return b.conv(b.pad(x, 3), 3, 7, p=0)


def image_identity(b, s, base=64):
    """A source-image encoder to a 512-d identity: stride-2 convs, global average pool, Linear."""
    x = s
    c = base
    for _ in range(4):
        x = b.act(b.conv(x, c, 3, s=2), "lrelu")
        c = min(c * 2, 512)
    return b.gemm(b.flatten(b.gap(x)), 512)


def swapper_output(b, x, act, size):
    x = b.act(x, act)
    b.rename_output(x, "output")
    b.output("output", [1, 3, size, size])


def simswap_unofficial_512(b, hw=None):
    # SimSwap's Generator_Adain_Upsample with deep=True: one more stride-2 level (512 at 32x32).
    t = b.input("target", (1, 3, 512, 512))
    s = b.input("source", (1, 512))
    x = adain_generator(b, t, s, 64, 4, 9)
    x = b.mul(b.add(b.act(x, "tanh"), 1.0), 0.5)
    b.rename_output(x, "output")
    b.output("output", [1, 3, 512, 512])


def ghost_256(blocks):
    def build(b, hw=None):
        s = b.input("source", (1, 512))
        t = b.input("target", (1, 3, 256, 256))
        swapper_output(b, adain_generator(b, t, s, 32, 4, 2 * blocks, "lrelu"), "tanh", 256)
    return build


def hififace_unofficial_256(b, hw=None):
    s = b.input("source", (1, 512))
    t = b.input("target", (1, 3, 256, 256))
    swapper_output(b, adain_generator(b, t, s, 64, 3, 6, "lrelu"), "tanh", 256)


def blendswap_256(b, hw=None):
    s = b.input("source", (1, 3, 112, 112))
    t = b.input("target", (1, 3, 256, 256))
    swapper_output(b, adain_generator(b, t, image_identity(b, s), 64, 3, 6), "sigmoid", 256)


def uniface_256(b, hw=None):
    s = b.input("source", (1, 3, 256, 256))
    t = b.input("target", (1, 3, 256, 256))
    swapper_output(b, adain_generator(b, t, image_identity(b, s), 64, 3, 6, "lrelu"), "tanh", 256)


def crossface(b, hw=None):
    """An embedding converter: MLP 512 -> 1024 -> 1024 -> 512 (facefusion-labs crossface's I/O)."""
    x = b.input("input", (1, 512))
    x = b.act(b.gemm(x, 1024), "lrelu")
    x = b.act(b.gemm(x, 1024), "lrelu")
    x = b.gemm(x, 512)
    b.rename_output(x, "output")
    b.output("output", [1, 512])


# FaceFusion's other landmarkers; architectures not followed (invented stand-ins with the contract).
def fan_68_5(b, hw=None):
    """fan_68_5: five points in the ffhq_512 unit square -> 68 points. An MLP 10 -> 256 -> 256 -> 136."""
    x = b.input("input", (1, 5, 2))
    x = b.reshape(x, [1, 10], (1, 10))
    x = b.act(b.gemm(x, 256), "relu")
    x = b.act(b.gemm(x, 256), "relu")
    x = b.reshape(b.gemm(x, 136), [1, 68, 2], (1, 68, 2))
    b.rename_output(x, "output")
    b.output("output", [1, 68, 2])


def peppa_wutz(b, hw=None):
    """peppa_wutz: a 256 crop -> 68 x (x, y, score). Stride-2 convs, global average pool, Linear."""
    x = b.input("input", (1, 3, 256, 256))
    for c in (32, 64, 128, 256, 256):
        x = b.act(b.conv(x, c, 3, s=2), "relu")
    x = b.gemm(b.flatten(b.gap(x)), 204)
    b.rename_output(x, "output")
    b.output("output", [1, 204])


# fairface: FairFace's ResNet-34 classifier (race 7, gender 2, age 9 logits), exported with the
# argmax ids as outputs, which is what FaceFusion reads.
def fairface(b, hw=None):
    x = b.input("input", (1, 3, 224, 224))
    x, _ = resnet34_trunk(b, x)
    logits = b.gemm(b.flatten(b.gap(x)), 18)
    race, gender, age = b.split(logits, [7, 2, 9], axis=1)
    for t, name in ((race, "race_id"), (gender, "gender_id"), (age, "age_id")):
        b.rename_output(b.node("ArgMax", [t], (1,), axis=1, keepdims=0), name)
        b.output(name, [1], dtype=7)  # int64


# ------------------------------------------------------------------------------------------------
# name: (builder, reference size for dynamic models, published params, published FLOPs, source)
MODELS = {
    "inswapper_128": (inswapper_128, None, 138.0e6, 350e9,
                      "MODELS.md: ReSwapper StyleTransferModel_128, 554 MB fp32 file, ~350 GFLOP/face"),
    "hyperswap_1a_256": (hyperswap_1a_256, None, None, None, "architecture unpublished; no figures"),
    "simswap_256": (simswap_256, None, 55.0e6, None,
                    "SimSwap generator ~55 M (ngf 64, 9 AdaIN blocks); file ~220 MB; FLOPs unpublished"),
    "arcface_w600k_r50": (arcface_w600k_r50, None, 43.6e6, 2 * 6.3e9,
                          "insightface arcface_torch: iresnet50 43.6 M params, 6.3 G (multiply-adds)"),
    "scrfd_2.5g": (scrfd_2_5g, (480, 640), 0.82e6, 2 * 2.5e9,
                   "insightface SCRFD README: SCRFD_2.5G_KPS 0.82 M, 2.5 GFlops (MACs) at VGA 640x480"),
    "retinaface_10g": (retinaface_10g, (480, 640), 4.23e6, 2 * 10.38e9,
                       "insightface SCRFD README: SCRFD_10G_KPS (det_10g) 4.23 M, 10.38 GFlops (MACs) at VGA"),
    "yoloface_8n": (yoloface_8n, None, 3.0e6, 8.2e9,
                    "YOLOv8n (3.2 M, 8.7 GFLOP) with 1-class det head + 5-kp pose head; approx 3.0 M / 8.2 GFLOP"),
    "2dfan4": (fan_2dfan4, None, 24.0e6, None,
               "face-alignment 2DFAN-4 checkpoint ~95 MB fp32 -> ~24 M; FLOPs unpublished"),
    "gfpgan_1.4": (gfpgan_1_4, None, 84.9e6, None,
                   "GFPGANv1.4.pth ~348 MB fp32 = ~87.0 M, less the 2.1 M style MLP unused at inference = ~84.9 M"),
    "codeformer": (codeformer, None, 94.1e6, None,
                   "CodeFormer codeformer.pth 376.6 MB fp32 -> ~94 M params; FLOPs unpublished"),
    "real_esrgan_x4": (real_esrgan_x4, (256, 256), 16.70e6, None,
                       "Real-ESRGAN RRDBNet x4 (23 RRDB, 64 feat): 16.70 M params; FLOPs scale with input"),
    "xseg": (xseg, None, None, None, "DeepFaceLab XSeg: no published count"),
    "bisenet_resnet_34": (bisenet_resnet_34, None, 23.3e6, None,
                          "ResNet-34 w/o fc 21.28 M (torchvision) + BiSeNet face-parsing head ~2.0 M"),
}
FIRST_MODELS = sorted(MODELS)

# Added later; each seeds from its own name (SEED + 1000 + crc32(name) mod 10^6), so the first
# set's weights stay as they were and adding one never changes another.
ADDED_MODELS = {
    "hyperswap_1b_256": (hyperswap_1a_256, None, None, None, "as hyperswap_1a_256 (other seed)"),
    "hyperswap_1c_256": (hyperswap_1a_256, None, None, None, "as hyperswap_1a_256 (other seed)"),
    "simswap_unofficial_512": (simswap_unofficial_512, None, None, None,
                               "SimSwap Generator_Adain_Upsample deep=True; no published count"),
    "ghost_1_256": (ghost_256(1), None, None, None, "invented stand-in; no published count"),
    "ghost_2_256": (ghost_256(2), None, None, None, "invented stand-in; no published count"),
    "ghost_3_256": (ghost_256(3), None, None, None, "invented stand-in; no published count"),
    "hififace_unofficial_256": (hififace_unofficial_256, None, None, None, "invented stand-in; no published count"),
    "blendswap_256": (blendswap_256, None, None, None, "invented stand-in; no published count"),
    "uniface_256": (uniface_256, None, None, None, "invented stand-in; no published count"),
    "crossface_simswap": (crossface, None, None, None, "invented MLP stand-in; no published count"),
    "crossface_ghost": (crossface, None, None, None, "invented MLP stand-in; no published count"),
    "crossface_hififace": (crossface, None, None, None, "invented MLP stand-in; no published count"),
    "fan_68_5": (fan_68_5, None, None, None, "invented MLP stand-in; no published count"),
    "peppa_wutz": (peppa_wutz, None, None, None, "invented CNN stand-in; no published count"),
    "fairface": (fairface, None, 21.3e6, None, "FairFace ResNet-34 (torchvision 21.28 M without fc) + fc 512->18"),
    "yunet_2023_mar": (yunet_2023_mar, None, 75856, None,
                       "YuNet paper (Wu, Peng, Yu, Machine Intelligence Research 2023): 75,856 params; BN folded here"),
}
MODELS.update(ADDED_MODELS)


def seed_of(name):
    if name in FIRST_MODELS:
        return SEED + FIRST_MODELS.index(name)
    return SEED + 1000 + zlib.crc32(name.encode()) % 1000000


def build(name, materialize=True, hw=None):
    fn, ref_hw, *_ = MODELS[name]
    b = Builder(name, seed_of(name), materialize=materialize)
    fn(b, hw or ref_hw)
    return b


def fmt(v, unit=""):
    if v is None:
        return "n/a"
    for s, d in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(v) >= d:
            return f"{v / d:.2f}{s}{unit}"
    return f"{v:.0f}{unit}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="output directory")
    ap.add_argument("--only", nargs="+", metavar="NAME")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--print-stats", action="store_true")
    ap.add_argument("--external-data", action="store_true", help="force weights into NAME.onnx.data")
    ap.add_argument("--check", action="store_true", help="run onnx.checker on each written file")
    a = ap.parse_args()
    names = a.only or list(MODELS)
    for n in names:
        if n not in MODELS:
            ap.error(f"unknown replica {n}; --list shows them")
    if a.list:
        for n in MODELS:
            print(n)
        return
    if a.print_stats:
        print(f"{'replica':20s} {'params':>9s} {'pub':>9s} {'diff':>7s} {'FLOPs':>9s} {'pub':>9s} {'diff':>7s} {'file':>9s}  ref size")
        for n in names:
            b = build(n, materialize=False)
            _, hw, pp, pf, src = MODELS[n]
            fl = 2 * b.macs
            dp = f"{100 * (b.params - pp) / pp:+.1f}%" if pp else "n/a"
            df = f"{100 * (fl - pf) / pf:+.1f}%" if pf else "n/a"
            size = None
            if a.out and os.path.exists(os.path.join(a.out, n + ".onnx")):
                p = os.path.join(a.out, n + ".onnx")
                size = os.path.getsize(p) + (os.path.getsize(p + ".data") if os.path.exists(p + ".data") else 0)
            inp = "x".join(str(d) for d in b.shape[b.g.input[0].name])
            print(f"{n:20s} {fmt(b.params):>9s} {fmt(pp):>9s} {dp:>7s} {fmt(fl):>9s} {fmt(pf):>9s} {df:>7s} "
                  f"{fmt(size, 'B') if size else '~' + fmt(4 * b.params, 'B'):>9s}  {inp}")
            print(f"{'':20s} source: {src}")
        return
    if not a.out:
        ap.error("--out DIR is required")
    os.makedirs(a.out, exist_ok=True)
    for n in names:
        t0 = time.time()
        b = build(n)
        path = os.path.join(a.out, n + ".onnx")
        b.finish(path, external=a.external_data)
        params, macs = b.params, b.macs
        del b
        if a.check:
            import onnx
            onnx.checker.check_model(path, full_check=True)
        print(f"{n}: {path} params {fmt(params)} FLOPs {fmt(2 * macs)} ({time.time() - t0:.1f}s)", flush=True)


if __name__ == "__main__":
    main()
