"""Evaluator throughput against a bare loop of ``model.generate`` over the same batches.

    python -m bench.eval_throughput                       # tiny model on the toy test set (CPU)
    python -m bench.eval_throughput --model Qwen/Qwen2-Audio-7B-Instruct --benchmark mmau.json --audio-dir DIR

Three timings over the same items and batches:

- ``bare``: ``model.generate`` alone, batches prepared in advance (audio loaded, features computed, untimed);
- ``evaluator_cold``: the evaluator end to end (batch planning, audio loading, featurisation, generation,
  decoding, scoring, incremental writes), as for a first evaluation;
- ``evaluator_warm``: the evaluator with a :class:`~data.evaluate.FeatureCache` already filled, as for every later
  checkpoint of a training run (features do not change between checkpoints).

``overhead_pct`` = warm evaluator vs bare generate (the suite's budget is 15%); ``cold_overhead_pct`` shows the
featurisation cost, which on a tiny CPU model is comparable to generation itself and on a 7B GPU model is hidden
behind generation by the prefetch thread. Writes ``bench/results/eval_throughput-<model>-<machine>.json``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from data.io import write_json_atomic


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model", default="tiny", help="hub id, local directory, 'tiny' (untrained) or 'toy-instruct'"
    )
    parser.add_argument("--benchmark", default=None, help="MMAU-format JSON (default: the toy test split)")
    parser.add_argument("--audio-dir", default=None)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N items")
    parser.add_argument("--out", default=None, help="result JSON (default: bench/results/eval_throughput-<host>.json)")
    args = parser.parse_args(argv)

    import torch

    from bench.machine import machine_info
    from data.evaluate import DecodingConfig, evaluate, generation_kwargs, plan_batches, prepare_batch
    from data.mmau import load_mmau
    from data.models import load_model_and_processor
    from experiments.profiles import ensure_toy_world, resolve_model_name

    model_path = resolve_model_name(args.model)
    if args.benchmark is None:
        world = ensure_toy_world()
        bench = load_mmau(world / "test" / "mmau-test-mini.json", world / "test", version_label="toy")
    else:
        bench = load_mmau(args.benchmark, args.audio_dir)
    items = bench.items[: args.limit] if args.limit else bench.items
    model, processor = load_model_and_processor(model_path)
    prompt = "p2"
    gen_kwargs = generation_kwargs(model, processor, args.max_new_tokens)

    batches = [prepare_batch(b, processor, prompt) for b in plan_batches(items, processor, prompt, args.batch_size)]
    from data.evaluate import generate_batch

    generate_batch(model, processor, batches[0], gen_kwargs)  # warm-up (allocator, kernels)

    def sync() -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    from data.evaluate import FeatureCache

    warm_cache = FeatureCache()
    bare, full, warm = [], [], []
    for _ in range(args.repeats):
        sync()
        t = time.perf_counter()
        for b in batches:
            inputs = {k: (v.to(model.device) if hasattr(v, "to") else v) for k, v in b.inputs.items()}
            if "input_features" in inputs:
                inputs["input_features"] = inputs["input_features"].to(model.dtype)
            with torch.inference_mode():
                model.generate(**inputs, **gen_kwargs)
        sync()
        bare.append(time.perf_counter() - t)
        with tempfile.TemporaryDirectory() as tmp:
            sync()
            t = time.perf_counter()
            evaluate(model, processor, items, Path(tmp) / "eval", prompt_id=prompt, model_name=str(model_path),
                     decoding=DecodingConfig(batch_size=args.batch_size, max_new_tokens=args.max_new_tokens),
                     progress=False)  # fmt: skip
            sync()
            full.append(time.perf_counter() - t)
            evaluate(model, processor, items, Path(tmp) / "fill", prompt_id=prompt, progress=False, cache=warm_cache,
                     decoding=DecodingConfig(batch_size=args.batch_size, max_new_tokens=args.max_new_tokens))  # fmt: skip
            sync()
            t = time.perf_counter()
            evaluate(model, processor, items, Path(tmp) / "warm", prompt_id=prompt, progress=False, cache=warm_cache,
                     decoding=DecodingConfig(batch_size=args.batch_size, max_new_tokens=args.max_new_tokens))  # fmt: skip
            sync()
            warm.append(time.perf_counter() - t)

    bare_s, full_s, warm_s = statistics.median(bare), statistics.median(full), statistics.median(warm)
    machine = machine_info()
    result = {
        "benchmark": "eval_throughput",
        "machine": machine,
        "model": str(args.model),
        "n_items": len(items),
        "batch_size": args.batch_size,
        "max_new_tokens": args.max_new_tokens,
        "repeats": args.repeats,
        "bare_generate_seconds": [round(x, 4) for x in bare],
        "evaluator_cold_seconds": [round(x, 4) for x in full],
        "evaluator_warm_seconds": [round(x, 4) for x in warm],
        "bare_items_per_second": round(len(items) / bare_s, 2),
        "evaluator_cold_items_per_second": round(len(items) / full_s, 2),
        "evaluator_warm_items_per_second": round(len(items) / warm_s, 2),
        "overhead_pct": round(100.0 * (warm_s / bare_s - 1.0), 2),
        "cold_overhead_pct": round(100.0 * (full_s / bare_s - 1.0), 2),
        "budget_pct": 15.0,
    }
    tag = machine["gpu"].replace(" ", "-") if "gpu" in machine else f"cpu{machine['cpu_count']}"
    out = (
        Path(args.out)
        if args.out
        else Path("bench/results") / f"eval_throughput-{args.model.split('/')[-1]}-{tag}.json"
    )
    write_json_atomic(out, result)
    print(f"bare generate: {result['bare_items_per_second']} items/s; evaluator warm: "
          f"{result['evaluator_warm_items_per_second']} items/s (overhead {result['overhead_pct']}%, budget 15%); "
          f"cold: {result['evaluator_cold_items_per_second']} items/s (overhead {result['cold_overhead_pct']}%)")  # fmt: skip
    print(f"written: {out}")
    return result


if __name__ == "__main__":
    main()
