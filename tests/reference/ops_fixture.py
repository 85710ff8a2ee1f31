#!/usr/bin/env python3
"""tests/reference/ops_fixture.py: op fixtures from PyTorch/diffusers for test_ops_fixture.c.

Run with the reference env (never in CI; the outputs are committed):
    /work/refenv/bin/python tests/reference/ops_fixture.py tests/fixtures/ops

Each case is <case>.safetensors (F32 tensors: inputs, the module's weights, its output "y") with
<case>.json beside it (the op, its parameters, and each tensor's shape and dtype), following
tests/fixtures/README.md. Inputs are random (seeded); the outputs come from the reference modules
themselves, so the C test checks our ops against torch's semantics (argument order, chunk order,
eps placement), not against our reading of them. torch runs single-threaded on the CPU.
"""
import json
import os
import sys

import torch
import torch.nn.functional as F


def write(out, name, params, tensors):
    from safetensors.torch import save_file
    flat = {k: t.detach().to(torch.float32).contiguous() for k, t in tensors}
    save_file(flat, os.path.join(out, name + ".safetensors"))
    meta = {"op": params.pop("op"), "params": params,
            "tensors": {k: {"shape": list(t.shape), "dtype": "F32"} for k, t in flat.items()}}
    with open(os.path.join(out, name + ".json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
        f.write("\n")


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(1234)
    torch.set_num_threads(1)
    cases = {}

    lin = torch.nn.Linear(24, 10)
    x = torch.randn(2, 5, 24)
    cases["linear"] = ({"op": "linear"},
        [("x", x), ("w", lin.weight), ("b", lin.bias), ("y", lin(x))])

    conv = torch.nn.Conv2d(4, 6, 3, stride=1, padding=1)
    x = torch.randn(2, 4, 9, 7)
    cases["conv2d_s1p1"] = ({"op": "conv2d", "stride": 1, "padding": 1},
        [("x", x), ("w", conv.weight), ("b", conv.bias), ("y", conv(x))])
    down = torch.nn.Conv2d(4, 5, 3, stride=2, padding=1)  # diffusers Downsample2D
    cases["conv2d_s2p1"] = ({"op": "conv2d", "stride": 2, "padding": 1},
        [("x", x), ("w", down.weight), ("b", down.bias), ("y", down(x))])

    gn = torch.nn.GroupNorm(4, 8, eps=1e-6)  # VAE uses eps 1e-6, UNet 1e-5
    with torch.no_grad():
        gn.weight.uniform_(0.5, 1.5)
        gn.bias.uniform_(-0.5, 0.5)
    x = torch.randn(2, 8, 5, 5) * 3 + 2
    cases["group_norm"] = ({"op": "group_norm", "groups": 4, "eps": 1e-6},
        [("x", x), ("gamma", gn.weight), ("beta", gn.bias), ("y", gn(x))])

    ln = torch.nn.LayerNorm(16, eps=1e-5)
    with torch.no_grad():
        ln.weight.uniform_(0.5, 1.5)
        ln.bias.uniform_(-0.5, 0.5)
    x = torch.randn(2, 7, 16)
    cases["layer_norm"] = ({"op": "layer_norm", "eps": 1e-5},
        [("x", x), ("gamma", ln.weight), ("beta", ln.bias), ("y", ln(x))])

    x = torch.randn(3, 11) * 5
    cases["softmax"] = ({"op": "softmax", "dim": -1},
        [("x", x), ("y", torch.softmax(x, dim=-1))])

    # Attention as diffusers' AttnProcessor2_0 runs it: [B, L, H*D] -> [B, H, L, D] -> SDPA.
    b, lq, lk, h, d = 2, 13, 9, 3, 8

    def sdpa(q, k, v, causal):
        def split(t):
            return t.view(b, -1, h, d).transpose(1, 2)
        o = F.scaled_dot_product_attention(split(q), split(k), split(v), is_causal=causal)
        return o.transpose(1, 2).reshape(b, -1, h * d)

    q, k, v = torch.randn(b, lq, h * d), torch.randn(b, lk, h * d), torch.randn(b, lk, h * d)
    cases["attention"] = ({"op": "attention", "heads": h, "causal": False},
        [("q", q), ("k", k), ("v", v), ("y", sdpa(q, k, v, False))])
    q, k, v = torch.randn(b, lq, h * d), torch.randn(b, lq, h * d), torch.randn(b, lq, h * d)
    cases["attention_causal"] = ({"op": "attention", "heads": h, "causal": True},
        [("q", q), ("k", k), ("v", v), ("y", sdpa(q, k, v, True))])

    x = torch.randn(4, 33) * 3
    cases["gelu"] = ({"op": "gelu"},
        [("x", x), ("y", F.gelu(x))])
    cases["silu"] = ({"op": "silu"},
        [("x", x), ("y", F.silu(x))])
    from transformers.activations import QuickGELUActivation
    cases["gelu_quick"] = ({"op": "gelu_quick"},
        [("x", x), ("y", QuickGELUActivation()(x))])

    from diffusers.models.activations import GEGLU
    geglu = GEGLU(12, 7)
    x = torch.randn(2, 5, 12)
    cases["geglu"] = ({"op": "linear+geglu", "module": "diffusers GEGLU(12, 7)"},
        [("x", x), ("w", geglu.proj.weight), ("b", geglu.proj.bias), ("y", geglu(x))])

    x = torch.randn(2, 3, 4, 5)
    cases["upsample"] = ({"op": "upsample_nearest2x"},
        [("x", x), ("y", F.interpolate(x, scale_factor=2.0, mode="nearest"))])

    with torch.no_grad():
        for name, (params, tensors) in cases.items():
            write(out, name, params, tensors)
    print("wrote %d fixtures to %s" % (len(cases), out))


if __name__ == "__main__":
    main()
