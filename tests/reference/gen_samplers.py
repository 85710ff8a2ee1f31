#!/usr/bin/env python3
# tests/reference/gen_samplers.py: reference fixtures for kernels/rng and kernels/sched, dumped
# from PyTorch and diffusers themselves. Run once with the reference environment:
#   /work/refenv/bin/python tests/reference/gen_samplers.py   (from the top of the tree)
# It writes tests/fixtures/rng/randn.txt and tests/fixtures/samplers/*.txt. Never run in CI.
#
# Formats (text, one record a line, '#' comments; floats as IEEE bit patterns in hex so nothing
# is lost to printing):
#   rng/randn.txt:   "case <seed> <n1,n2,...>" then one "call <n> <fnv1a64 of the f32 bytes>
#                    <k> <bits>..." line per torch.randn call of n elements on one generator;
#                    k = n for n <= 64, else 4 (the first two and the last two values).
import os
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = os.path.join(ROOT, "tests", "fixtures")


def fnv1a64(buf: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in buf:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def f32_bits(a) -> list:
    return [int(x) for x in np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).ravel()]


def hexbits(a) -> str:
    return " ".join("%08x" % b for b in f32_bits(a))


def gen_rng():
    # PyTorch picks the normal kernel by CPU; the engine reproduces the AVX2 one, which AVX-512
    # machines also run. Refuse to write fixtures from another kernel.
    cap = torch.backends.cpu.get_cpu_capability()
    if cap not in ("AVX2", "AVX512"):
        sys.exit("gen_samplers.py: torch runs the %s normal kernel; need AVX2/AVX512" % cap)
    seeds = [0, 1, 42, 2**32 + 5, 2**63 - 1, 2**64 - 1, 376]
    # Shapes as element counts: scalar path (< 16), fill path with and without a tail, and the
    # latent shapes 1x4x8x8, 2x4x8x6 and 1x4x64x64.
    sizes = [1, 7, 15, 16, 17, 31, 64, 256, 384, 16384]
    lines = ["# torch %s, cpu capability %s: torch.randn(n, generator=g) in sequence" %
             (torch.__version__, cap)]

    def case(seed, seq):
        g = torch.Generator("cpu").manual_seed(seed)
        lines.append("case %d %s" % (seed, ",".join(str(n) for n in seq)))
        for n in seq:
            a = torch.randn(n, generator=g, dtype=torch.float32).numpy()
            h = fnv1a64(a.tobytes())
            vals = a if n <= 64 else np.concatenate([a[:2], a[-2:]])
            lines.append("call %d %016x %d %s" % (n, h, len(vals), hexbits(vals)))

    for seed in seeds:
        for n in sizes:
            case(seed, [n, n])  # the second call is the ancestral noise after the latents
    # The double path caches its second value in the generator, across calls and across the
    # fill path (which neither uses nor clears it).
    case(3, [7, 16, 7, 1, 33, 3])
    with open(os.path.join(FIX, "rng", "randn.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    os.makedirs(os.path.join(FIX, "rng"), exist_ok=True)
    os.makedirs(os.path.join(FIX, "samplers"), exist_ok=True)
    gen_rng()
