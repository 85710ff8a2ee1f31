"""End-to-end StableDiffusionPipeline images (float and RGB8, plus PNGs)."""

import numpy as np
import torch
from PIL import Image

from fx_schedulers import make
from fx_vae import to_rgb8
from ref_common import out_path, save_fixture

CASES = [
    # name, prompt, negative, scheduler, seed, steps, height, width, guidance, images per prompt
    ("pndm_astronaut", "a photo of an astronaut riding a horse on mars", "", "pndm", 42, 5, 64, 64, 7.5, 1),
    ("euler_a_castle_48x64", "a castle on a hill at sunset, oil painting", "blurry, low quality", "euler_a", 7, 6,
     48, 64, 7.5, 1),
    ("dpmpp_2m_karras_two", "a red fox in the snow", "", "dpmpp_2m_karras", 1234, 8, 64, 64, 7.5, 2),
    ("ddim_nocfg", "a bowl of fruit", "", "ddim", 3, 4, 64, 64, 1.0, 1),
    ("lms_portrait_64x48", "portrait of an old man, detailed", "cartoon", "lms", 99, 5, 64, 48, 7.5, 1),
    ("euler_city", "a city street at night, neon lights", "", "euler", 5, 4, 64, 64, 7.5, 1),
    ("dpmpp_2m_city", "a city street at night, neon lights", "", "dpmpp_2m", 5, 4, 64, 64, 7.5, 1),
]


@torch.no_grad()
def generate(pipe):
    names = []
    for name, prompt, neg, sched, seed, steps, h, w, cfg, nimg in CASES:
        pipe.scheduler = make(sched)
        kw = dict(prompt=prompt, negative_prompt=neg, height=h, width=w, num_inference_steps=steps,
                  guidance_scale=cfg, num_images_per_prompt=nimg)
        img = pipe(**kw, output_type="np", generator=torch.Generator("cpu").manual_seed(seed)).images
        pil = pipe(**kw, output_type="pil", generator=torch.Generator("cpu").manual_seed(seed)).images
        lat = pipe(**kw, output_type="latent", generator=torch.Generator("cpu").manual_seed(seed)).images
        rgb8 = to_rgb8(img)
        for i, p in enumerate(pil):
            assert np.array_equal(np.asarray(p), rgb8[i])
            Image.fromarray(rgb8[i]).save(out_path("images", f"{name}_{i}.png"))
        save_fixture("pipeline_" + name, {
            "latents": lat, "image_f32": torch.from_numpy(img), "rgb8": torch.from_numpy(rgb8),
        }, {
            "what": "StableDiffusionPipeline(tiny-sd)(..., generator=torch.Generator('cpu').manual_seed(seed))",
            "prompt": prompt, "negative_prompt": neg, "scheduler": sched, "seed": seed,
            "num_inference_steps": steps, "height": h, "width": w, "guidance_scale": cfg,
            "num_images_per_prompt": nimg,
            "do_classifier_free_guidance": cfg > 1.0,
            "scheduler_config": {k: v for k, v in pipe.scheduler.config.items() if not k.startswith("_")},
            "latents": "final latents before VAE (output_type='latent'), [B,4,H/8,W/8]",
            "image_f32": "output_type='np': [B,H,W,3] f32 in [0,1]",
            "rgb8": "(image_f32*255).round().astype(uint8) == PIL output (checked); PNGs in images/",
        })
        names.append(name)
    return names
