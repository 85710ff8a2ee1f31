"""bench/diffusers_gpu.py: diffusers' StableDiffusionPipeline measured as bench/gpu_render measures
diffq: whole renders per second and peak device memory, one JSON line per batch size, same keys.

    python3 bench/diffusers_gpu.py --model DIR [--device cuda] [--dtype float16] [--size 512]
        [--steps 50] [--guidance 7.5] [--batches "1 4 8"] [--reps 3] [--budget SECONDS]

Same model folder, prompt, seed, steps, guidance and batches as gpu_render; the folder's scheduler
(PNDM for SD 1.5); PyTorch's default attention (AttnProcessor2_0: scaled_dot_product_attention);
output_type "pil" (RGB8, as diffq hands back). Per batch: one warm-up render, then --reps timed
renders (fewer once --budget seconds of them have passed, at least one), each ended by
torch.cuda.synchronize(); images_per_s = batch / the median. Memory: device total - free
(torch.cuda.mem_get_info, the number bench/gpu_mem.c reads) sampled in callback_on_step_end and
after each render returns (the decoder's blocks are still in PyTorch's cache then), minus a
baseline read before the pipeline is loaded; the cache is emptied before each batch so a batch's
peak is its own. On the CPU (a smoke check with float32) memory is the resident set.
Needs torch and diffusers; a benchmark tool, never run by `make check`.
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="diffusers model folder")
    ap.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    ap.add_argument("--dtype", choices=["float16", "float32"], default=None,
                    help="default float16 on CUDA, float32 on the CPU")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--guidance", type=float, default=7.5)
    ap.add_argument("--batches", default="1 4 8")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--budget", type=float, default=0.0)
    ap.add_argument("--prompt", default="a photo of an astronaut riding a horse on mars")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    try:
        args.batches = [int(b) for b in args.batches.replace(",", " ").split()]
    except ValueError:
        ap.error("--batches: expected numbers")
    if not args.batches or min(args.batches) < 1 or args.reps < 1 or args.size % 8:
        ap.error("--batches >= 1, --reps >= 1, --size a multiple of 8")
    return args


class Sampler:
    """Largest memory in use since reset(), bytes."""

    def __init__(self, device):
        self.device = device
        self.cuda = device.type == "cuda"
        self.peak = 0

    def used(self):
        if self.cuda:
            free, total = torch.cuda.mem_get_info(self.device)
            return total - free
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def sample(self):
        self.peak = max(self.peak, self.used())

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize(self.device)


def main():
    args = parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", 0)
    dtype = getattr(torch, args.dtype or ("float16" if device.type == "cuda" else "float32"))
    s = Sampler(device)
    baseline = s.used()  # on CUDA this first call creates the context: it is in the baseline
    t0 = time.perf_counter()
    import diffusers
    diffusers.utils.logging.disable_progress_bar()
    from diffusers import StableDiffusionPipeline
    # dtype= is 0.42's spelling of torch_dtype= (which still works, with a FutureWarning)
    pipe = StableDiffusionPipeline.from_pretrained(args.model, dtype=dtype, safety_checker=None,
                                                   requires_safety_checker=False)
    pipe = pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    s.sync()
    load_s = time.perf_counter() - t0
    attention = sorted({type(p).__name__ for p in pipe.unet.attn_processors.values()})

    def on_step(_pipe, _i, _t, kwargs):
        s.sample()
        return kwargs

    for batch in args.batches:
        if s.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        s.peak = baseline

        def render():
            gen = torch.Generator(device=device).manual_seed(args.seed)
            t = time.perf_counter()
            out = pipe(args.prompt, height=args.size, width=args.size,
                       num_inference_steps=args.steps, guidance_scale=args.guidance,
                       num_images_per_prompt=batch, generator=gen, callback_on_step_end=on_step)
            s.sync()
            dt = time.perf_counter() - t
            s.sample()
            if len(out.images) != batch:
                sys.exit(f"diffusers_gpu: batch {batch}: {len(out.images)} images came back")
            return dt

        warmup = render()
        secs = []
        while len(secs) < args.reps and (not secs or args.budget <= 0 or sum(secs) < args.budget):
            secs.append(render())
        median = statistics.median(secs)
        line = {
            "tool": "diffusers", "device": str(device), "precision": "f16" if dtype == torch.float16 else "f32",
            "model": os.path.basename(os.path.normpath(args.model)), "size": args.size,
            "steps": args.steps, "guidance": args.guidance, "batch": batch, "reps": len(secs),
            "warmup_s": round(warmup, 6), "seconds": [round(x, 6) for x in secs],
            "median_s": round(median, 6), "images_per_s": round(batch / median, 6),
            "peak_mib": round((s.peak - baseline) / 2**20, 3), "baseline_mib": round(baseline / 2**20, 3),
            "load_s": round(load_s, 6), "attention": ",".join(attention),
            "torch": torch.__version__, "diffusers": diffusers.__version__,
        }
        if s.cuda:
            line["torch_max_reserved_mib"] = round(torch.cuda.max_memory_reserved(device) / 2**20, 3)
        print(json.dumps(line, separators=(",", ":")), flush=True)


if __name__ == "__main__":
    main()
