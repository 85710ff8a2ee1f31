"""VAE fixtures: decoder (+ image postprocess to RGB8) and encoder moments."""

import numpy as np
import torch

from ref_common import save_fixture


def to_rgb8(images_np):
    """diffusers VaeImageProcessor.numpy_to_pil arithmetic."""
    return (images_np * 255).round().astype("uint8")


@torch.no_grad()
def generate(pipe):
    vae, proc = pipe.vae, pipe.image_processor
    sf = vae.config.scaling_factor
    cases = [("decode_1x8x8", (1, 4, 8, 8), 100), ("decode_2x8x8", (2, 4, 8, 8), 101),
             ("decode_1x6x8", (1, 4, 6, 8), 102)]
    meta_cases = []
    for name, shape, seed in cases:
        lat = torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed), dtype=torch.float32)
        dec = vae.decode(lat / sf, return_dict=False)[0]
        # pipeline: image_processor.postprocess(image, output_type="np", do_denormalize=[True]*B)
        img_np = proc.postprocess(dec, output_type="np")
        rgb8 = to_rgb8(img_np)
        pil = proc.postprocess(dec, output_type="pil")
        for i, p in enumerate(pil):
            assert np.array_equal(np.asarray(p), rgb8[i]), "PIL path differs from numpy_to_pil arithmetic"
        den = (dec * 0.5 + 0.5).clamp(0, 1)
        assert np.array_equal(den.permute(0, 2, 3, 1).numpy(), img_np)
        save_fixture("vae_" + name, {
            "latents": lat, "decoded": dec, "image_f32": torch.from_numpy(img_np),
            "rgb8": torch.from_numpy(rgb8),
        }, {
            "what": "vae.decode(latents / scaling_factor).sample, then VaeImageProcessor.postprocess",
            "latent_seed": seed, "latents": "torch.randn(shape, generator=Generator('cpu').manual_seed(seed))",
            "scaling_factor": sf,
            "decoded": "[B,3,8h,8w] f32 in about [-1,1]",
            "image_f32": "[B,8h,8w,3] = (decoded*0.5+0.5).clamp(0,1) permuted to NHWC (output_type='np')",
            "rgb8": "[B,8h,8w,3] uint8 = (image_f32*255).round() (numpy round-half-even, in f32), as numpy_to_pil",
        })
        meta_cases.append(name)
    # encoder: moments of the diagonal Gaussian (mean, logvar clamped to [-30, 20])
    img = torch.rand((1, 3, 48, 64), generator=torch.Generator("cpu").manual_seed(103)) * 2 - 1
    dist = vae.encode(img).latent_dist
    save_fixture("vae_encode_1x48x64", {
        "image": img, "mean": dist.mean, "logvar": dist.logvar, "std": dist.std,
    }, {
        "what": "vae.encode(image).latent_dist (encoder -> quant_conv -> chunk(2) on channels)",
        "image": "torch.rand(1,3,48,64, generator seed 103)*2-1",
        "note": "logvar = clamp(moments[:,4:], -30, 20); std = exp(0.5*logvar); not scaled by scaling_factor",
    })
