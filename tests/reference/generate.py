#!/usr/bin/env python3
"""Reference generator: builds the tiny SD 1.x model and writes every fixture
under tests/fixtures/ (see README.md). Run with the pinned reference env:
    /work/refenv/bin/python tests/reference/generate.py [--out DIR]
"""

import argparse
import os
import sys
import time

# Everything is built locally: make any attempt to reach the Hub fail fast.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.dont_write_bytecode = True  # keep tests/reference clean (it ships in EXTRA_DIST)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
from diffusers import StableDiffusionPipeline  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

import ldm_keys  # noqa: E402
import ref_common  # noqa: E402
import tiny_model  # noqa: E402


def check_single_file(path, folder, pipe):
    """Reload the LDM checkpoint with diffusers' own converter and compare
    every tensor with the folder's; then flip one tensor per component to
    prove the weights really came from the single file."""
    def load(p):
        return StableDiffusionPipeline.from_single_file(
            p, config=folder, local_files_only=True, torch_dtype=torch.float32,
            safety_checker=None, requires_safety_checker=False)
    q = load(path)
    for comp in ("text_encoder", "unet", "vae"):
        tiny_model.assert_same_weights(getattr(q, comp), getattr(pipe, comp), "single-file " + comp)
    ck = load_file(path)
    canary = {"model.diffusion_model.output_blocks.2.1.conv.weight": ("unet", "up_blocks.0.upsamplers.0.conv.weight"),
              "first_stage_model.decoder.mid.attn_1.proj_out.weight": ("vae", "decoder.mid_block.attentions.0.to_out.0.weight"),
              "cond_stage_model.transformer.text_model.final_layer_norm.weight": ("text_encoder", "final_layer_norm.weight")}
    for k in canary:
        ck[k] = -ck[k]
    tmp = path + ".canary.safetensors"
    save_file(ck, tmp)
    try:
        q = load(tmp)
        for ldm_key, (comp, key) in canary.items():
            got = getattr(q, comp).state_dict()[key]
            want = -getattr(pipe, comp).state_dict()[key]
            assert torch.equal(got.reshape(-1), want.reshape(-1).float()), f"canary {ldm_key} not read from file"
    finally:
        os.remove(tmp)


def check_index(out_dir):
    """Every generated file must be named in the fixtures README (PNGs by images/*.png)."""
    readme = os.path.join(out_dir, "README.md")
    if not os.path.exists(readme):  # a scratch --out folder: nothing to check against
        return []
    with open(readme, encoding="utf-8") as f:
        text = f.read()
    missing = []
    for root, _, files in os.walk(out_dir):
        for f in files:
            rel = os.path.relpath(os.path.join(root, f), out_dir)
            stem = rel.rsplit(".", 1)[0] if rel.endswith((".json", ".safetensors")) else rel
            if rel.endswith(".png"):
                stem = "images/*.png"
            if rel != "README.md" and f"`{stem}`" not in text and f"`{rel}`" not in text:
                missing.append(rel)
    return sorted(missing)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=ref_common.OUT_DIR, help="fixtures folder (default: tests/fixtures)")
    args = ap.parse_args()
    ref_common.set_out_dir(os.path.abspath(args.out))
    ref_common.deterministic()
    t0 = time.time()

    folder = ref_common.out_path("tiny-sd", "model_index.json").rsplit("/", 1)[0]
    text, unet, vae = tiny_model.build_models()
    tiny_model.save_folder(folder, text, unet, vae)
    pipe = tiny_model.load_pipeline(folder)
    for comp, m in (("text_encoder", text), ("unet", unet), ("vae", vae)):
        tiny_model.assert_same_weights(getattr(pipe, comp), m, "reloaded " + comp)
    # SD 1.5's well-known ids for its README prompt: proves vocab.json/merges.txt
    ids = pipe.tokenizer("a photo of an astronaut riding a horse").input_ids
    assert ids == [49406, 320, 1125, 539, 550, 18376, 6765, 320, 4558, 49407], ids
    assert (len(pipe.tokenizer), pipe.tokenizer.bos_token_id, pipe.tokenizer.eos_token_id,
            pipe.tokenizer.pad_token_id) == (49408, 49406, 49407, 49407)
    print(f"[{time.time() - t0:5.1f}s] tiny-sd folder written and reloaded", flush=True)

    single = ref_common.out_path("tiny-sd.safetensors")
    ck = ldm_keys.to_ldm(ldm_keys.f16(pipe.text_encoder.state_dict()), ldm_keys.f16(pipe.unet.state_dict()),
                         ldm_keys.f16(pipe.vae.state_dict()), pipe.unet.config, pipe.vae.config)
    save_file(ck, single, metadata={"format": "pt"})  # one key: safetensors writes the map in random order
    check_single_file(single, folder, pipe)
    print(f"[{time.time() - t0:5.1f}s] tiny-sd.safetensors ({len(ck)} tensors) verified via from_single_file", flush=True)

    import fx_latents
    import fx_pipeline
    import fx_schedulers
    import fx_text_encoder
    import fx_tokenizer
    import fx_unet
    import fx_vae

    cases = fx_tokenizer.generate(pipe.tokenizer)
    print(f"[{time.time() - t0:5.1f}s] tokenizer: {len(cases)} prompts, "
          f"{sum(c['openai_clip_differs'] for c in cases)} differ from OpenAI/ftfy rules", flush=True)
    fx_text_encoder.generate(pipe)
    neg_pos = pipe.encode_prompt("a photo of an astronaut riding a horse on mars", "cpu", 1, True, "")
    embeds = torch.cat([neg_pos[1], neg_pos[0]])
    print(f"[{time.time() - t0:5.1f}s] text encoder", flush=True)
    fx_vae.generate(pipe)
    print(f"[{time.time() - t0:5.1f}s] vae", flush=True)
    fx_unet.generate(pipe, embeds)
    print(f"[{time.time() - t0:5.1f}s] unet", flush=True)
    fx_latents.generate(pipe)
    print(f"[{time.time() - t0:5.1f}s] latents", flush=True)
    fx_schedulers.generate(pipe, embeds)
    print(f"[{time.time() - t0:5.1f}s] schedulers", flush=True)
    fx_pipeline.generate(pipe)
    print(f"[{time.time() - t0:5.1f}s] pipeline images", flush=True)

    import diffusers
    import numpy
    import safetensors
    import transformers
    ref_common.write_json("versions.json", {
        "torch": torch.__version__, "diffusers": diffusers.__version__, "transformers": transformers.__version__,
        "safetensors": safetensors.__version__, "numpy": numpy.__version__,
        "python": sys.version.split()[0],
    })
    unlisted = check_index(ref_common.OUT_DIR)
    for rel in unlisted:
        print(f"warning: {rel} is not described in {ref_common.OUT_DIR}/README.md", flush=True)
    print(f"[{time.time() - t0:5.1f}s] done -> {ref_common.OUT_DIR}", flush=True)
    return 1 if unlisted else 0


if __name__ == "__main__":
    sys.exit(main())
