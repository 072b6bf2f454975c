"""Evaluator throughput against a bare loop of ``model.generate`` over the same batches, per speed switch.

    python -m bench.eval_throughput                                   # tiny model, toy test set, CPU
    python -m bench.eval_throughput --shape 7b --n-items 256 --batch-size 64 --switches   # 7B-shaped, GPU
    python -m bench.eval_throughput --shape qwen3-omni-30b-a3b --n-items 64 --batch-size 32      # any family's shape
    python -m bench.eval_throughput --model Qwen/Qwen2-Audio-7B-Instruct --benchmark mmau.json --audio-dir DIR

For each configuration of the speed switches (``valid_frame_encoder``, ``static_cache``; only the default one
unless ``--switches``; a switch that is not exact for the model's family stands aside, and the configuration then
times the plain path, as ``standing_aside_for_family`` says) three timings over the same items and batches:

- ``bare``: ``model.generate`` alone, batches prepared in advance (audio loaded, features computed, untimed);
- ``evaluator_cold``: the evaluator end to end (batch planning, audio loading, featurisation, generation,
  decoding, scoring, incremental writes), as for a first evaluation;
- ``evaluator_warm``: the evaluator with its feature cache filled, as for every later checkpoint of a run.

``overhead_pct`` = warm evaluator vs bare generate, the suite's budget being 15%; ``cold_overhead_pct`` includes
featurisation, which on a tiny CPU model costs about as much as generation and on a GPU model runs in a background
thread behind generation. Writes ``bench/results/eval_throughput-<model>-<machine>.json``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

SWITCHES = {
    "plain": {"valid_frame_encoder": False, "static_cache": False},
    "valid_frames": {"valid_frame_encoder": True, "static_cache": False},
    "static_cache": {"valid_frame_encoder": False, "static_cache": True},
    "both": {"valid_frame_encoder": True, "static_cache": True},
}
DEFAULT = "valid_frames"


def measure(model: Any, processor: Any, items: list, *, batch_size: int, max_new_tokens: int, repeats: int,
            valid_frame_encoder: bool, static_cache: bool) -> dict[str, Any]:  # fmt: skip
    from bench.machine import cuda_sync
    from models.audio_encoder import use_valid_frame_encoder
    from models.evaluate import (
        DecodingConfig,
        FeatureCache,
        decode_plan,
        evaluate,
        generate_batch,
        plan_batches,
        prepare_batch,
    )  # fmt: skip

    prompt = "p2"
    use_valid_frame_encoder(model, valid_frame_encoder)
    batches = [prepare_batch(b, processor, prompt) for b in plan_batches(items, processor, prompt, batch_size)]
    decoding = DecodingConfig(batch_size=batch_size, max_new_tokens=max_new_tokens,
                              valid_frame_encoder=valid_frame_encoder, static_cache=static_cache)  # fmt: skip
    plan = decode_plan(model, processor, decoding)  # the bare generate loop decodes exactly as evaluate does

    start = time.perf_counter()
    for b in batches:  # warm-up: allocator, kernels, and the compilation of static-cache decoding
        generate_batch(model, processor, b, plan)
    cuda_sync()
    warmup = time.perf_counter() - start
    cache = FeatureCache()
    bare, cold, warm = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            cuda_sync()
            t = time.perf_counter()
            for b in batches:
                generate_batch(model, processor, b, plan)
            cuda_sync()
            bare.append(time.perf_counter() - t)
            for label, runs, use_cache in (("cold", cold, None), ("warm", warm, cache)):
                if use_cache is not None and r == 0:  # fill the cache once before timing warm runs
                    evaluate(model, processor, items, Path(tmp) / f"fill{r}", prompt_id=prompt, decoding=decoding,
                             progress=False, cache=use_cache)  # fmt: skip
                cuda_sync()
                t = time.perf_counter()
                evaluate(model, processor, items, Path(tmp) / f"{label}{r}", prompt_id=prompt, decoding=decoding,
                         progress=False, cache=use_cache)  # fmt: skip
                cuda_sync()
                runs.append(time.perf_counter() - t)
    b, c, w = statistics.median(bare), statistics.median(cold), statistics.median(warm)
    n = len(items)
    return {
        "valid_frame_encoder": valid_frame_encoder,
        "static_cache": static_cache,
        "warmup_seconds": round(warmup, 3),
        "bare_seconds": [round(x, 4) for x in bare],
        "evaluator_cold_seconds": [round(x, 4) for x in cold],
        "evaluator_warm_seconds": [round(x, 4) for x in warm],
        "bare_items_per_second": round(n / b, 2),
        "evaluator_cold_items_per_second": round(n / c, 2),
        "evaluator_warm_items_per_second": round(n / w, 2),
        "overhead_pct": round(100.0 * (w / b - 1.0), 2),
        "cold_overhead_pct": round(100.0 * (c / b - 1.0), 2),
    }


def main(argv: list[str] | None = None) -> dict:
    from bench.shapes import shape_names

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny", help="hub id, local directory, 'tiny' or 'toy-instruct'")
    parser.add_argument("--shape", choices=shape_names(), default=None,
                        help="random weights of this shape instead (bench/shapes.py)")  # fmt: skip
    parser.add_argument("--benchmark", default=None, help="MMAU-format JSON (default: toy test set, or synthetic)")
    parser.add_argument("--audio-dir", default=None)
    parser.add_argument("--n-items", type=int, default=256, help="synthetic items (with --shape)")
    parser.add_argument("--clip-seconds", type=float, default=10.0, help="synthetic clip length (with --shape)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N items")
    parser.add_argument("--switches", action="store_true", help="measure every speed-switch configuration")
    parser.add_argument("--out", default=None, help="result JSON (default: bench/results/eval_throughput-...json)")
    args = parser.parse_args(argv)

    from bench.machine import write_result
    from data.benchmark import load_benchmark
    from data.machine import machine_info
    from models.loading import audio_window_seconds
    from models.registry import family_of

    tmp = tempfile.TemporaryDirectory()
    if args.shape:
        from bench.shapes import random_model, synthetic_benchmark

        model, processor = random_model(args.shape)
        label = f"random-{args.shape}"
        seconds = min(args.clip_seconds, audio_window_seconds(processor))
        bench = load_benchmark(args.benchmark or synthetic_benchmark(tmp.name, args.n_items, seconds), args.audio_dir,
                          version_label="synthetic")  # fmt: skip
    else:
        from experiments.profiles import ensure_toy_world, resolve_model_name
        from models.loading import load_model_and_processor

        model, processor = load_model_and_processor(resolve_model_name(args.model))
        label = args.model.rstrip("/").split("/")[-1]
        if args.benchmark is None:
            world = ensure_toy_world()
            bench = load_benchmark(world / "test" / "mmau-test-mini.json", world / "test", version_label="toy")
        else:
            bench = load_benchmark(args.benchmark, args.audio_dir)
    items = bench.items[: args.limit] if args.limit else bench.items
    family = family_of(model)
    configs = list(SWITCHES) if args.switches else [DEFAULT]
    results = {}
    for name in configs:
        results[name] = measure(model, processor, items, batch_size=args.batch_size,
                                max_new_tokens=args.max_new_tokens, repeats=args.repeats, **SWITCHES[name])  # fmt: skip
        results[name]["standing_aside_for_family"] = [
            s for s, on in SWITCHES[name].items() if on and not family.allows(s)
        ]
        r = results[name]
        print(f"{name:>13}: bare generate {r['bare_items_per_second']} items/s; evaluator warm "
              f"{r['evaluator_warm_items_per_second']} (overhead {r['overhead_pct']}%), cold "
              f"{r['evaluator_cold_items_per_second']} (overhead {r['cold_overhead_pct']}%)", flush=True)  # fmt: skip
    tmp.cleanup()
    machine = machine_info()
    result = {
        "benchmark": "eval_throughput",
        "machine": machine,
        "model": label,
        "family": family.name,
        "n_items": len(items),
        "batch_size": args.batch_size,
        "max_new_tokens": args.max_new_tokens,
        "repeats": args.repeats,
        "default_configuration": DEFAULT,
        "budget_pct": 15.0,
        "configurations": results,
    }
    write_result(result, f"eval_throughput-{label}", args.out)
    return result


if __name__ == "__main__":
    main()
