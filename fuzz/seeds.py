#!/usr/bin/env python3
"""Writes the hand-made seed corpora (run from the repository root).

The files are committed; this script only documents how they were made.
Byte programs follow the decoding in fuzz/harness.rs (`Input`).
"""
import json
import os
import shutil
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(bytes(data))


def st(header, data=b""):
    h = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(h)) + h + data


# ----- safetensors_load
ref = os.path.join(ROOT, "..", "..", "crates/nn/tests/fixtures/reference.safetensors")
os.makedirs(os.path.join(ROOT, "safetensors_load"), exist_ok=True)
shutil.copy(ref, os.path.join(ROOT, "safetensors_load", "reference.safetensors"))
good = open(ref, "rb").read()
put("safetensors_load", "reference-truncated-data", good[:-5])
put("safetensors_load", "reference-truncated-header", good[:40])
put("safetensors_load", "reference-garbled-json", good[:12] + b"\x00\xff" + good[14:])
put("safetensors_load", "reference-header-len-too-big", struct.pack("<Q", len(good)) + good[8:])
put("safetensors_load", "empty", b"")
put("safetensors_load", "short", b"\x01\x02\x03")
f32 = struct.pack("<4f", 0.5, -1.25, 3.0, 0.0)
put("safetensors_load", "f32-2x2", st({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
                                       "__metadata__": {"format": "heft"}}, f32))
put("safetensors_load", "mixed-dtypes", st({
    "a": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]},
    "b": {"dtype": "BF16", "shape": [1], "data_offsets": [4, 6]},
    "c": {"dtype": "I64", "shape": [], "data_offsets": [6, 14]},
    "d": {"dtype": "BOOL", "shape": [2], "data_offsets": [14, 16]},
    "e": {"dtype": "U8", "shape": [0, 3], "data_offsets": [16, 16]},
}, b"\x00\x3c\x00\xc0" + b"\x80\x3f" + struct.pack("<q", -7) + b"\x01\x00"))
put("safetensors_load", "fp8-unloadable", st({"x": {"dtype": "F8_E4M3", "shape": [2], "data_offsets": [0, 2]}}, b"\x01\x02"))
put("safetensors_load", "overlapping-offsets", st({
    "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
    "b": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, f32[:4]))
put("safetensors_load", "huge-shape", st({"x": {"dtype": "F32", "shape": [2**62, 4], "data_offsets": [0, 0]}}))
put("safetensors_load", "zero-dim-huge-shape", st({"x": {"dtype": "F32", "shape": [0, 2**63], "data_offsets": [0, 0]}}))
put("safetensors_load", "bad-metadata", st({"__metadata__": {"k": 3}}))

# ----- tensor_views: rank, dims, dtype (0 f32, 1 f64, 2 i64, 5 bool), seed; then ops.
# Ops: 0 transpose a b | 1 permute n p.. | 2 narrow ax start len | 3 slice ax start end step
#      4 broadcast_to sel rank dims.. | 5 squeeze ax | 6 unsqueeze ax | 7 reshape sel rank dims..
#      8 flatten a b | 9 t. Axis byte b means b % 11 - 5 (5 -> 0, 4 -> -1).
put("tensor_views", "transpose-narrow-slice", [3, 2, 3, 4, 0, 7, 0, 5, 7, 2, 6, 1, 2, 3, 5, 0, 4, 2, 1, 0])
put("tensor_views", "broadcast-permute-reshape", [2, 3, 1, 1, 3, 4, 1, 3, 2, 3, 4, 1, 3, 2, 0, 1,
                                                  7, 1, 2, 4, 6, 8, 5, 4, 6, 5, 5, 5, 2, 5, 1])
put("tensor_views", "i64-rank4", [4, 1, 2, 3, 2, 2, 9, 9, 8, 6, 4, 5, 5, 6, 7, 1, 6])
put("tensor_views", "scalar", [0, 0, 11, 6, 5, 8, 5, 5, 9])
put("tensor_views", "empty-dim", [3, 2, 0, 3, 1, 0, 2, 6, 0, 0, 3, 5, 0, 2, 1, 9])
put("tensor_views", "matmul-square", [2, 4, 4, 0, 3, 9, 9])

# ----- ops_args: first byte picks the op (mod 15), the rest are its arguments.
names = ["index_select", "index_add", "gather", "scatter_add", "one_hot", "cat", "cat-or-stack",
         "split-chunk", "pad", "unfold2d", "fold2d", "conv2d", "max_pool2d", "pool2d-b", "pool2d-c"]
for op, name in enumerate(names):
    put("ops_args", f"{name}-a", [op, 2, 3, 4, 0, 1, 0, 1, 4, 0, 1, 2, 3, 5, 6, 2, 1, 1, 0, 1])
    put("ops_args", f"{name}-b", [op, 4, 1, 2, 5, 5, 1, 3, 0, 4, 1, 2, 3, 3, 1, 1, 1, 0, 1, 1, 2, 2, 1, 0, 0, 2])
