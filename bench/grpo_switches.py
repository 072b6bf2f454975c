"""The GRPO step with each speed switch turned off in turn, against all switches on, in one process and one JSON.

    python -m bench.grpo_switches                          # tiny model, CPU, full fine-tuning
    python -m bench.grpo_switches --shape 7b --lora --lora-dropout 0   # one GPU (shared scoring needs no dropout)

Configurations (each a run of ``bench.grpo_step``, repeated ``--repeats`` times in interleaved order so that drift
in the machine's speed spreads over all of them): ``all_on`` (the defaults), ``no_shared_prefill``,
``no_shared_scoring``, ``no_distinct_clips``, and ``all_off``. Reports each configuration's median seconds per
optimizer step and per phase (after the first step of each run). Writes ``bench/results/grpo_switches-<shape>-<machine>.json``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

CONFIGURATIONS: dict[str, list[str]] = {
    "all_on": [],
    "no_shared_prefill": ["--no-shared-prefill"],
    "no_shared_scoring": ["--no-shared-scoring"],
    "no_distinct_clips": ["--no-distinct-clips"],
    "all_off": ["--no-shared-prefill", "--no-shared-scoring", "--no-distinct-clips"],
}


def main(argv: list[str] | None = None) -> dict:
    from bench.shapes import shape_names

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=shape_names(), default="tiny", help="random weights (bench/shapes.py)")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--lora", action="store_true")
    parser.add_argument("--lora-dropout", type=float, default=0.05)
    parser.add_argument("--completion-tokens", type=int, default=16)
    parser.add_argument("--only", nargs="*", choices=list(CONFIGURATIONS), help="a subset of the configurations")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    from bench.grpo_step import main as grpo_step
    from bench.machine import write_result
    from data.machine import machine_info

    names = args.only or list(CONFIGURATIONS)
    common = ["--shape", args.shape, "--steps", str(args.steps), "--completion-tokens", str(args.completion_tokens)]
    if args.lora:
        common += ["--lora", "--lora-dropout", str(args.lora_dropout)]
    runs: dict[str, list[dict]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for name in names if repeat % 2 == 0 else reversed(names):
                out = Path(tmp) / f"{name}-{repeat}.json"
                runs[name].append(grpo_step([*common, *CONFIGURATIONS[name], "--out", str(out)]))
    configurations = {}
    for name, results in runs.items():
        phases = sorted({k for r in results for k in r["mean_after_first_step"]})
        configurations[name] = {
            "flags": CONFIGURATIONS[name],
            "median_seconds": {
                k: round(statistics.median(r["mean_after_first_step"].get(k, 0.0) for r in results), 4) for k in phases
            },
            "audio_encoder_within_phases": round(
                statistics.median(r["audio_encoder_within_phases"] for r in results), 4
            ),
            "total_per_run": [r["mean_after_first_step"]["total"] for r in results],
            "peak_gpu_memory_gb": max((r["peak_gpu_memory_gb"] or 0) for r in results) or None,
        }
    first = runs[names[0]][0]
    result = {
        "benchmark": "grpo_switches",
        "machine": machine_info(),
        "shape": args.shape,
        "family": first["family"],
        "lora": args.lora,
        "lora_dropout": args.lora_dropout if args.lora else None,
        "steps_per_run": args.steps,
        "repeats": args.repeats,
        "generations": first["generations"],
        "completion_tokens": first["completion_tokens"],
        "clip_seconds": first["clip_seconds"],
        "dtype": first["dtype"],
        "configurations": configurations,
    }
    write_result(result, f"grpo_switches-{args.shape}" + ("-lora" if args.lora else ""), args.out)
    for name, c in configurations.items():
        print(f"{name:>18}: {c['median_seconds']['total']:.3f} s/step  {c['median_seconds']}")
    return result


if __name__ == "__main__":
    main()
