#!/usr/bin/env python3
# tests/reference/safetensors_samples.py: writes small safetensors files with the reference
# `safetensors` package, so tests/unit/test_safetensors.c reads a file our writer did not make.
#   /work/refenv/bin/python tests/reference/safetensors_samples.py tests/fixtures/safetensors
import os
import sys

import torch
from safetensors.torch import save_file

out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/safetensors"
os.makedirs(out, exist_ok=True)
tensors = {
    "a.f32": torch.arange(6, dtype=torch.float32).reshape(2, 3) / 4,
    "b.f16": torch.tensor([1.5, -2.0, 65504.0], dtype=torch.float16),
    "c.bf16": torch.tensor([[0.5], [-3.0]], dtype=torch.bfloat16),
    "d.i64": torch.arange(5, dtype=torch.int64),
    "e.empty": torch.zeros(0, 4, dtype=torch.float32),
    "f.scalar": torch.tensor(7.25, dtype=torch.float32),
}
save_file(tensors, os.path.join(out, "reference.safetensors"), metadata={"format": "pt", "note": "diffq"})
