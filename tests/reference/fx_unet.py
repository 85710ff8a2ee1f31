"""UNet fixtures: noise_pred for a CFG batch, plus time embeddings."""

import torch

from ref_common import save_fixture


@torch.no_grad()
def generate(pipe, prompt_embeds_uncond_cond):
    unet = pipe.unet
    ehs = prompt_embeds_uncond_cond  # [2,77,32]: (negative "", prompt), CFG order
    cases = [("unet_2x8x8", (2, 4, 8, 8), 200, [981, 501, 1]),
             ("unet_2x6x8", (2, 4, 6, 8), 201, [761]),
             ("unet_2x5x7", (2, 4, 5, 7), 202, [999])]
    for name, shape, seed, ts in cases:
        sample = torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed), dtype=torch.float32)
        preds = []
        for t in ts:
            preds.append(unet(sample, torch.tensor(t, dtype=torch.int64), encoder_hidden_states=ehs,
                              return_dict=False)[0])
        tt = torch.tensor(ts, dtype=torch.int64)
        t_proj = unet.time_proj(tt)
        t_emb = unet.time_embedding(t_proj)
        save_fixture(name, {
            "sample": sample, "timesteps": tt, "encoder_hidden_states": ehs,
            "noise_pred": torch.stack(preds), "time_proj": t_proj, "time_embedding": t_emb,
        }, {
            "what": "unet(sample, t, encoder_hidden_states).sample for each t",
            "sample_seed": seed,
            "encoder_hidden_states": "text_encoder last_hidden_state of ['', 'a photo of an astronaut riding a horse on mars'] (CFG batch: uncond first)",
            "noise_pred": "[T,B,4,h,w], noise_pred[i] for timesteps[i] (scalar int64 t broadcast over the batch)",
            "time_proj": "[T,32] sinusoidal embedding (flip_sin_to_cos=True: cos half first, freq_shift=0, max_period 10000)",
            "time_embedding": "[T,128] linear_1 -> SiLU -> linear_2",
            "odd_sizes": "latent sides not divisible by 2 make diffusers upsample to the skip's size (forward_upsample_size)",
        })
