"""Wire an SFT or GRPO experiment together: data, base model, trainer, checkpoint evaluation, W&B, final results.

Called by ``python -m experiments run NAME`` for methods ``sft`` and ``grpo``. The run directory ends with

- ``checkpoint-<step>/`` (Hugging Face format, safetensors; LoRA runs hold adapters) each with ``eval/<set>/``
  predictions and metrics for every benchmark of ``eval.benchmarks`` (``test``: MMAU test-mini; ``mmar``: MMAR, or
  the toy's mixed test) and ``eval/val/``, and ``checkpoint_evals.jsonl`` (one line per evaluation);
- ``predictions.json`` and ``metrics.json`` for the final model on MMAU test-mini (same format as ``direct``); its
  other results are those of the last checkpoint (``final/`` only when no checkpoint was saved at the end);
- ``train_data_report.json`` / ``val_data_report.json`` (items skipped for missing or bad audio, by id);
- ``compute_settings.json``: deterministic algorithms, torch threads, torch version and device, one entry per
  start or resume (the same settings on the same machine give bit-identical weights; ``train.deterministic``);
- ``train_log.jsonl``: every training log row, written before it goes to W&B (see ``experiments/record.py``).

Intermediate checkpoints keep their weights; only the latest keeps optimizer and scheduler state
(``train.keep_optimizer``; ``trainers/checkpoint_storage.py``).

``--resume`` continues from the last checkpoint into the same W&B run, with the stored configuration; without it,
a directory that already holds checkpoints is refused rather than overwritten.

Every evaluation of a run (step 0, each checkpoint, the final model) decodes with one :class:`DecodingConfig`, in the
run's compute dtype (``experiments.runner.run_dtype``, the dtype it trains in). The trainer and its arguments come
from ``experiments/trainer_arguments.py``, the one translation from specs to trainer arguments.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

from data.avqa import load_avqa
from data.io import read_json, write_json_atomic
from data.run_files import (
    COMPUTE_SETTINGS_FILE,
    FINAL_ADAPTERS_DIR,
    FINAL_DIR,
    MERGED_DIR,
    METRICS_FILE,
    PREDICTIONS_FILE,
    checkpoint_dir,
    data_report_file,
)
from data.schema import DataError, Item
from experiments.compute import (
    compute_settings,
    decoding_config,
    deterministic_algorithms,
    load_dtype,
    run_dtype,
)
from experiments.trainer_arguments import build_trainer
from models.audio_encoder import use_encoder_switches
from models.registry import family_of


def val_subset(items: list[Item], n: int | None, seed: int = 0) -> list[Item]:
    """A fixed subset of the validation items (the same for every run and seed: a fair selection set)."""
    if n is None or n >= len(items):
        return items
    return sorted(random.Random(seed).sample(items, n), key=lambda i: i.id)


def _load_data(resolved: Any) -> tuple[list[Item], list[Any], list[Item]]:
    """Train items, the loaded benchmarks of ``eval.benchmarks`` (MMAU test-mini first) and the validation subset."""
    data = resolved.profile.data()
    out = resolved.output_dir
    if data.train is None or data.val is None:
        raise DataError("training needs train and val annotations: set AVQA_TRAIN and AVQA_VAL (see README)")
    train = load_avqa(data.train, data.train_audio_dir, report_path=out / data_report_file("train"))
    val = load_avqa(data.val, data.val_audio_dir, report_path=out / data_report_file("val"))
    for split, report in ((train, data_report_file("train")), (val, data_report_file("val"))):
        for why, skipped in (("audio missing", split.skipped_missing_audio), ("bad audio", split.skipped_bad_audio)):
            if skipped:
                print(f"{split.file}: {len(skipped)} of {split.n_records} items skipped ({why}; ids and reasons in "
                      f"{out / report})")  # fmt: skip
        if split.padded_short_audio:
            print(f"{split.file}: {len(split.padded_short_audio)} clips shorter than one audio token are padded with "
                  f"silence (ids in {out / report})")  # fmt: skip
    tests = [source.load() for source in data.eval_benchmarks(resolved.experiment.eval.benchmark_names)]
    return train.items, tests, val_subset(val.items, resolved.experiment.eval.val_items)


def record_compute_settings(out: Path, settings: dict[str, Any], *, resume: bool) -> None:
    """Append this session's compute settings to ``compute_settings.json`` (one entry per start or resume), on disk
    before W&B sees them; a resume under other settings (e.g. another thread count) is said, as it changes bits."""
    path = out / COMPUTE_SETTINGS_FILE
    sessions = read_json(path).get("sessions", []) if resume and path.exists() else []
    if sessions and {k: v for k, v in sessions[-1].items() if k != "resumed"} != settings:
        print(f"{path}: resuming under other compute settings than before ({sessions[-1]} -> {settings}); "
              "the weights will not be bit-identical to an uninterrupted run")  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, {"sessions": [*sessions, {**settings, "resumed": bool(sessions)}]})


def run_training(resolved: Any, *, resume: bool = False) -> dict[str, Any]:
    """Train and evaluate one run (see the module docstring), under the run's deterministic-algorithms setting."""
    settings = compute_settings(resolved.experiment.train)
    with deterministic_algorithms(settings["deterministic_algorithms"]):
        return _run_training(resolved, resume=resume, settings=settings)


def _run_training(resolved: Any, *, resume: bool, settings: dict[str, Any]) -> dict[str, Any]:
    import torch

    from experiments.record import restore_train_log
    from experiments.tracking import tracked_run
    from models.loading import load_model_and_processor
    from trainers.checkpoint_eval import CheckpointEvaluator, EvalSet, eval_log_row
    from trainers.checkpoint_storage import (
        OptimizerStatePruner,
        fallback_advice,
        has_optimizer_state,
        is_complete,
        resumable_checkpoint,
    )
    from trainers.common import checkpoint_finished_training
    from trainers.completion_samples import drop_rows_after
    from trainers.console import install_compact_log
    from trainers.log_recorder import TrainLogRecorder

    exp, out = resolved.experiment, resolved.output_dir
    pruner = OptimizerStatePruner(exp.train.keep_optimizer)  # a bad policy fails before any model is loaded
    last, partial = resumable_checkpoint(out)
    if (last is not None or partial) and not resume:
        held = last.name if last is not None else partial[-1].name
        raise DataError(f"{out} already holds checkpoints (last: {held}); pass --resume to continue that run "
                        "or --output-dir to start a new one")  # fmt: skip
    for p in partial:  # a save cut short (a kill, a full disk): the resume saves that step again
        print(f"{p}: incomplete (no readable trainer_state.json: its save was cut short), skipped; resuming from "
              f"{last.name if last is not None else 'the start'}")  # fmt: skip
    if resume and last is None:
        print(f"--resume: no checkpoint in {out} yet, starting from the beginning")
    if last is not None and not has_optimizer_state(last) and not checkpoint_finished_training(last):
        raise DataError(f"{last} has no optimizer state, so training cannot resume from it exactly (only the latest "
                        f"checkpoint keeps it). {fallback_advice(last)}")  # fmt: skip
    # Training rows after the resumed checkpoint are computed again: the record keeps only the ones that stand, and
    # gets back any it lost from the checkpoint's own copy.
    restore_train_log(out, last)
    drop_rows_after(out, int(last.name.split("-")[1]) if last is not None else 0)  # sampled again by the resume
    train_items, tests, val_items = _load_data(resolved)
    base = resolved.profile.resolve_model()
    # One dtype for the run: the trainer's bf16 autocast and every evaluation, step 0 included (before the trainer
    # exists, so the evaluator applies it itself).
    dtype = run_dtype(exp.train)
    model, processor = load_model_and_processor(base, dtype=load_dtype(exp))
    family = family_of(model)
    frozen = family.freeze_unused_parts(model)  # an Omni vision tower: never fed, never trained
    if frozen:
        print(f"{family.title}: {', '.join(frozen)} frozen (the suite feeds audio and text only)")
    use_encoder_switches(
        model, valid_frames=exp.train.valid_frame_encoder, distinct_clips=exp.train.distinct_clip_encoder
    )
    eval_sets = [EvalSet(t.spec.set_name, t.items, t.describe()) for t in tests]
    eval_sets.append(EvalSet("val", val_items, {"n_items": len(val_items)}))

    record_compute_settings(out, settings, resume=resume)
    with tracked_run(resolved, resume=resume, extra_config={"base_model": base, **settings}) as tracker:
        evaluator = CheckpointEvaluator(
            processor, eval_sets, prompt_id=exp.prompt, run_dir=out, model_name=exp.name, log=tracker.log,
            decoding=decoding_config(exp.eval, dtype, valid_frame_encoder=exp.train.valid_frame_encoder),
        )  # fmt: skip
        if exp.eval.at_start and last is None and 0 not in evaluator.recorded_steps():
            evaluator.evaluate_model(model, out / "checkpoint-0" / "eval", 0)
        # The trainer reports to nobody itself: TrainLogRecorder writes each row to disk, then to the W&B run.
        callbacks = [TrainLogRecorder(out, log=tracker.log, summary=tracker.summary), evaluator, pruner]
        samples = None
        if exp.method == "grpo":
            from trainers.completion_samples import CompletionSampleRecorder

            samples = CompletionSampleRecorder(out, log_table=tracker.table)
        trainer = build_trainer(exp, model, processor, train_items, output_dir=str(out), seed=resolved.seed,
                                callbacks=callbacks, completion_sampler=samples)  # fmt: skip
        install_compact_log(trainer)  # one short line per logging step under the bar; full rows go to train_log.jsonl
        trainer.train(resume_from_checkpoint=str(last) if last else None)

        step = trainer.state.global_step
        # The trainer saves (and so evaluates) at its last step too: pointing the final evaluation at that
        # checkpoint's directory makes it resume with every item done, instead of generating everything again (or,
        # killed before that evaluation, makes it there, of the weights the resume loaded from that checkpoint).
        final_ckpt = out / checkpoint_dir(step)
        final_dir = final_ckpt / "eval" if is_complete(final_ckpt) else out / FINAL_DIR
        # Recorded once: the last checkpoint's evaluation is already in the record (unless a kill cut it short).
        final = evaluator.evaluate_model(trainer.model, final_dir, step, record=step not in evaluator.recorded_steps())
        for name in (PREDICTIONS_FILE, METRICS_FILE):
            shutil.copyfile(final_dir / "test" / name, out / name)
        if exp.lora is not None and exp.lora.save_merged:
            # Merge from the saved adapters, not the live model: under FSDP/ZeRO-3 its weights are sharded.
            from data.distributed import barrier, is_main

            src = out / checkpoint_dir(step)
            if not (src / "adapter_config.json").exists():  # no checkpoint at the last step: save the adapters now
                src = out / FINAL_ADAPTERS_DIR
                trainer.save_model(str(src))  # every process takes part (sharded weights are gathered)
            ds_plugin = getattr(trainer.accelerator.state, "deepspeed_plugin", None)
            if ds_plugin is not None:  # a plain load on one process: no ZeRO-3 partitioning (it would wait for all)
                from transformers.integrations import unset_hf_deepspeed_config

                unset_hf_deepspeed_config()
            try:
                if is_main():
                    merged, _ = load_model_and_processor(src, dtype=torch.float32, device="cpu")
                    merged.save_pretrained(out / MERGED_DIR, safe_serialization=True)
                    processor.save_pretrained(out / MERGED_DIR)
            finally:
                if ds_plugin is not None:
                    ds_plugin.set_deepspeed_weakref()
            barrier()
        summary = {"final/step": step, "benchmark_version": tests[0].version}
        summary.update({f"benchmark_version/{t.spec.set_name}": t.version for t in tests})
        for name in final:
            summary.update({"final/" + k.removeprefix("eval/"): v for k, v in eval_log_row(name, final[name]).items()})
        tracker.summary(summary)
    return final["test"]
