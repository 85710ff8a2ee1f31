"""tests/gpu/gpu_results.py: joins the JSON lines of bench/gpu_render and bench/diffusers_gpu.py into
the issue's record (bench/results/gpu-latest.json: card, date, and for each batch
diffq_images_per_s, diffusers_images_per_s, diffq_peak_mib, diffusers_peak_mib) and prints a table.
Standard library only: tests/gpu/check.sh runs it with the device's python3.

    python3 tests/gpu/gpu_results.py --card NAME --diffq D.jsonl --diffusers P.jsonl -o OUT.json
        [--note TEXT] [--model-init-s S]

A side whose file is missing or holds no line for a batch gets null there; lines that are not
JSON objects are skipped with a warning (a run cut off mid-line). Exit 0, or 2 on bad arguments.
"""

import argparse
import datetime
import json
import os
import sys


def read_lines(path):
    rows = {}
    if not path or not os.path.exists(path):
        return rows
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                print(f"gpu_results: {path}:{n}: not JSON, skipped", file=sys.stderr)
                continue
            if isinstance(obj, dict) and isinstance(obj.get("batch"), int):
                rows[obj["batch"]] = obj
    return rows


def fmt(v, spec):
    """v formatted by spec ("12.3f"), or "-" right-aligned in the same width when missing."""
    return "-".rjust(int(spec.split(".")[0])) if v is None else format(v, spec)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--card", required=True)
    ap.add_argument("--diffq")
    ap.add_argument("--diffusers")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--note", default="")
    ap.add_argument("--model-init-s", type=float)
    args = ap.parse_args()
    dq, pt = read_lines(args.diffq), read_lines(args.diffusers)
    any_line = next(iter(dq.values()), None) or next(iter(pt.values()), None) or {}
    batches = []
    for b in sorted(set(dq) | set(pt)):
        d, p = dq.get(b, {}), pt.get(b, {})
        row = {
            "batch": b,
            "diffq_images_per_s": d.get("images_per_s"),
            "diffusers_images_per_s": p.get("images_per_s"),
            "diffq_peak_mib": d.get("peak_mib"),
            "diffusers_peak_mib": p.get("peak_mib"),
            "diffq_seconds": d.get("seconds"),
            "diffusers_seconds": p.get("seconds"),
        }
        if row["diffq_images_per_s"] and row["diffusers_images_per_s"]:
            row["speedup"] = round(row["diffq_images_per_s"] / row["diffusers_images_per_s"], 4)
        batches.append(row)
    goal = {"batch_8_min": 1.3, "batch_1_min": 1.0}
    by = {r["batch"]: r.get("speedup") for r in batches}
    if 1 in by and 8 in by and by[1] is not None and by[8] is not None:
        goal["met"] = by[8] >= 1.3 and by[1] >= 1.0
    record = {
        "card": args.card,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
        "size": any_line.get("size"), "steps": any_line.get("steps"),
        "guidance": any_line.get("guidance"), "model": any_line.get("model"),
        "diffq_precision": next(iter(dq.values()), {}).get("precision"),
        "diffq_cuda_graphs": next(iter(dq.values()), {}).get("cuda_graphs"),
        "diffq_layout": next(iter(dq.values()), {}).get("layout"),
        "diffq_attention": next(iter(dq.values()), {}).get("attention"),
        "diffq_conv_search": next(iter(dq.values()), {}).get("conv_search"),
        "diffusers": next(iter(pt.values()), {}).get("diffusers"),
        "diffusers_precision": next(iter(pt.values()), {}).get("precision"),
        "torch": next(iter(pt.values()), {}).get("torch"),
        "attention": next(iter(pt.values()), {}).get("attention"),
        "model_init_s": args.model_init_s,
        "note": args.note,
        "batches": batches,
        "goal": goal,
    }
    with open(args.output, "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")
    who = (f"diffusers {record['diffusers']} {record['diffusers_precision']} ({record['attention']})"
           if pt else "no diffusers result")
    print(f"benchmark on {args.card}: {record['size']}x{record['size']}, {record['steps']} steps, "
          f"CFG {record['guidance']}, diffq {record['diffq_precision'] or '(no result)'} vs {who}")
    if record["diffq_cuda_graphs"]:
        print(f"diffq CUDA graphs: {record['diffq_cuda_graphs']}; layout {record['diffq_layout']}; "
              f"attention {record['diffq_attention']}; conv search {record['diffq_conv_search']}")
    print(f"{'batch':>5} {'diffq img/s':>12} {'diffusers img/s':>16} {'ratio':>6} "
          f"{'diffq MiB':>10} {'diffusers MiB':>14}")
    for r in batches:
        print(f"{r['batch']:>5} {fmt(r['diffq_images_per_s'], '12.3f')} "
              f"{fmt(r['diffusers_images_per_s'], '16.3f')} {fmt(r.get('speedup'), '6.2f')} "
              f"{fmt(r['diffq_peak_mib'], '10.0f')} {fmt(r['diffusers_peak_mib'], '14.0f')}")
    if "met" in goal:
        print(f"goal (batch 8 >= 1.3x, batch 1 >= 1.0x): {'met' if goal['met'] else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
