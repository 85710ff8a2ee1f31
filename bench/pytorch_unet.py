"""bench/pytorch_unet.py: seconds per UNet step of diffusers' UNet2DConditionModel on PyTorch
(CPU, float32), the baseline next to bench/unet_cpu (same batch, sizes, timestep, threads).

Usage: /work/refenv/bin/python bench/pytorch_unet.py MODEL_DIR [latent_size] [reps] [threads]
       [ENGINE_OUT.f32]
(MODEL_DIR is a diffusers folder such as `diffq model init --config sd15 --random --seed 1 -o
/tmp/sd15` writes.) Prints one line per step and a summary, plus the FLOPs that torch's
FlopCounterMode counts for the same call (dq_unet_flops must agree; see tests/unit/test_unet.c).
The inputs are bench/unet_cpu's (same formula); given the engine's output file, a COMPARE line
says how far apart the two are. Benchmark only: the engine never runs Python."""
import statistics
import sys
import time

import numpy as np
import torch
from diffusers import UNet2DConditionModel
from torch.utils.flop_counter import FlopCounterMode


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _fill(n, seed):
    """bench/unet_cpu.c's s_fill: ((i + seed) * 2654435761 % 2000) / 1000 - 1 in float32."""
    i = np.arange(n, dtype=np.uint64) + np.uint64(seed)
    v = ((i * np.uint64(2654435761)) % np.uint64(2000)).astype(np.float32)
    return v / np.float32(1000) - np.float32(1)


def main():
    model = sys.argv[1]
    s = int(sys.argv[2]) if len(sys.argv) > 2 else 32
    reps = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    unet = UNet2DConditionModel.from_pretrained(model, subfolder="unet", torch_dtype=torch.float32)
    unet.eval()
    t_load = time.perf_counter() - t0
    d = unet.config.cross_attention_dim
    x = torch.from_numpy(_fill(2 * 4 * s * s, 1)).reshape(2, 4, s, s)
    ctx = torch.from_numpy(_fill(2 * 77 * d, 2)).reshape(2, 77, d)
    t = torch.tensor([500, 500])
    with torch.inference_mode():
        t0 = time.perf_counter()
        with FlopCounterMode(display=False) as fc:
            y = unet(x, t, ctx).sample
        t_first = time.perf_counter() - t0
        times = []
        for r in range(reps):
            t0 = time.perf_counter()
            unet(x, t, ctx)
            times.append(time.perf_counter() - t0)
            print(f"step {r + 1}: {times[-1]:.3f} s", flush=True)
    print(f"pytorch latent {s}x{s} batch 2 threads {threads}: load {t_load:.1f} s, first call "
          f"(with flop counter) {t_first:.3f} s, best {min(times):.3f} s, median "
          f"{statistics.median(times):.3f} s per step")
    flops = fc.get_total_flops()
    a = torch.randn(1024, 1024)
    best = min(_timed(lambda: torch.mm(a, a)) for _ in range(20))
    blas = "MKL" if torch.backends.mkl.is_available() else "BLAS"
    print(f"pytorch sgemm 1024^3 (torch.mm, {blas}): {2 * 1024 ** 3 / best / 1e9:.1f} GFLOP/s")
    rate = flops / statistics.median(times) / 1e9
    if len(sys.argv) > 5:
        mine = torch.from_numpy(np.fromfile(sys.argv[5], dtype=np.float32)).reshape(y.shape)
        rel = ((mine.double() - y.double()).norm() / y.double().norm()).item()
        print(f"COMPARE engine vs diffusers, latent {s}x{s} batch 2: relative L2 {rel:.3g}")
    proc = type(next(iter(unet.attn_processors.values()))).__name__
    print(f"pytorch flops {flops / 1e9:.1f} GFLOP/step, {rate:.1f} GFLOP/s (median); "
          f"torch {torch.__version__}, attention {proc}")


if __name__ == "__main__":
    main()
