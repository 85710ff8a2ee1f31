"""bench/pytorch_unet.py: seconds per UNet step of diffusers' UNet2DConditionModel on PyTorch
(CPU, float32), the baseline next to bench/unet_cpu (same batch, sizes, timestep, threads).

Usage: /work/refenv/bin/python bench/pytorch_unet.py MODEL_DIR [latent_size] [reps] [threads]
(MODEL_DIR is a diffusers folder such as `diffq model init --config sd15 --random --seed 1 -o
/tmp/sd15` writes.) Prints one line per step and a summary, plus the FLOPs that torch's
FlopCounterMode counts for the same call (dq_unet_flops must agree; see tests/unit/test_unet.c).
Benchmark only: the engine never runs Python."""
import statistics
import sys
import time

import torch
from diffusers import UNet2DConditionModel
from torch.utils.flop_counter import FlopCounterMode


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
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, s, s, generator=g)
    ctx = torch.randn(2, 77, unet.config.cross_attention_dim, generator=g)
    t = torch.tensor([500, 500])
    with torch.inference_mode():
        t0 = time.perf_counter()
        with FlopCounterMode(display=False) as fc:
            unet(x, t, ctx)
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
    print(f"pytorch flops {flops / 1e9:.1f} GFLOP/step, {flops / statistics.median(times) / 1e9:.1f} "
          f"GFLOP/s (median); torch {torch.__version__}, "
          f"attention {type(unet.attn_processors[next(iter(unet.attn_processors))]).__name__}")


if __name__ == "__main__":
    main()
