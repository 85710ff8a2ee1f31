"""The tiny SD 1.x-architecture model: configs, seeded random weights rounded
to float16, and the diffusers-format folder (save + offline reload check)."""

import copy
import json
import os

import torch
from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

import clip_vocab

WEIGHT_SEED = 1234

TEXT_CONFIG = dict(
    vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
    num_attention_heads=4, max_position_embeddings=77, hidden_act="quick_gelu",
    layer_norm_eps=1e-5, projection_dim=32,
    # SD 1.5's text_encoder/config.json carries the legacy ids 0/2/1; they only
    # select the pooled output (unused by SD). We use the tokenizer's real ids.
    bos_token_id=49406, eos_token_id=49407, pad_token_id=49407,
)

UNET_CONFIG = dict(
    sample_size=8, in_channels=4, out_channels=4, center_input_sample=False,
    flip_sin_to_cos=True, freq_shift=0,
    down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
    mid_block_type="UNetMidBlock2DCrossAttn",
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
    block_out_channels=(32, 64), layers_per_block=2, downsample_padding=1,
    mid_block_scale_factor=1, act_fn="silu", norm_num_groups=32, norm_eps=1e-5,
    cross_attention_dim=32,
    # diffusers quirk kept from SD 1.x configs: attention_head_dim is really
    # the number of heads (8 heads; head size = channels / 8).
    attention_head_dim=8, use_linear_projection=False,
)

VAE_CONFIG = dict(
    in_channels=3, out_channels=3, latent_channels=4,
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(32, 32, 32, 64), layers_per_block=1, act_fn="silu",
    norm_num_groups=32, sample_size=64, scaling_factor=0.18215,
)

# SD 1.5's scheduler/scheduler_config.json verbatim (runwayml/stable-diffusion-v1-5).
# clip_sample is not a PNDM argument: diffusers drops it on load, so a scheduler
# built with from_config(pipe.scheduler.config) (e.g. DDIM) gets its own default.
# prediction_type/timestep_spacing are absent: defaults epsilon/leading apply.
SCHEDULER_CONFIG = {
    "_class_name": "PNDMScheduler",
    "_diffusers_version": "0.6.0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
    "clip_sample": False,
}

TOKENIZER_KW = dict(
    bos_token="<|startoftext|>", eos_token="<|endoftext|>", unk_token="<|endoftext|>",
    pad_token="<|endoftext|>", model_max_length=77, do_lower_case=True,
)


def _spice_norms(model, gen):
    """Default inits leave norm affines at 1/0, which would hide a missing
    scale or shift in the engine; perturb them."""
    for m in model.modules():
        if isinstance(m, (torch.nn.GroupNorm, torch.nn.LayerNorm)) and m.weight is not None:
            with torch.no_grad():
                m.weight.copy_(1.0 + 0.1 * torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))


def _round_f16(model):
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
        for b in model.buffers():
            if b.is_floating_point():
                b.copy_(b.half().float())
    return model.eval()


def build_models():
    """Return (text_encoder, unet, vae) in float32 whose weights are exact f16 values."""
    torch.manual_seed(WEIGHT_SEED)
    gen = torch.Generator().manual_seed(WEIGHT_SEED + 1)
    text = CLIPTextModel(CLIPTextConfig(**TEXT_CONFIG))
    with torch.no_grad():  # larger embeddings than CLIP's 0.02 init, so tokens matter
        emb = text.embeddings
        emb.token_embedding.weight.copy_(0.5 * torch.randn(emb.token_embedding.weight.shape, generator=gen))
        emb.position_embedding.weight.copy_(0.2 * torch.randn(emb.position_embedding.weight.shape, generator=gen))
    _spice_norms(text, gen)
    unet = UNet2DConditionModel(**UNET_CONFIG)
    _spice_norms(unet, gen)
    with torch.no_grad():  # noise_pred std ~1 like a trained model (default init gives ~0.3)
        unet.conv_out.weight.mul_(3.0)
        unet.conv_out.bias.mul_(3.0)
    vae = AutoencoderKL(**VAE_CONFIG)
    _spice_norms(vae, gen)
    return _round_f16(text), _round_f16(unet), _round_f16(vae)


def save_folder(folder, text, unet, vae):
    """Write the diffusers-format folder with f16 safetensors weights."""
    os.makedirs(folder, exist_ok=True)
    copy.deepcopy(text).half().save_pretrained(os.path.join(folder, "text_encoder"), safe_serialization=True)
    copy.deepcopy(unet).half().save_pretrained(os.path.join(folder, "unet"), safe_serialization=True)
    copy.deepcopy(vae).half().save_pretrained(os.path.join(folder, "vae"), safe_serialization=True)
    os.makedirs(os.path.join(folder, "scheduler"), exist_ok=True)
    with open(os.path.join(folder, "scheduler", "scheduler_config.json"), "w") as f:
        json.dump(SCHEDULER_CONFIG, f, indent=2)
        f.write("\n")
    tok_dir = os.path.join(folder, "tokenizer")
    clip_vocab.write_tokenizer_files(tok_dir)
    tok = CLIPTokenizer.from_pretrained(tok_dir, **TOKENIZER_KW)
    tok.save_pretrained(tok_dir)
    # save_pretrained also writes tokenizer.json (3.5 MB); transformers rebuilds
    # the same tokenizer from vocab.json + merges.txt, so drop it to keep the
    # fixtures small (generate.py checks the reloaded tokenizer on known ids).
    os.remove(os.path.join(tok_dir, "tokenizer.json"))
    # drop how-it-was-loaded keys (is_local, local_files_only): they vary by environment
    cfg_path = os.path.join(tok_dir, "tokenizer_config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg = {k: v for k, v in cfg.items() if k not in ("is_local", "local_files_only")}
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=2, ensure_ascii=False)
        f.write("\n")
    model_index = {
        "_class_name": "StableDiffusionPipeline",
        "_diffusers_version": __import__("diffusers").__version__,
        "feature_extractor": [None, None],
        "image_encoder": [None, None],
        "requires_safety_checker": False,
        "safety_checker": [None, None],
        "scheduler": ["diffusers", "PNDMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    with open(os.path.join(folder, "model_index.json"), "w") as f:
        json.dump(model_index, f, indent=2)
        f.write("\n")


def load_pipeline(folder):
    """Reload the folder offline in float32; this is the pipeline all fixtures use."""
    pipe = StableDiffusionPipeline.from_pretrained(
        folder, torch_dtype=torch.float32, local_files_only=True,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def assert_same_weights(a, b, what):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys(), f"{what}: key sets differ"
    for k in sa:
        assert torch.equal(sa[k].float(), sb[k].float()), f"{what}: {k} differs"
