"""Shared helpers for the reference generator: determinism and fixture writing."""

import json
import math
import os

import numpy as np
import torch
from safetensors.torch import save_file

# Root of the committed fixtures; generate.py may override it (see set_out_dir).
OUT_DIR = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "fixtures"))


def set_out_dir(path):
    global OUT_DIR
    OUT_DIR = path


def out_path(*parts):
    p = os.path.join(OUT_DIR, *parts)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    return p


def deterministic():
    """Single thread and deterministic kernels so reruns give identical bytes."""
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)
    np.random.seed(0)


def _plain(obj):
    """Make params JSON-friendly (tensors/numpy scalars -> lists/numbers)."""
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        # strict JSON has no Infinity/NaN (e.g. DPM's lambda_min_clipped = -inf): spell them as strings
        return float(obj) if math.isfinite(obj) else str(float(obj))
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def write_json(name, obj):
    with open(out_path(name), "w", encoding="utf-8") as f:
        json.dump(_plain(obj), f, indent=1, ensure_ascii=False, allow_nan=False)
        f.write("\n")


def save_fixture(name, tensors, meta):
    """Write <name>.safetensors (contiguous CPU tensors) and <name>.json (meta).

    The JSON lists every tensor with shape and dtype so a reader can check it
    without parsing safetensors first.
    """
    clean = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    save_file(clean, out_path(name + ".safetensors"), metadata={"generator": "tests/reference/generate.py"})
    meta = dict(meta)
    meta["tensors"] = {k: {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")}
                       for k, v in clean.items()}
    write_json(name + ".json", meta)
