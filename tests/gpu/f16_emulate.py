"""tests/gpu/f16_emulate.py: how far the CUDA backend's f16 mode can drift from the f32 fixtures,
estimated on the CPU, to size the f16 thresholds of tests/unit/test_pipeline.c.

The f16 mode (docs/cuda.md) keeps activations in f32 but rounds the operands of every matrix
product to f16 (linear with F16 weights, conv2d) or multiplies in TF32 (f32 linears, matmul,
attention), both with f32 accumulation; cuDNN's pseudo-half conv also writes its output in f16.
This script runs diffusers' pipeline on tests/fixtures/tiny-sd in f32 with exactly those roundings
patched in (operands of F.linear, F.conv2d, torch.matmul/bmm/baddbmm and F.scaled_dot_product_
attention rounded to f16, conv outputs too; TF32 keeps f16's 10-bit mantissa, so one rounding
stands for both), renders every pipeline fixture and prints the same statistics the test prints.

Since issue #6 step 2 the f16 mode also keeps the UNet's and the VAE decoder's activations in f16
(storage only: each op computes in f32, norms and softmax with f32 statistics, and rounds its
output once), as diffusers' f16 pipeline does; the text encoder stays f32. --act16 models that:
inside unet.forward and vae.decode every torch op's floating output is rounded to f16 (in-place
ops in place), except the sinusoidal time projection, which the engine computes in f32 on the
host and rounds once (as diffusers casts t_emb to the sample's dtype).
--bf16 models the bf16 precision instead: every rounding above goes to bfloat16 (8-bit
significand) rather than float16 (11-bit). That is exact for the UNet and the VAE (BF16
activations, weights and products); the text encoder (F32 activations, BF16 weights, TF32
products) rounds its inputs to f16's precision on a GPU, so bf16 there overstates its error.
Reference tooling only (run with /work/refenv/bin/python from the repository root); never in CI.

    python tests/gpu/f16_emulate.py [--double] [--act16] [--bf16]
    # --double: round twice as often (a stress case); --act16: f16 activations (the f16 mode now)
    # --act16 --bf16: the bf16 precision
"""

import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "reference"))
from fx_pipeline import CASES  # noqa: E402
from fx_schedulers import make  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


R16 = torch.float16  # the 16-bit type every rounding goes to (--bf16: torch.bfloat16)


def r16(t):
    return t.to(R16).to(t.dtype) if torch.is_tensor(t) and t.is_floating_point() else t


def patch(double):
    lin, conv, mm, bmm, baddbmm, sdpa = (F.linear, F.conv2d, torch.matmul, torch.bmm, torch.baddbmm,
                                         F.scaled_dot_product_attention)
    ulp = 2.0 ** (-8 if R16 == torch.bfloat16 else -11)
    rr = (lambda t: r16(r16(t) * (1 + ulp)) if torch.is_tensor(t) else t) if double else r16
    F.linear = lambda x, w, b=None: lin(rr(x), rr(w), b)
    F.conv2d = lambda x, w, b=None, *a, **k: r16(conv(rr(x), rr(w), b, *a, **k))
    torch.matmul = lambda a, b, **k: mm(rr(a), rr(b), **k)
    torch.bmm = lambda a, b, **k: bmm(rr(a), rr(b), **k)
    torch.baddbmm = lambda i, a, b, **k: baddbmm(i, rr(a), rr(b), **k)

    def attn(q, k, v, *a, **kw):
        return sdpa(rr(q), rr(k), rr(v), *a, **kw)
    F.scaled_dot_product_attention = attn


class Act16(torch.overrides.TorchFunctionMode):
    """Rounds the floating output of every torch op to f16 while active (see the file comment)."""

    def __init__(self):
        super().__init__()
        self.off = 0  # > 0 inside the time projection

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if self.off:
            return out
        if isinstance(out, torch.Tensor) and args and out is args[0] and out.is_floating_point():
            with torch.no_grad():
                out.copy_(r16(out))  # an in-place op (add_, mul_, ...): round in place
            return out
        if isinstance(out, (tuple, list)):
            return type(out)(r16(o) for o in out)
        return r16(out)


def patch_act16(pipe):
    mode = Act16()

    def wrap(fn):
        def run(*a, **k):
            with mode:
                return fn(*a, **k)
        return run

    tproj = pipe.unet.time_proj.forward

    def time_proj(*a, **k):
        mode.off += 1
        try:
            return tproj(*a, **k)
        finally:
            mode.off -= 1
    pipe.unet.time_proj.forward = time_proj
    pipe.unet.forward = wrap(pipe.unet.forward)
    pipe.vae.decode = wrap(pipe.vae.decode)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--double", action="store_true")
    ap.add_argument("--act16", action="store_true")
    ap.add_argument("--bf16", action="store_true")
    args = ap.parse_args()
    if args.bf16:
        global R16
        R16 = torch.bfloat16
    from diffusers import StableDiffusionPipeline
    pipe = StableDiffusionPipeline.from_pretrained(os.path.join(ROOT, "tests/fixtures/tiny-sd"),
                                                   torch_dtype=torch.float32, safety_checker=None)
    pipe.set_progress_bar_config(disable=True)
    patch(args.double)
    if args.act16:
        patch_act16(pipe)
    from safetensors.torch import load_file
    rows = []
    for name, prompt, neg, sched, seed, steps, h, w, cfg, nimg in CASES:
        fx = load_file(os.path.join(ROOT, f"tests/fixtures/pipeline_{name}.safetensors"))
        pipe.scheduler = make(sched)
        kw = dict(prompt=prompt, negative_prompt=neg, height=h, width=w, num_inference_steps=steps,
                  guidance_scale=cfg, num_images_per_prompt=nimg)
        with torch.no_grad():
            lat = pipe(**kw, output_type="latent",
                       generator=torch.Generator("cpu").manual_seed(seed)).images
            img = pipe(**kw, output_type="np", generator=torch.Generator("cpu").manual_seed(seed)).images
        ref = fx["latents"].double()
        rel = float((lat.double() - ref).norm() / ref.norm())
        rgb = (img * 255).round().astype(np.int32)
        d = np.abs(rgb - fx["rgb8"].numpy().astype(np.int32))
        mse = float((d.astype(np.float64) ** 2).mean())
        psnr = 99.0 if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)
        rows.append({"name": name, "latents_rel_l2": rel, "mean_abs": float(d.mean()),
                     "psnr_db": psnr, "worst": int(d.max()), "over1_frac": float((d > 1).mean())})
        print(json.dumps(rows[-1]))
    print(json.dumps({"worst_rel_l2": max(r["latents_rel_l2"] for r in rows),
                      "worst_mean_abs": max(r["mean_abs"] for r in rows),
                      "worst_psnr_db": min(r["psnr_db"] for r in rows)}))


if __name__ == "__main__":
    main()
