#!/usr/bin/env python3
# tests/reference/manifest.py: dumps the parameter names and shapes that diffusers/transformers give
# CLIPTextModel, UNet2DConditionModel and AutoencoderKL for the sd15 and tiny presets of
# `diffq model init`, so tests/unit/test_model_manifest.c can compare them with the C manifests.
#
# Run with the reference env (never at build time):
#   /work/refenv/bin/python tests/reference/manifest.py tests/fixtures/manifest
# Writes <preset>-<component>.txt: one "name d0,d1,..." line per tensor, sorted by name.
# The presets below must match kernels/model_presets.c.
import os
import sys

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

PRESETS = {
    "sd15": {
        "clip": dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                     num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu",
                     projection_dim=768),
        "unet": dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
                     block_out_channels=(320, 640, 1280, 1280),
                     down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                       "CrossAttnDownBlock2D", "DownBlock2D"),
                     up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                                     "CrossAttnUpBlock2D"),
                     cross_attention_dim=768, attention_head_dim=8),
        "vae": dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2,
                    block_out_channels=(128, 256, 512, 512),
                    down_block_types=("DownEncoderBlock2D",) * 4,
                    up_block_types=("UpDecoderBlock2D",) * 4, sample_size=512),
    },
    "tiny": {
        "clip": dict(vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                     num_attention_heads=4, max_position_embeddings=77, hidden_act="quick_gelu",
                     projection_dim=32),
        "unet": dict(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
                     block_out_channels=(32, 64),
                     down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                     up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
                     cross_attention_dim=32, attention_head_dim=8),
        "vae": dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
                    block_out_channels=(32, 32, 64, 64),
                    down_block_types=("DownEncoderBlock2D",) * 4,
                    up_block_types=("UpDecoderBlock2D",) * 4, sample_size=64),
    },
}


def dump(model, path, prefix=""):
    # transformers 5 dropped CLIPTextModel's "text_model." level from state_dict() (and from the files
    # it saves) but still loads prefixed files; SD 1.x checkpoints carry the prefix, so the manifest
    # (and `diffq model init`) use it and the loader accepts both spellings.
    with open(path, "w") as f:
        for name, t in sorted(model.state_dict().items()):
            if prefix and not name.startswith(prefix):
                name = prefix + name
            f.write("%s %s\n" % (name, ",".join(str(d) for d in t.shape)))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/manifest"
    os.makedirs(out, exist_ok=True)
    for preset, cfg in PRESETS.items():
        # The meta device builds the modules without allocating their weights.
        with torch.device("meta"):
            dump(CLIPTextModel(CLIPTextConfig(**cfg["clip"])), os.path.join(out, preset + "-clip.txt"),
                 "text_model.")
            dump(UNet2DConditionModel(**cfg["unet"]), os.path.join(out, preset + "-unet.txt"))
            dump(AutoencoderKL(**cfg["vae"]), os.path.join(out, preset + "-vae.txt"))


if __name__ == "__main__":
    main()
