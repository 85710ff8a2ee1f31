"""diffusers -> original LDM (CompVis) key names for a single-file SD 1.x
checkpoint, written from the layout of the LDM UNet/VAE (input_blocks,
middle_block, output_blocks; encoder.down.N.block.M, decoder.up.N ...)."""

import torch

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_PREFIX = "cond_stage_model.transformer.text_model."

_UNET_RESNET = [("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("time_emb_proj", "emb_layers.1"),
                ("norm2", "out_layers.0"), ("conv2", "out_layers.3"), ("conv_shortcut", "skip_connection")]


def _move(out, sd, src_prefix, dst_prefix, renames=()):
    """Copy every key under src_prefix to dst_prefix, renaming the first path
    component after the prefix via renames; returns how many moved."""
    n = 0
    for k in [k for k in sd if k.startswith(src_prefix + ".")]:
        rest = k[len(src_prefix) + 1:]
        for a, b in renames:
            if rest == a or rest.startswith(a + "."):
                rest = b + rest[len(a):]
                break
        out[dst_prefix + "." + rest] = sd[k]
        n += 1
    return n


def unet_to_ldm(sd, cfg):
    out = {}
    simple = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
              "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}
    for a, b in simple.items():
        for p in ("weight", "bias"):
            out[f"{b}.{p}"] = sd[f"{a}.{p}"]
    lpb = cfg["layers_per_block"]
    idx = 1
    for i, _ in enumerate(cfg["down_block_types"]):
        for j in range(lpb):
            _move(out, sd, f"down_blocks.{i}.resnets.{j}", f"input_blocks.{idx}.0", _UNET_RESNET)
            _move(out, sd, f"down_blocks.{i}.attentions.{j}", f"input_blocks.{idx}.1")
            idx += 1
        if _move(out, sd, f"down_blocks.{i}.downsamplers.0.conv", f"input_blocks.{idx}.0.op"):
            idx += 1
    _move(out, sd, "mid_block.resnets.0", "middle_block.0", _UNET_RESNET)
    _move(out, sd, "mid_block.attentions.0", "middle_block.1")
    _move(out, sd, "mid_block.resnets.1", "middle_block.2", _UNET_RESNET)
    idx = 0
    for i, _ in enumerate(cfg["up_block_types"]):
        for j in range(lpb + 1):
            _move(out, sd, f"up_blocks.{i}.resnets.{j}", f"output_blocks.{idx}.0", _UNET_RESNET)
            has_attn = _move(out, sd, f"up_blocks.{i}.attentions.{j}", f"output_blocks.{idx}.1") > 0
            if j == lpb:  # the upsampler follows the block's last layer
                _move(out, sd, f"up_blocks.{i}.upsamplers.0.conv", f"output_blocks.{idx}.{2 if has_attn else 1}.conv")
            idx += 1
    assert len(out) == len(sd), "unmapped UNet keys: %s" % sorted(set(sd) - set(_unet_sources(sd, out)))
    return {UNET_PREFIX + k: v for k, v in out.items()}


def _unet_sources(sd, out):
    ids = {id(v) for v in out.values()}
    return [k for k in sd if id(sd[k]) in ids]


_VAE_ATTN = [("group_norm", "norm"), ("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "proj_out")]


def vae_to_ldm(sd, cfg):
    out = {}
    for part in ("encoder", "decoder"):
        for a, b in (("conv_in", "conv_in"), ("conv_out", "conv_out"), ("conv_norm_out", "norm_out")):
            for p in ("weight", "bias"):
                out[f"{part}.{b}.{p}"] = sd[f"{part}.{a}.{p}"]
        _move(out, sd, f"{part}.mid_block.resnets.0", f"{part}.mid.block_1", [("conv_shortcut", "nin_shortcut")])
        _move(out, sd, f"{part}.mid_block.resnets.1", f"{part}.mid.block_2", [("conv_shortcut", "nin_shortcut")])
        attn = {}
        _move(attn, sd, f"{part}.mid_block.attentions.0", f"{part}.mid.attn_1", _VAE_ATTN)
        for k, v in attn.items():  # LDM uses 1x1 convs where diffusers uses linears
            out[k] = v[:, :, None, None] if v.ndim == 2 else v
    for p in ("weight", "bias"):
        out[f"quant_conv.{p}"] = sd[f"quant_conv.{p}"]
        out[f"post_quant_conv.{p}"] = sd[f"post_quant_conv.{p}"]
    n = len(cfg["down_block_types"])
    for i in range(n):
        for j in range(cfg["layers_per_block"]):
            _move(out, sd, f"encoder.down_blocks.{i}.resnets.{j}", f"encoder.down.{i}.block.{j}",
                  [("conv_shortcut", "nin_shortcut")])
        _move(out, sd, f"encoder.down_blocks.{i}.downsamplers.0.conv", f"encoder.down.{i}.downsample.conv")
    for i in range(len(cfg["up_block_types"])):
        ldm = n - 1 - i  # LDM numbers decoder levels from the lowest resolution up
        for j in range(cfg["layers_per_block"] + 1):
            _move(out, sd, f"decoder.up_blocks.{i}.resnets.{j}", f"decoder.up.{ldm}.block.{j}",
                  [("conv_shortcut", "nin_shortcut")])
        _move(out, sd, f"decoder.up_blocks.{i}.upsamplers.0.conv", f"decoder.up.{ldm}.upsample.conv")
    assert len(out) == len(sd), "VAE key count mismatch"
    return {VAE_PREFIX + k: v for k, v in out.items()}


def clip_to_ldm(sd):
    out = {}
    for k, v in sd.items():
        k = k[len("text_model."):] if k.startswith("text_model.") else k  # transformers 4.x names
        out[CLIP_PREFIX + k] = v
    return out


def to_ldm(text_sd, unet_sd, vae_sd, unet_cfg, vae_cfg):
    ckpt = {}
    ckpt.update(unet_to_ldm(unet_sd, unet_cfg))
    ckpt.update(vae_to_ldm(vae_sd, vae_cfg))
    ckpt.update(clip_to_ldm(text_sd))
    return {k: v.contiguous() for k, v in ckpt.items()}


def f16(sd):
    return {k: v.detach().to(torch.float16) for k, v in sd.items()}
