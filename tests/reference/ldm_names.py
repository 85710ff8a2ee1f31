#!/usr/bin/env python3
# tests/reference/ldm_names.py: the LDM (single-file checkpoint) name of every diffusers parameter of a
# preset, checked by running diffusers' own single-file converters (convert_ldm_unet_checkpoint,
# convert_ldm_vae_checkpoint, convert_ldm_clip_checkpoint) on a checkpoint with those names.
#   /work/refenv/bin/python tests/reference/ldm_names.py tests/fixtures/manifest
# Writes <preset>-ldm.txt (tiny and sd15): "ldm_key diffusers_part diffusers_key" lines, used by
# tests/unit/test_model_files.c to test kernels/model_ldm.c and to build a single-file checkpoint.
import os
import re
import sys

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.loaders import single_file_utils as sfu
from transformers import CLIPTextConfig, CLIPTextModel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from manifest import PRESETS  # noqa: E402

RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
          "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
VAE_ATTN = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def unet_to_ldm(k, cfg):
    L = cfg["layers_per_block"]
    cross_up = [t.startswith("CrossAttn") for t in cfg["up_block_types"]]
    fixed = {"conv_in.": "input_blocks.0.0.", "time_embedding.linear_1.": "time_embed.0.",
             "time_embedding.linear_2.": "time_embed.2.", "conv_norm_out.": "out.0.", "conv_out.": "out.2.",
             "mid_block.attentions.0.": "middle_block.1."}
    for a, b in fixed.items():
        if k.startswith(a):
            return b + k[len(a):]
    m = re.match(r"mid_block\.resnets\.(\d+)\.(\w+)\.(.*)", k)
    if m:
        return "middle_block.%d.%s.%s" % (2 * int(m[1]), RESNET[m[2]], m[3])
    m = re.match(r"(down|up)_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", k)
    if m:
        i, j, rest = int(m[2]), int(m[4]), m[5]
        n = 1 + i * (L + 1) + j if m[1] == "down" else i * (L + 1) + j
        blocks = "input_blocks" if m[1] == "down" else "output_blocks"
        if m[3] == "attentions":
            return "%s.%d.1.%s" % (blocks, n, rest)
        name, tail = rest.split(".", 1)
        return "%s.%d.0.%s.%s" % (blocks, n, RESNET[name], tail)
    m = re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", k)
    if m:
        return "input_blocks.%d.0.op.%s" % ((int(m[1]) + 1) * (L + 1), m[2])
    m = re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", k)
    if m:
        i = int(m[1])
        return "output_blocks.%d.%d.conv.%s" % (i * (L + 1) + L, 2 if cross_up[i] else 1, m[2])
    raise KeyError(k)


def vae_to_ldm(k, cfg):
    n = len(cfg["block_out_channels"])
    k = k.replace("conv_norm_out", "norm_out").replace("conv_shortcut", "nin_shortcut")
    m = re.match(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.*)", k)
    if m:
        return "%s.mid.block_%d.%s" % (m[1], int(m[2]) + 1, m[3])
    m = re.match(r"(encoder|decoder)\.mid_block\.attentions\.0\.(group_norm|to_q|to_k|to_v|to_out\.0)\.(.*)", k)
    if m:
        return "%s.mid.attn_1.%s.%s" % (m[1], VAE_ATTN[m[2]], m[3])
    m = re.match(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", k)
    if m:
        return "encoder.down.%s.block.%s.%s" % (m[1], m[2], m[3])
    m = re.match(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", k)
    if m:
        return "encoder.down.%s.downsample.conv.%s" % (m[1], m[2])
    m = re.match(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", k)
    if m:
        return "decoder.up.%d.block.%s.%s" % (n - 1 - int(m[1]), m[2], m[3])
    m = re.match(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", k)
    if m:
        return "decoder.up.%d.upsample.conv.%s" % (n - 1 - int(m[1]), m[2])
    return k


def check(part, names, convert):
    """names: diffusers key -> (ldm key, ldm shape). Each tensor holds its index; the converter must
    bring index i back under diffusers key i."""
    keys = sorted(names)
    ckpt = {names[k][0]: torch.tensor(float(i)).expand(names[k][1]) for i, k in enumerate(keys)}  # no memory
    out = convert(ckpt)
    assert sorted(out) == keys, (part, sorted(set(keys) ^ set(out))[:5])
    for i, k in enumerate(keys):
        assert float(out[k].flatten()[0]) == float(i), (part, k)


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/manifest"
    for preset in ("tiny", "sd15"):
        write(out_dir, preset, PRESETS[preset])


def write(out_dir, preset, cfg):
    with torch.device("meta"):
        unet = UNet2DConditionModel(**cfg["unet"])
        vae = AutoencoderKL(**cfg["vae"])
        clip = CLIPTextModel(CLIPTextConfig(**cfg["clip"]))
    lines = []
    u = {k: ("model.diffusion_model." + unet_to_ldm(k, cfg["unet"]), tuple(t.shape)) for k, t in unet.state_dict().items()}
    check("unet", u, lambda c: sfu.convert_ldm_unet_checkpoint(c, dict(unet.config)))
    lines += ["%s unet %s" % (v[0], k) for k, v in u.items()]
    v = {}
    for k, t in vae.state_dict().items():
        shape = tuple(t.shape)
        if re.search(r"mid_block\.attentions\.0\.to_(q|k|v|out\.0)\.weight", k):
            shape = shape + (1, 1)  # LDM stores them as 1x1 convs
        v[k] = ("first_stage_model." + vae_to_ldm(k, cfg["vae"]), shape)
    check("vae", v, lambda c: sfu.convert_ldm_vae_checkpoint(c, dict(vae.config)))
    lines += ["%s vae %s" % (w[0], k) for k, w in v.items()]
    c = {"text_model." + k: ("cond_stage_model.transformer.text_model." + k, tuple(t.shape))
         for k, t in clip.state_dict().items()}
    conv = lambda ck: {("text_model." + k if not k.startswith("text_model.") else k): t  # noqa: E731
                       for k, t in sfu.convert_ldm_clip_checkpoint(ck).items()}
    check("text_encoder", c, conv)
    lines += ["%s text_encoder %s" % (w[0], k) for k, w in c.items()]
    with open(os.path.join(out_dir, preset + "-ldm.txt"), "w") as f:
        f.write("\n".join(sorted(lines)) + "\n")


if __name__ == "__main__":
    main()
