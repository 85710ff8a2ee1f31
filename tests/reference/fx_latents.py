"""Initial-noise fixtures: torch.randn on a seeded CPU generator, bit-exact."""

import torch

from ref_common import save_fixture

SEEDS = [0, 1, 42, 1234, 2**31 - 1, 2**32 - 1, 2**32, 2**63 - 1, 2**64 - 1]
# Small and odd shapes exercise torch's scalar path (< 16 elements) and the
# 16-wide vectorised path with a tail.
SHAPES = [(1,), (3,), (7,), (15,), (16,), (17,), (31,), (33,), (1, 4, 2, 3), (1, 4, 5, 7), (1, 4, 8, 8),
          (2, 4, 8, 8), (2, 4, 6, 8)]
BIG_SHAPE = (1, 4, 64, 64)  # SD 1.5 at 512x512
BIG_SEEDS = [0, 42]


def generate(pipe):
    tensors, index = {}, []
    for seed in SEEDS:
        for shape in SHAPES:
            key = f"seed{seed}_" + "x".join(map(str, shape))
            tensors[key] = torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed), dtype=torch.float32)
            index.append({"key": key, "seed": seed, "shape": list(shape)})
    for seed in BIG_SEEDS:
        key = f"seed{seed}_" + "x".join(map(str, BIG_SHAPE))
        tensors[key] = torch.randn(BIG_SHAPE, generator=torch.Generator("cpu").manual_seed(seed), dtype=torch.float32)
        index.append({"key": key, "seed": seed, "shape": list(BIG_SHAPE)})
    # sequential draws from one generator (how a pipeline consumes it)
    g = torch.Generator("cpu").manual_seed(7)
    tensors["seq7_a_1x4x8x8"] = torch.randn((1, 4, 8, 8), generator=g)
    tensors["seq7_b_5"] = torch.randn((5,), generator=g)
    tensors["seq7_c_1x4x8x8"] = torch.randn((1, 4, 8, 8), generator=g)
    index.append({"key": "seq7_a_1x4x8x8, seq7_b_5, seq7_c_1x4x8x8",
                  "seed": 7, "note": "three randn calls in a row on one generator"})
    # the pipeline's own prepare_latents (batch = prompts * num_images_per_prompt)
    prep = []
    for seed, batch, h, w in [(42, 1, 64, 64), (42, 2, 64, 64), (5, 1, 48, 64), (5, 3, 64, 40)]:
        g = torch.Generator("cpu").manual_seed(seed)
        lat = pipe.prepare_latents(batch, 4, h, w, torch.float32, torch.device("cpu"), g, None)
        ref = torch.randn((batch, 4, h // 8, w // 8), generator=torch.Generator("cpu").manual_seed(seed))
        assert torch.equal(lat, ref * pipe.scheduler.init_noise_sigma)
        key = f"prepare_latents_seed{seed}_b{batch}_{h}x{w}"
        tensors[key] = lat
        prep.append({"key": key, "seed": seed, "batch": batch, "height": h, "width": w,
                     "shape": list(lat.shape), "init_noise_sigma": float(pipe.scheduler.init_noise_sigma)})
    save_fixture("latents_randn", tensors, {
        "what": "torch.randn(shape, generator=torch.Generator('cpu').manual_seed(seed), dtype=float32)",
        "cases": index,
        "prepare_latents": prep,
        "prepare_latents_note": "pipe.prepare_latents draws ONE randn of shape (batch,4,H/8,W/8) from the single generator "
                                "and multiplies by scheduler.init_noise_sigma (1.0 for PNDM/DDIM/DPM; sqrt(sigma_max^2+1) for "
                                "Euler/LMS with leading spacing, sigma_max with linspace/trailing; see schedulers.json)",
    })
