"""Scheduler fixtures: timestep/sigma tables and denoising trajectories."""

import inspect
import os

import torch
from diffusers import (DDIMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler,
                       EulerDiscreteScheduler, LMSDiscreteScheduler, PNDMScheduler)

import ref_common
from ref_common import save_fixture, write_json

# name -> (class, extra config); every scheduler is built the diffusers way:
# Cls.from_config(<SD 1.5 scheduler config>, **extra), as users swap schedulers.
# SD 1.5's file has no timestep_spacing, and from_config does not carry keys
# that were defaults, so each class keeps its OWN default: PNDM/DDIM "leading",
# Euler/Euler a/LMS/DPM++ "linspace" (steps_offset 1 is carried over).
SCHEDULERS = {
    "pndm": (PNDMScheduler, {}),
    "ddim": (DDIMScheduler, {}),
    "euler": (EulerDiscreteScheduler, {}),
    "euler_a": (EulerAncestralDiscreteScheduler, {}),
    "lms": (LMSDiscreteScheduler, {}),
    "dpmpp_2m": (DPMSolverMultistepScheduler, {}),
    "dpmpp_2m_karras": (DPMSolverMultistepScheduler, {"use_karras_sigmas": True}),
}
STEPS = [1, 2, 3, 5, 10, 20, 25, 50]
SPACINGS = ["leading", "trailing", "linspace"]


def sd15_config():
    """SD 1.5's scheduler config as the pipeline loads it from tiny-sd/scheduler.
    Always from the file: pipe.scheduler is swapped while fixtures are made."""
    s = PNDMScheduler.from_pretrained(os.path.join(ref_common.OUT_DIR, "tiny-sd"), subfolder="scheduler",
                                      local_files_only=True)
    assert s.config.timestep_spacing == "leading" and s.config.steps_offset == 1
    return s.config


def make(name, **more):
    cls, extra = SCHEDULERS[name]
    return cls.from_config(sd15_config(), **{**extra, **more})


def _nums(t):
    return [float(x) if t.is_floating_point() else int(x) for x in t.flatten().tolist()]


def tables(pipe):
    # _use_default_values is diffusers bookkeeping built from a set (random order): leave it out
    base = {k: v for k, v in sd15_config().items() if k != "_use_default_values"}
    out = {"base_config": base,
           "base_config_defaulted_keys": sorted(sd15_config().get("_use_default_values", [])),
           "defaulted_keys_note": "absent from SD 1.5's file; from_config gives each class its own default for these",
           "schedulers": {}}
    for name in SCHEDULERS:
        entry = {"class": SCHEDULERS[name][0].__name__, "extra_config": SCHEDULERS[name][1], "configs": {},
                 "tables": []}
        for spacing in SPACINGS:
            s = make(name, timestep_spacing=spacing)
            entry["configs"][spacing] = {k: v for k, v in s.config.items() if not k.startswith("_")}
            for n in STEPS:
                s = make(name, timestep_spacing=spacing)
                row = {"spacing": spacing, "steps": n}
                try:
                    s.set_timesteps(n, device="cpu")
                except Exception as e:  # record what diffusers refuses
                    row["error"] = f"{type(e).__name__}: {e}"
                    entry["tables"].append(row)
                    continue
                row["timesteps"] = _nums(s.timesteps)
                row["timesteps_dtype"] = str(s.timesteps.dtype).replace("torch.", "")
                row["len"] = len(s.timesteps)
                if getattr(s, "sigmas", None) is not None:
                    row["sigmas"] = _nums(s.sigmas)
                    row["sigmas_dtype"] = str(s.sigmas.dtype).replace("torch.", "")
                ins = s.init_noise_sigma
                row["init_noise_sigma"] = float(ins)
                entry["tables"].append(row)
        out["schedulers"][name] = entry
    s = make("pndm")
    out["train_schedule"] = {
        "betas": _nums(s.betas), "alphas_cumprod": _nums(s.alphas_cumprod),
        "note": "float32; betas = linspace(sqrt(0.00085), sqrt(0.012), 1000, float32)**2 (scaled_linear)",
    }
    write_json("schedulers.json", out)


@torch.no_grad()
def trajectory(pipe, name, prompt_embeds, seed, steps, height=64, width=64, guidance=7.5, spacing=None):
    """Run the pipeline's denoising loop by hand (recording every step), and
    check it against pipe(...) with the same inputs via callback_on_step_end."""
    more = {"timestep_spacing": spacing} if spacing else {}
    batch = prompt_embeds.shape[0] // 2
    # 1) the pipeline itself, capturing latents after each step
    pipe.scheduler = make(name, **more)
    seen = []

    def cb(p, i, t, kw):
        seen.append(kw["latents"].clone())
        return {}

    neg, pos = prompt_embeds.chunk(2)
    final = pipe(prompt_embeds=pos, negative_prompt_embeds=neg, height=height, width=width,
                 num_inference_steps=steps, guidance_scale=guidance, output_type="latent",
                 generator=torch.Generator("cpu").manual_seed(seed), callback_on_step_end=cb).images
    # 2) the same loop by hand
    sched = make(name, **more)
    sched.set_timesteps(steps, device="cpu")
    gen = torch.Generator("cpu").manual_seed(seed)
    lat = torch.randn((batch, 4, height // 8, width // 8), generator=gen, dtype=torch.float32)
    init = lat * sched.init_noise_sigma
    lat = init
    rec = {"timesteps": [], "model_input": [], "noise_pred_uncond": [], "noise_pred_text": [], "noise_pred": [],
           "latents": [], "step_noise": []}
    stochastic = name == "euler_a"
    # as StableDiffusionPipeline.prepare_extra_step_kwargs: eta=0.0 and the
    # generator only where step() accepts them
    params = inspect.signature(sched.step).parameters
    step_kw = {k: v for k, v in (("eta", 0.0), ("generator", gen)) if k in params}
    for i, t in enumerate(sched.timesteps):
        x = torch.cat([lat] * 2)
        x = sched.scale_model_input(x, t)
        eps = pipe.unet(x, t, encoder_hidden_states=prompt_embeds, return_dict=False)[0]
        u, c = eps.chunk(2)
        eps_cfg = u + guidance * (c - u)
        if stochastic:  # the step draws randn(shape) from the same generator; record that draw
            peek = torch.Generator("cpu")
            peek.set_state(gen.get_state())
            rec["step_noise"].append(torch.randn(lat.shape, generator=peek, dtype=torch.float32))
        prev = lat
        lat = sched.step(eps_cfg, t, lat, **step_kw, return_dict=False)[0]
        if stochastic:  # redo the ancestral step with the recorded draw: proves it is the one used
            s_from, s_to = sched.sigmas[i], sched.sigmas[i + 1]
            up = (s_to**2 * (s_from**2 - s_to**2) / s_from**2) ** 0.5
            down = (s_to**2 - up**2) ** 0.5
            x0 = prev - s_from * eps_cfg
            redo = prev + (prev - x0) / s_from * (down - s_from) + rec["step_noise"][-1] * up
            assert torch.equal(redo, lat), f"{name}: ancestral step not reproduced at step {i}"
        assert torch.equal(lat, seen[i]), f"{name}: manual loop differs from pipeline at step {i}"
        rec["timesteps"].append(t.reshape(1).double())
        for k, v in (("model_input", x), ("noise_pred_uncond", u), ("noise_pred_text", c), ("noise_pred", eps_cfg),
                     ("latents", lat)):
            rec[k].append(v)
    assert torch.equal(lat, final)
    tensors = {"prompt_embeds": prompt_embeds, "initial_latents": init,
               "timesteps": torch.cat(rec["timesteps"])}
    for k in ("model_input", "noise_pred_uncond", "noise_pred_text", "noise_pred", "latents", "step_noise"):
        if rec[k]:
            tensors[k] = torch.stack(rec[k])
    label = f"traj_{name}" + (f"_{spacing}" if spacing else "") + f"_{steps}steps"
    save_fixture(label, tensors, {
        "what": f"StableDiffusionPipeline denoising loop with {SCHEDULERS[name][0].__name__}, recorded step by step "
                "(checked equal to pipe(..., callback_on_step_end) latents)",
        "scheduler_config": {k: v for k, v in sched.config.items() if not k.startswith("_")},
        "seed": seed, "steps": steps, "height": height, "width": width, "guidance_scale": guidance,
        "init_noise_sigma": float(sched.init_noise_sigma),
        "prompt_embeds": "[2B,77,32] = cat(negative, positive): text_encoder of '' and the prompt",
        "initial_latents": "torch.randn((B,4,H/8,W/8), generator=Generator('cpu').manual_seed(seed)) * init_noise_sigma",
        "timesteps": "float64 copy of scheduler.timesteps (one row per UNet call; PNDM repeats its 2nd timestep)",
        "model_input": "[S,2B,4,h,w] scale_model_input(cat([latents]*2), t)",
        "noise_pred": "[S,B,4,h,w] uncond + guidance*(text-uncond)",
        "latents": "[S,B,4,h,w] scheduler.step(noise_pred, t, latents, generator).prev_sample after each step",
        "step_noise": "euler_a only: the randn(latents.shape) each step draws from the SAME generator that drew the "
                      "initial latents (diffusers passes the pipeline generator to step)",
    })
    return label


def generate(pipe, prompt_embeds):
    tables(pipe)
    labels = []
    for name in SCHEDULERS:
        labels.append(trajectory(pipe, name, prompt_embeds, seed=31, steps=5))
    labels.append(trajectory(pipe, "euler_a", prompt_embeds, seed=32, steps=4, height=48, width=64))
    labels.append(trajectory(pipe, "ddim", prompt_embeds, seed=33, steps=4, spacing="trailing"))
    labels.append(trajectory(pipe, "euler_a", prompt_embeds, seed=34, steps=4, spacing="leading"))
    labels.append(trajectory(pipe, "dpmpp_2m", prompt_embeds, seed=36, steps=4, spacing="leading"))
    labels.append(trajectory(pipe, "pndm", prompt_embeds, seed=35, steps=20))
    return labels
