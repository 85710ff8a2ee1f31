"""bench/pytorch_encoders.py: PyTorch's CPU time for the CLIP text encoder and the VAE decoder.

The same cases as bench/encoders_cpu.c, with transformers' CLIPTextModel and diffusers'
AutoencoderKL loaded from the same model folder, f32, inference mode:
  text encoder: a CFG batch of 2 prompts (ids "" and "a photo of an astronaut riding a horse");
  VAE decoder: vae.decode(latents / scaling_factor) on one latent of side --latent.
Prints "RESULT torch <case> <best ms> <median ms>". With --compare DIR (the engine's --dump
output) it runs on the engine's inputs and prints the relative L2 difference of the outputs.

Usage: /work/refenv/bin/python bench/pytorch_encoders.py MODEL_DIR [--threads 2] [--latent 64]
       [--reps 3] [--compare DIR]
(A benchmark helper run by hand, never by the engine or CI.)
"""

import argparse
import os
import statistics
import time

import numpy as np
import torch
from diffusers import AutoencoderKL
from transformers import CLIPTextModel

PROMPT = [49406, 320, 1125, 539, 550, 18376, 6765, 320, 4558, 49407]


def report(case, ms):
    ms = sorted(ms)
    print(f"RESULT torch {case} {ms[0]:.1f} {ms[len(ms) // 2]:.1f}", flush=True)


def rel_l2(got, want):
    got, want = got.astype(np.float64).ravel(), want.astype(np.float64).ravel()
    return float(np.linalg.norm(got - want) / np.linalg.norm(want))


def latents_like_engine(side):
    i = np.arange(4 * side * side, dtype=np.uint64)
    u = ((i * 2654435761) % (1 << 32)) >> 8
    return (u.astype(np.float32) / np.float32(1 << 24) * np.float32(3) - np.float32(1.5)).reshape(
        1, 4, side, side)


def timed(fn, reps, warmup):
    if warmup:
        fn()
    ms, out = [], None
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        ms.append((time.perf_counter() - t0) * 1e3)
    return ms, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--latent", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--compare", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    te = CLIPTextModel.from_pretrained(os.path.join(a.model, "text_encoder"),
                                       torch_dtype=torch.float32).eval()
    seq = te.config.max_position_embeddings
    if a.compare:
        ids = np.fromfile(os.path.join(a.compare, "ids.i32"), dtype="<i4").reshape(2, seq)
    else:
        ids = np.full((2, seq), 49407, dtype=np.int32)
        ids[0, 0] = 49406
        ids[1, :len(PROMPT)] = PROMPT
    ids_t = torch.from_numpy(ids.astype(np.int64))
    with torch.inference_mode():
        ms, out = timed(lambda: te(ids_t)[0], a.reps, True)
    report("text_encoder_b2", ms)
    if a.compare:
        ours = np.fromfile(os.path.join(a.compare, "text.f32"), dtype="<f4")
        print(f"COMPARE text_encoder_b2 rel_l2={rel_l2(ours, out.numpy()):.3g}", flush=True)
    del te

    vae = AutoencoderKL.from_pretrained(os.path.join(a.model, "vae"),
                                        torch_dtype=torch.float32).eval()
    side = a.latent
    if a.compare:
        lat = np.fromfile(os.path.join(a.compare, "latents.f32"), dtype="<f4").reshape(
            1, 4, side, side)
    else:
        lat = latents_like_engine(side)
    lat_t = torch.from_numpy(lat.copy())
    sf = vae.config.scaling_factor
    with torch.inference_mode():
        ms, img = timed(lambda: vae.decode(lat_t / sf).sample, a.reps, False)
    px = side * 2 ** (len(vae.config.block_out_channels) - 1)
    report(f"vae_decoder_{px}x{px}", ms)
    if a.compare:
        ours = np.fromfile(os.path.join(a.compare, "image.f32"), dtype="<f4")
        print(f"COMPARE vae_decoder_{px}x{px} rel_l2={rel_l2(ours, img.numpy()):.3g}", flush=True)


if __name__ == "__main__":
    main()
