"""Evaluate every checkpoint as it is saved, on the test set and a held-out validation set.

Fig. 3 and Fig. 4 plot test accuracy at each checkpoint, and honest checkpoint selection needs a validation score
at each checkpoint too (the paper picked checkpoints on MMAU itself). :class:`CheckpointEvaluator` is a
``TrainerCallback`` that runs the suite's evaluator on the in-memory model right after each save and

- writes ``checkpoint-<step>/eval/<set>/{predictions,metrics}.json`` (resumable like any evaluation);
- calls ``log({"eval/<set>/<task>": acc, ..., "train/global_step": step})`` (the W&B run's x-axis);
- appends one line per checkpoint to ``checkpoint_evals.jsonl`` in the run directory.

Under several processes every process evaluates a shard and one (the main) records the results. The evaluation
sets are featurised once (a :class:`~data.evaluate.FeatureCache` per set) and reused at every
checkpoint. Evaluation uses greedy decoding, so the model's train/eval mode is switched around it and restored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from data.distributed import is_main
from data.evaluate import DecodingConfig, FeatureCache, evaluate
from data.io import JsonlAppender
from data.schema import Item

TASK_KEYS = ("sound", "music", "speech", "avg")


@dataclass
class EvalSet:
    """One set of items evaluated at every checkpoint, e.g. ``test`` (the benchmark) or ``val`` (selection)."""

    name: str
    items: Sequence[Item]
    benchmark: dict[str, Any] = field(default_factory=dict)
    cache: FeatureCache = field(default_factory=FeatureCache)


def eval_log_row(set_name: str, metrics: dict[str, Any]) -> dict[str, float]:
    """The W&B keys for one evaluation: eval/<set>/<task> for each task with items, plus the answer-format rate."""
    row = {f"eval/{set_name}/{k}": v for k, v in metrics["accuracy"].items() if k in TASK_KEYS and v is not None}
    row[f"eval/{set_name}/format_rate"] = metrics.get("format_rate")
    return row


class CheckpointEvaluator(TrainerCallback):
    def __init__(
        self,
        processor: Any,
        eval_sets: Sequence[EvalSet],
        *,
        prompt_id: str,
        decoding: DecodingConfig,
        run_dir: str | Path,
        model_name: str = "",
        log: Callable[[dict[str, Any]], None] | None = None,
    ):
        self.processor, self.eval_sets, self.prompt_id, self.decoding = processor, list(eval_sets), prompt_id, decoding
        self.run_dir, self.model_name, self.log = Path(run_dir), model_name, log

    def evaluate_model(self, model: Any, out_dir: Path, step: int) -> dict[str, dict[str, Any]]:
        """Evaluate ``model`` on every set into ``out_dir/<set>``; log and record the results at ``step``."""
        was_training = model.training
        model.eval()
        results: dict[str, dict[str, Any]] = {}
        try:
            for s in self.eval_sets:
                results[s.name] = evaluate(
                    model, self.processor, s.items, out_dir / s.name, prompt_id=self.prompt_id,
                    decoding=self.decoding, model_name=f"{self.model_name}@{step}", benchmark=s.benchmark,
                    cache=s.cache, progress=False,
                )  # fmt: skip
        finally:
            model.train(was_training)
        row: dict[str, Any] = {"train/global_step": step}
        for name, metrics in results.items():
            row.update(eval_log_row(name, metrics))
        if is_main():  # every process evaluated its shard; one records the result
            if self.log is not None:
                self.log(row)
            with JsonlAppender(self.run_dir / "checkpoint_evals.jsonl") as sink:
                sink.write({"step": step, "dir": str(out_dir), **row})
            summary = ", ".join(f"{k.removeprefix('eval/')}={v:.1f}" for k, v in row.items() if k.endswith("/avg"))
            print(f"[step {step}] {summary}")
        return results

    def on_save(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        # Every process takes part: the evaluator shards the items across processes and gathers the results.
        if model is None:
            return
        ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        self.evaluate_model(model, ckpt / "eval", state.global_step)
