"""Where the time of GRPO's generation goes: G sampled completions for one audio prompt, under variants.

    python -m bench.group_generation --shape 7b        # on a GPU
    python -m bench.group_generation --shape tiny      # the same on a CPU, to check the script

Variants: ``plain`` (``generate`` with GRPO's sampling: temperature 1, top-k 50), ``suppress`` (plus TRL's
suppression of the audio placeholder token), ``lora`` (the model wrapped with LoRA adapters, as in GRPO-LoRA),
``static`` (static KV cache, compiled on GPU; the first call includes compilation and is reported apart), and
``prefill_once`` (the audio prompt prefilled for one row, then its KV cache expanded to G rows before sampling:
what "prefill the shared prompt once per group" would save). Writes
``bench/results/group_generation-<shape>-<machine>.json``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any


def main(argv: list[str] | None = None) -> dict:
    from bench.shapes import shape_names

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=shape_names(), default="tiny", help="random weights (bench/shapes.py)")
    parser.add_argument("--generations", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--clip-seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    import numpy as np
    import torch
    from transformers import GenerationConfig

    from bench.machine import cuda_sync, write_result
    from bench.shapes import random_model
    from data.machine import machine_info
    from data.prompts import build_conversation, render_prompt
    from models.audio_encoder import use_valid_frame_encoder
    from models.features import featurize, placeholder_ids
    from models.loading import audio_window_seconds
    from models.registry import family_of

    model, processor = random_model(args.shape)
    family = family_of(model)
    use_valid_frame_encoder(model)
    seconds = min(args.clip_seconds, audio_window_seconds(processor))
    wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * 16000)) / 16000)).astype(np.float32)
    text = render_prompt(processor, build_conversation("Is the note high or low?", ["high", "low"], "p2"))
    one = featurize(processor, [text], [wave])
    one = {k: v.to(model.device) for k, v in one.items()}
    one["input_features"] = one["input_features"].to(model.dtype)
    group = {k: v.repeat(args.generations, *([1] * (v.dim() - 1))) for k, v in one.items()}
    tok = processor.tokenizer
    base = dict(do_sample=True, temperature=1.0, top_k=50, top_p=1.0, max_new_tokens=args.tokens,
                min_new_tokens=args.tokens, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)  # fmt: skip

    def timed(fn: Any) -> tuple[float, list[float]]:
        cuda_sync()
        t = time.perf_counter()
        fn()
        cuda_sync()
        first = time.perf_counter() - t
        runs = []
        for _ in range(args.repeats):
            cuda_sync()
            t = time.perf_counter()
            fn()
            cuda_sync()
            runs.append(time.perf_counter() - t)
        return first, runs

    results: dict[str, Any] = {}

    def record(name: str, fn: Any) -> None:
        first, runs = timed(fn)
        results[name] = {"first_call_seconds": round(first, 4), "seconds": [round(r, 4) for r in runs],
                         "median_seconds": round(statistics.median(runs), 4)}  # fmt: skip
        print(f"{name:>13}: {results[name]['median_seconds']} s (first call {results[name]['first_call_seconds']} s)",
              flush=True)  # fmt: skip

    with torch.inference_mode():
        record("plain", lambda: model.generate(**group, generation_config=GenerationConfig(**base)))
        suppress = GenerationConfig(**base, suppress_tokens=placeholder_ids(processor))
        record("suppress", lambda: model.generate(**group, generation_config=suppress))
        record(
            "static",
            lambda: model.generate(**group, generation_config=GenerationConfig(**base, cache_implementation="static")),
        )

        def prefill_once() -> None:
            out = model(**one, use_cache=True)
            cache = out.past_key_values
            cache.batch_repeat_interleave(args.generations)
            ids = group["input_ids"]
            model.generate(input_ids=ids, attention_mask=group["attention_mask"], past_key_values=cache,
                           generation_config=GenerationConfig(**base))  # fmt: skip

        try:
            record("prefill_once", prefill_once)
        except Exception as e:  # an API mismatch here must not lose the other measurements
            results["prefill_once"] = {"error": f"{type(e).__name__}: {e}"[:300]}
            print("prefill_once failed:", results["prefill_once"]["error"])
    from peft import LoraConfig, get_peft_model

    from experiments.spec import LoraSpec

    spec = LoraSpec()
    targets = family.lora_target_modules(model, spec.targets)
    lora_model = get_peft_model(model, LoraConfig(r=spec.r, lora_alpha=spec.alpha, target_modules=targets))
    lora_model.eval()
    with torch.inference_mode():
        record("lora", lambda: lora_model.generate(**group, generation_config=GenerationConfig(**base)))
    machine = machine_info()
    result = {"benchmark": "group_generation", "machine": machine, "shape": args.shape,
              "family": family.name, "generations": args.generations, "tokens": args.tokens, "clip_seconds": seconds,
              "prompt_tokens": int(one["input_ids"].shape[1]), "variants": results}  # fmt: skip
    write_result(result, f"group_generation-{args.shape}", args.out)
    return result


if __name__ == "__main__":
    main()
