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
#   samplers/schedules.txt: "sched <config> <sampler> <steps> <ncalls> <init_noise_sigma>"
#                    then "t <timesteps...>" and "s <sigmas...>" ("s -" for PNDM/DDIM).
#   samplers/trajectories.txt: "traj <config> <sampler> <steps> <seed> <n> <n_gen>" then one
#                    "x <i> <n values>" line per step: the latents after scheduler.step at call
#                    i of a pipeline-shaped loop whose fake UNet is model_output = 0.5 * x_in + F_i,
#                    F_i = torch.randn(n) drawn in turn from a generator seeded 777. Latents are
#                    randn_tensor(seed, or seeds seed+k per batch item when n_gen > 1) times
#                    init_noise_sigma; Euler a draws its noise from the same generator(s).
#                    Configs: sd15 (scheduler_config.json of SD 1.5 with timestep_spacing
#                    "leading"), trailing / linspace (the same with that spacing), default (the
#                    original 2022 file: no timestep_spacing, no prediction_type), vpred (sd15
#                    with prediction_type "v_prediction"), karras (sd15 with use_karras_sigmas).
import os
import sys

import json
import tempfile

import numpy as np
import torch
from diffusers import (DDIMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler,
                       EulerDiscreteScheduler, LMSDiscreteScheduler, PNDMScheduler)
from diffusers.utils.torch_utils import randn_tensor

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


SD15 = {
    "_class_name": "PNDMScheduler", "_diffusers_version": "0.42.1", "beta_end": 0.012,
    "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": False,
    "num_train_timesteps": 1000, "prediction_type": "epsilon", "set_alpha_to_one": False,
    "skip_prk_steps": True, "steps_offset": 1, "timestep_spacing": "leading",
    "trained_betas": None,
}


def model_config(name):
    cfg = dict(SD15)
    if name in ("trailing", "linspace"):
        cfg["timestep_spacing"] = name
    elif name == "default":
        del cfg["timestep_spacing"], cfg["prediction_type"]
    elif name == "vpred":
        cfg["prediction_type"] = "v_prediction"
    elif name == "karras":
        cfg["use_karras_sigmas"] = True  # carried to the classes that accept it
    return cfg


def load_model_scheduler(name):
    # As the pipeline does: PNDMScheduler.from_pretrained(<model>/scheduler), so keys missing
    # from the file are recorded in _use_default_values and not carried by from_config.
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "scheduler_config.json"), "w") as f:
            json.dump(model_config(name), f)
        return PNDMScheduler.from_pretrained(d)


def make_sampler(kind, base):
    cls, extra = {
        "pndm": (PNDMScheduler, {}),
        "ddim": (DDIMScheduler, {}),
        "euler": (EulerDiscreteScheduler, {}),
        "euler_a": (EulerAncestralDiscreteScheduler, {}),
        "lms": (LMSDiscreteScheduler, {}),
        "dpmpp_2m": (DPMSolverMultistepScheduler,
                     {"algorithm_type": "dpmsolver++", "use_karras_sigmas": False}),
        "dpmpp_2m_karras": (DPMSolverMultistepScheduler,
                            {"algorithm_type": "dpmsolver++", "use_karras_sigmas": True}),
    }[kind]
    return cls.from_config(base.config, **extra)


KINDS = ["pndm", "ddim", "euler", "euler_a", "lms", "dpmpp_2m", "dpmpp_2m_karras"]
SIGMA_KINDS = ("euler", "euler_a", "lms", "dpmpp_2m", "dpmpp_2m_karras")


def f32hex(x) -> str:
    return "%08x" % int(np.array(float(x), dtype=np.float32).view(np.uint32))


def gen_schedules():
    lines = ["# diffusers schedules for SD 1.5's scheduler config and spacing variants"]
    for cname in ["sd15", "trailing", "linspace", "default", "karras"]:
        base = load_model_scheduler(cname)
        for kind in KINDS:
            for steps in [1, 2, 3, 5, 20, 50, 61]:  # trailing 61 gives 62 timesteps
                sch = make_sampler(kind, base)
                sch.set_timesteps(steps)
                ts = sch.timesteps.to(torch.float32).numpy()
                ins = sch.init_noise_sigma
                ins = float(ins) if not torch.is_tensor(ins) else float(ins.to(torch.float32))
                lines.append("sched %s %s %d %d %s" % (cname, kind, steps, len(ts), f32hex(ins)))
                lines.append("t " + hexbits(ts))
                if kind in SIGMA_KINDS:
                    lines.append("s " + hexbits(sch.sigmas.to(torch.float32).numpy()))
                else:
                    lines.append("s -")
    with open(os.path.join(FIX, "samplers", "schedules.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


def trajectory(lines, cname, kind, steps, seed, shape, n_gen):
    base = load_model_scheduler(cname)
    sch = make_sampler(kind, base)
    sch.set_timesteps(steps)
    n = int(np.prod(shape))
    if n_gen == 1:
        gen = torch.Generator("cpu").manual_seed(seed)
    else:
        gen = [torch.Generator("cpu").manual_seed(seed + k) for k in range(n_gen)]
    latents = randn_tensor(shape, generator=gen, dtype=torch.float32)
    latents = latents * sch.init_noise_sigma
    gf = torch.Generator("cpu").manual_seed(777)
    lines.append("traj %s %s %d %d %d %d" % (cname, kind, steps, seed, n, n_gen))
    for i, t in enumerate(sch.timesteps):
        x_in = sch.scale_model_input(latents, t)
        f = torch.randn(shape, generator=gf, dtype=torch.float32)
        mo = 0.5 * x_in + f
        kw = {"generator": gen} if kind == "euler_a" else {}
        if kind == "ddim":
            kw["eta"] = 0.0
        latents = sch.step(mo, t, latents, **kw).prev_sample
        lines.append("x %d %s" % (i, hexbits(latents.numpy())))


def gen_trajectories():
    lines = ["# latents after each step; see the format notes at the top of gen_samplers.py"]
    for kind in KINDS:
        trajectory(lines, "sd15", kind, 10, 42, (1, 4, 4, 4), 1)
        trajectory(lines, "vpred", kind, 6, 5, (1, 4, 4, 4), 1)
    trajectory(lines, "sd15", "pndm", 20, 9, (1, 4, 4, 4), 1)
    trajectory(lines, "default", "euler", 8, 3, (1, 4, 4, 4), 1)
    trajectory(lines, "trailing", "dpmpp_2m_karras", 12, 3, (1, 4, 4, 4), 1)
    trajectory(lines, "sd15", "euler_a", 8, 11, (2, 4, 4, 2), 2)
    trajectory(lines, "sd15", "lms", 20, 4, (1, 4, 4, 4), 1)
    trajectory(lines, "linspace", "euler", 7, 21, (1, 4, 4, 4), 1)
    trajectory(lines, "trailing", "lms", 7, 22, (1, 4, 4, 4), 1)
    trajectory(lines, "default", "euler_a", 7, 23, (1, 4, 4, 4), 1)
    trajectory(lines, "karras", "euler", 8, 24, (1, 4, 4, 4), 1)
    trajectory(lines, "karras", "lms", 8, 25, (1, 4, 4, 4), 1)
    trajectory(lines, "linspace", "dpmpp_2m", 9, 26, (1, 4, 4, 4), 1)
    trajectory(lines, "trailing", "ddim", 7, 27, (1, 4, 4, 4), 1)
    trajectory(lines, "trailing", "pndm", 7, 28, (1, 4, 4, 4), 1)
    trajectory(lines, "linspace", "pndm", 6, 29, (1, 4, 4, 4), 1)
    with open(os.path.join(FIX, "samplers", "trajectories.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    os.makedirs(os.path.join(FIX, "rng"), exist_ok=True)
    os.makedirs(os.path.join(FIX, "samplers"), exist_ok=True)
    gen_rng()
    gen_schedules()
    gen_trajectories()
