"""The time of one GRPO optimizer step, split by phase, and peak memory.

    python -m bench.grpo_step                        # tiny model, CPU
    python -m bench.grpo_step --shape 7b --lora      # Qwen2-Audio-7B-shaped random weights, bf16, one GPU
    python -m bench.grpo_step --shape qwen2.5-omni-7b --lora   # any family's shape (bench/shapes.py)

One prompt per step, G completions of exactly ``--completion-tokens`` tokens (random weights rarely stop early),
``--clip-seconds`` of audio, beta 0.04 (so the reference pass runs), TRL's AudioGRPOTrainer as the experiments use
it. Phases (seconds per optimizer step, averaged over the steps after the first): ``generation`` (``generate``),
``rewards``, ``ref_and_old_logps`` (no-grad scoring passes), ``policy_forward`` (grad-enabled scoring),
``backward``, ``optimizer``, and ``other`` (the rest of the step: featurisation, advantages, bookkeeping).
``audio_encoder`` is reported apart (``audio_encoder_within_phases``): the encoder's forward time summed over all
phases above (the backward through it is not included). A speed switch that is not exact for the model's family
stands aside (``standing_aside_for_family`` lists them): the plain path is timed.
Writes ``bench/results/grpo_step-<shape>-<machine>.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any


class PhaseTimer:
    """Wraps trainer methods with synchronised wall-clock timers, accumulating per optimizer step."""

    def __init__(self, cuda: bool):
        self.cuda, self.steps, self.current = cuda, [], defaultdict(float)

    def sync(self) -> None:
        from bench.machine import cuda_sync

        cuda_sync()

    def wrap(self, obj: Any, name: str, phase: Any) -> None:
        original = getattr(obj, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            import torch

            label = phase(torch.is_grad_enabled()) if callable(phase) else phase
            self.sync()
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.sync()
                self.current[label] += time.perf_counter() - start

        setattr(obj, name, timed)

    def end_step(self, total: float) -> None:
        row = dict(self.current)
        row["other"] = max(0.0, total - sum(row.values()))
        row["total"] = total
        self.steps.append(row)
        self.current = defaultdict(float)


def _audio_tower(model: Any) -> Any:
    from models.registry import family_of

    return family_of(model).audio_encoder(model)


def main(argv: list[str] | None = None) -> dict:
    from bench.shapes import shape_names

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=shape_names(), default="tiny", help="random weights (bench/shapes.py)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--generations", type=int, default=8)
    parser.add_argument("--completion-tokens", type=int, default=16)
    parser.add_argument("--clip-seconds", type=float, default=10.0)
    parser.add_argument("--lora", action="store_true", help="train LoRA adapters (reference = adapters disabled)")
    parser.add_argument("--freeze-audio", action="store_true")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--no-valid-frame-encoder", action="store_true", help="the stock 30 s audio encoder")
    parser.add_argument("--no-distinct-clips", action="store_true", help="encode every row's clip, not each once")
    parser.add_argument("--no-shared-prefill", action="store_true", help="prefill each prompt G times, not once")
    parser.add_argument("--no-shared-scoring", action="store_true", help="score each row's prompt, not each once")
    parser.add_argument("--lora-dropout", type=float, default=0.05, help="(shared scoring stands aside above 0)")
    parser.add_argument("--merged-lora", action="store_true", help="generate from merged LoRA weights (speed switch)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    import torch
    from transformers import TrainerCallback

    from bench.machine import write_result
    from bench.shapes import is_tiny, random_model, synthetic_benchmark
    from data.benchmark import load_benchmark
    from data.machine import machine_info
    from experiments.registry import get_experiment
    from experiments.spec import GRPOSpec, LoraSpec, TrainSpec
    from experiments.trainer_arguments import build_trainer
    from models.audio_encoder import use_encoder_switches
    from models.loading import audio_window_seconds
    from models.registry import family_of

    cuda = torch.cuda.is_available()
    if not args.lora and not is_tiny(args.shape):
        raise SystemExit(f"full fine-tuning of the {args.shape} shape does not fit one GPU: use --lora")
    model, processor = random_model(args.shape)
    family = family_of(model)
    if not args.lora:
        model = model.float() if not cuda else model  # full fine-tuning keeps fp32 master weights on CPU
    valid_frames = not args.no_valid_frame_encoder
    distinct_clips = not args.no_distinct_clips
    requested = {"valid_frame_encoder": valid_frames, "distinct_clip_encoder": distinct_clips,
                 "shared_prompt_prefill": not args.no_shared_prefill, "shared_prompt_scoring": not args.no_shared_scoring,
                 "merged_lora_generation": args.merged_lora}  # fmt: skip
    use_encoder_switches(model, valid_frames=valid_frames, distinct_clips=distinct_clips)
    window = audio_window_seconds(processor)
    tmp = tempfile.TemporaryDirectory()
    bench = load_benchmark(synthetic_benchmark(tmp.name, 8, min(args.clip_seconds, window)), version_label="synthetic")
    train = TrainSpec(learning_rate=1e-6, epochs=None, max_steps=args.steps, per_device_batch=1, grad_accum=1,
                      save_every=0, freeze_audio_encoder=args.freeze_audio,
                      gradient_checkpointing=args.gradient_checkpointing, valid_frame_encoder=valid_frames,
                      distinct_clip_encoder=distinct_clips)  # fmt: skip
    grpo = GRPOSpec(num_generations=args.generations, max_completion_length=args.completion_tokens,
                    merged_lora_generation=args.merged_lora, shared_prompt_prefill=not args.no_shared_prefill,
                    shared_prompt_scoring=not args.no_shared_scoring)  # fmt: skip
    exp = dataclasses.replace(get_experiment("grpo-p2"), train=train, grpo=grpo,
                              lora=LoraSpec(dropout=args.lora_dropout) if args.lora else None)  # fmt: skip
    # The reference of a full fine-tune is reloaded from disk by TRL: save the random model first.
    model_dir = Path(tmp.name) / "model"
    if not args.lora:
        from models.saving import save_model

        save_model(model, processor, model_dir)
        model.config._name_or_path = str(model_dir)
    trainer = build_trainer(exp, model, processor, bench.items, output_dir=str(Path(tmp.name) / "run"), seed=0)
    timer = PhaseTimer(cuda)
    timer.wrap(trainer, "_generate", "generation")
    timer.wrap(trainer, "_calculate_rewards", "rewards")
    timer.wrap(trainer, "_get_per_token_logps_and_entropies",
               lambda grad: "policy_forward" if grad else "ref_and_old_logps")  # fmt: skip
    timer.wrap(trainer.accelerator, "backward", "backward")
    encoder_time = PhaseTimer(cuda)  # nested inside the phases above: kept apart so they are not counted twice
    for m in {id(x): x for x in (trainer.model, trainer.ref_model) if x is not None}.values():
        encoder = _audio_tower(m)
        encoder_time.wrap(encoder, "forward", "audio_encoder")

    class StepClock(TrainerCallback):
        def on_step_begin(self, *a: Any, **k: Any) -> None:
            timer.sync()
            self.start = time.perf_counter()
            if trainer.optimizer is not None and not hasattr(trainer.optimizer, "_timed"):
                timer.wrap(trainer.optimizer, "step", "optimizer")
                trainer.optimizer._timed = True

        def on_step_end(self, *a: Any, **k: Any) -> None:
            timer.sync()
            total = time.perf_counter() - self.start
            timer.end_step(total)
            encoder_time.end_step(total)

    trainer.add_callback(StepClock())
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    later = timer.steps[1:] or timer.steps
    phases = sorted({k for s in later for k in s})
    encoder_later = encoder_time.steps[1:] or encoder_time.steps
    mean = {k: round(sum(s.get(k, 0.0) for s in later) / len(later), 4) for k in phases}
    machine = machine_info()
    result = {
        "benchmark": "grpo_step",
        "machine": machine,
        "shape": args.shape,
        "family": family.name,
        "lora": args.lora,
        "freeze_audio_encoder": args.freeze_audio,
        "gradient_checkpointing": args.gradient_checkpointing,
        "valid_frame_encoder": valid_frames,
        "merged_lora_generation": args.merged_lora,
        "distinct_clip_encoder": distinct_clips,
        "shared_prompt_prefill": not args.no_shared_prefill,
        "shared_prompt_scoring": not args.no_shared_scoring,
        "standing_aside_for_family": [s for s, on in requested.items() if on and not family.allows(s)],
        "lora_dropout": args.lora_dropout if args.lora else None,
        "prompts_per_step": 1,
        "generations": args.generations,
        "completion_tokens": args.completion_tokens,
        "clip_seconds": min(args.clip_seconds, window),
        "dtype": "bf16 autocast" if cuda else "fp32",
        "steps": [{k: round(v, 4) for k, v in s.items()} for s in timer.steps],
        "mean_after_first_step": mean,
        "audio_encoder_within_phases": round(sum(s["audio_encoder"] for s in encoder_later) / len(encoder_later), 4),
        "peak_gpu_memory_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
    }
    suffix = ("-lora" if args.lora else "") + ("-merged" if args.merged_lora else "")
    suffix += "" if valid_frames else "-stock-encoder"
    suffix += "" if distinct_clips else "-every-row-encoded"
    suffix += "" if not args.no_shared_prefill else "-prefill-per-row"
    suffix += "" if not args.no_shared_scoring else "-scoring-per-row"
    write_result(result, f"grpo_step-{args.shape}{suffix}", args.out)
    print(mean, "audio encoder:", result["audio_encoder_within_phases"], "peak GB:", result["peak_gpu_memory_gb"])
    tmp.cleanup()
    return result


if __name__ == "__main__":
    main()
