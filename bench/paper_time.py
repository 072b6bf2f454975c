"""Where the time of a finished ``make paper`` goes, read back from its run directories (nothing is rerun).

    make paper                                       # the study (its console prints each run's total too)
    python -m bench.paper_time                       # toy, seed 0 -> bench/results/paper_time-toy-<machine>.json
    python -m bench.paper_time --profile toy --model toy-qwen2.5-omni --seed 1 --out /tmp/t.json

Per Table 2 run: its wall time (from its ``experiment.json``, written first, to ``run_complete.json``, written last),
the seconds its evaluations took per evaluation set (``seconds`` of every ``metrics.json`` the run wrote: step 0,
each checkpoint, the final model; ``test`` = MMAU test-mini or the toy test, ``mmar`` = MMAR or the toy's mixed
test, ``val``), the rest (training, checkpoint saves, model loading) and the silent-audio controls' seconds per set.
The one-time builds before the first run (toy world, mixed test, tiny model, toy base) are timed from their cache
folders (first file to last file written). File times measure what the runs spent on this machine, nothing else
running beside them being the reader's to ensure; the machine is named in the result.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench.machine import write_result
from data.run_files import COMPLETE_MARKER, EXPERIMENT_FILE, METRICS_FILE


def _seconds(path: Path) -> float:
    try:
        value = json.loads(path.read_text()).get("seconds")
    except (OSError, ValueError):
        return 0.0
    return float(value) if isinstance(value, (int, float)) else 0.0


def _span(files: list[Path]) -> float | None:
    """Seconds from the first to the last modification among ``files`` (None if there are none)."""
    times = [f.stat().st_mtime for f in files if f.is_file()]
    return round(max(times) - min(times), 1) if times else None


def run_times(run_dir: Path) -> dict[str, Any]:
    """The wall time of one run directory and its evaluation and silent-control seconds per set."""
    evals: dict[str, float] = {}
    silent: dict[str, float] = {}
    for metrics in sorted(run_dir.rglob(METRICS_FILE)):
        rel = metrics.relative_to(run_dir).parts
        if metrics.parent == run_dir or len(rel) < 2:
            continue  # the final model's test metrics, copied from its checkpoint's evaluation: counted there
        folder = rel[-2]
        if rel[0] == "silent":
            silent[folder] = silent.get(folder, 0.0) + _seconds(metrics)
        elif folder.endswith("-silent"):
            key = folder.removesuffix("-silent")
            silent[key] = silent.get(key, 0.0) + _seconds(metrics)
        else:
            evals[folder] = evals.get(folder, 0.0) + _seconds(metrics)
    if (run_dir / METRICS_FILE).is_file() and not list(run_dir.glob("checkpoint-*")):  # direct: test at the top
        evals["test"] = evals.get("test", 0.0) + _seconds(run_dir / METRICS_FILE)
    wall = _span([run_dir / EXPERIMENT_FILE, run_dir / COMPLETE_MARKER])
    out: dict[str, Any] = {"wall_s": wall, "eval_s": {k: round(v, 1) for k, v in sorted(evals.items())},
                           "silent_s": {k: round(v, 1) for k, v in sorted(silent.items())}}  # fmt: skip
    if wall is not None:
        out["train_and_rest_s"] = round(wall - sum(evals.values()), 1)
    return out


def cache_builds(cache: Path) -> dict[str, float | None]:
    """Seconds each one-time build under ``cache`` took (first to last file written in its folder)."""
    out: dict[str, float | None] = {}
    for prefix in ("toy-world", "toy-mix", "tiny", "toy-instruct", "toy-qwen2.5-omni"):
        for folder in sorted(cache.glob(f"{prefix}-*")):
            if folder.is_dir() and not folder.name.endswith((".partial", ".lock")):
                out[folder.name] = _span([p for p in folder.rglob("*") if p.is_file()])
    return out


def main(argv: list[str] | None = None) -> int:
    from analysis.paper_numbers import TABLE2_EXPERIMENTS
    from experiments.paths import output_root
    from experiments.profiles import model_slug

    ap = argparse.ArgumentParser(prog="python -m bench.paper_time", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--profile", default="toy")
    ap.add_argument("--model", default=None, help="another model than the profile's own (as make paper MODEL=)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="result file (default bench/results/paper_time-<profile>-...)")
    args = ap.parse_args(argv)
    root = output_root()
    study = root / args.profile / (model_slug(args.model) if args.model else "")
    runs = {name: run_times(study / name / f"seed{args.seed}") for name in TABLE2_EXPERIMENTS
            if (study / name / f"seed{args.seed}" / COMPLETE_MARKER).is_file()}  # fmt: skip
    if not runs:
        print(f"no finished Table 2 run of seed {args.seed} under {study}: run `make paper` first")
        return 2
    total_runs = sum(r["wall_s"] or 0.0 for r in runs.values())
    silent = sum(sum(r["silent_s"].values()) for r in runs.values())
    result = {"profile": args.profile, "model": args.model, "seed": args.seed, "study": str(study),
              "one_time_builds_s": cache_builds(root / "cache"), "runs": runs,
              "runs_total_s": round(total_runs, 1), "silent_total_s": round(silent, 1)}  # fmt: skip
    stem = f"paper_time-{args.profile}" + (f"-{model_slug(args.model)}" if args.model else "")
    path = write_result(result, stem, args.out)
    for name, r in runs.items():
        evals = ", ".join(f"{k} {v:.0f} s" for k, v in r["eval_s"].items())
        print(f"{name:9s} {r['wall_s']:6.0f} s  (evaluations: {evals})")
    print(f"runs {total_runs:.0f} s, silent controls {silent:.0f} s; one-time builds: {result['one_time_builds_s']}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
