"""Text encoder fixtures: last_hidden_state and clip-skip embeddings."""

import torch

from ref_common import save_fixture

PROMPTS = ["a photo of an astronaut riding a horse on mars", "",
           "A painting of a lighthouse, oil on canvas, by an old master"]


def clip_skip_embeds(text_encoder, ids, clip_skip):
    """What diffusers' encode_prompt(clip_skip=k) computes: hidden_states[-(k+1)]
    through final_layer_norm. (diffusers 0.42.1 reaches final_layer_norm via
    text_encoder.text_model, which transformers 5.x removed, so the pipeline
    itself raises AttributeError for clip_skip; we do its arithmetic here.)"""
    out = text_encoder(ids, output_hidden_states=True)
    return text_encoder.final_layer_norm(out.hidden_states[-(clip_skip + 1)])


@torch.no_grad()
def generate(pipe):
    tok, te = pipe.tokenizer, pipe.text_encoder
    ids = tok(PROMPTS, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    out = te(ids, output_hidden_states=True)
    hs = torch.stack(out.hidden_states)  # [layers+1, B, 77, 32]; [0] = embeddings
    assert torch.equal(te.final_layer_norm(hs[-1]), out.last_hidden_state)
    pe, _ = pipe.encode_prompt(PROMPTS, "cpu", 1, False)
    assert torch.equal(pe, out.last_hidden_state), "encode_prompt != text_encoder(ids)[0]"
    skip1 = clip_skip_embeds(te, ids, 1)
    skip2 = clip_skip_embeds(te, ids, 2)
    save_fixture("text_encoder", {
        "input_ids": ids, "last_hidden_state": out.last_hidden_state,
        "clip_skip_1": skip1, "clip_skip_2": skip2, "hidden_states": hs,
        "pooler_output": out.pooler_output,
    }, {
        "what": "CLIPTextModel (tiny-sd/text_encoder) on padded ids, no attention mask (SD 1.x passes none: causal mask only)",
        "prompts": PROMPTS,
        "last_hidden_state": "text_encoder(input_ids)[0] == encode_prompt(prompt) (checked)",
        "clip_skip_k": "final_layer_norm(hidden_states[-(k+1)]), diffusers encode_prompt(clip_skip=k) arithmetic",
        "hidden_states": "stack of output_hidden_states: [0]=embeddings (token+position), [i]=after encoder layer i (no final LN)",
        "pooler_output": "last_hidden_state at the first position holding eos_token_id 49407 (unused by SD)",
    })
    return ids, out.last_hidden_state
