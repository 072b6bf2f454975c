"""Evaluate every checkpoint as it is saved, on each benchmark of the run and a held-out validation set.

Fig. 3 and Fig. 4 plot test accuracy at each checkpoint, and honest checkpoint selection needs a validation score
at each checkpoint too (the paper picked checkpoints on MMAU itself). :class:`CheckpointEvaluator` is a
``TrainerCallback`` that runs the suite's evaluator on the in-memory model right after each save and

- writes ``checkpoint-<step>/eval/<set>/{predictions,metrics}.json`` (resumable like any evaluation);
- appends one line per checkpoint to ``checkpoint_evals.jsonl`` in the run directory (fsynced: the durable record),
  and only then calls ``log({"eval/<set>/<task>": acc, ..., "train/global_step": step})`` (the W&B run's x-axis);
- on a resumed run, evaluates the checkpoint it resumed from if a kill had cut that checkpoint's evaluation short
  (its predictions resume where they stopped), so no checkpoint of a run goes unevaluated.

Under several processes every process evaluates a shard and one (the main) records the results. The evaluation
sets are featurised once (a :class:`~models.evaluate.FeatureCache` per set) and reused at every
checkpoint. Evaluation uses greedy decoding, so the model's train/eval mode is switched around it and restored.

On the console each evaluation shows a progress bar per set (the main process's only; the training bar would
otherwise sit frozen for the whole evaluation), and then one summary line, ``[step 40] test/avg=.., val/avg=..``,
printed above the training bar (:func:`trainers.console.say`), never onto its line. The full accuracy tables are
in the metrics files, not on the console.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from data.distributed import is_main
from data.io import append_jsonl, read_jsonl
from data.run_files import EVAL_LOG, STEP_KEY, checkpoint_dir
from data.schema import Item
from models.evaluate import DecodingConfig, FeatureCache, evaluate
from trainers.console import say


@dataclass
class EvalSet:
    """One set of items evaluated at every checkpoint: ``test`` (MMAU test-mini), ``mmar``, or ``val`` (selection)."""

    name: str
    items: Sequence[Item]
    benchmark: dict[str, Any] = field(default_factory=dict)
    cache: FeatureCache = field(default_factory=FeatureCache)


def eval_log_row(set_name: str, metrics: dict[str, Any]) -> dict[str, float]:
    """The W&B keys for one evaluation: eval/<set>/<column> for each of the benchmark's columns with items (MMAU's
    tasks, MMAR's modalities) and the average, plus the answer-format rate."""
    row = {f"eval/{set_name}/{k}": v for k, v in metrics["accuracy"].items() if v is not None}
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

    def evaluate_model(
        self, model: Any, out_dir: Path, step: int, *, record: bool = True
    ) -> dict[str, dict[str, Any]]:
        """Evaluate ``model`` on every set into ``out_dir/<set>``; record (disk, then log) the results at ``step``.

        ``record=False`` only evaluates (or reads back a finished evaluation): for a result already recorded.
        """
        was_training = model.training
        model.eval()
        results: dict[str, dict[str, Any]] = {}
        try:
            for s in self.eval_sets:
                results[s.name] = evaluate(
                    model, self.processor, s.items, out_dir / s.name, prompt_id=self.prompt_id,
                    decoding=self.decoding, model_name=f"{self.model_name}@{step}", benchmark=s.benchmark,
                    cache=s.cache, progress=True, print_table=False, keep_bar=False,
                )  # fmt: skip
        finally:
            model.train(was_training)
        row: dict[str, Any] = {STEP_KEY: step}
        for name, metrics in results.items():
            row.update(eval_log_row(name, metrics))
        if is_main() and record:  # every process evaluated its shard; one records the result
            # Disk first: W&B buffers, a kill can lose the row.
            append_jsonl(self.run_dir / EVAL_LOG, [{"step": step, "dir": str(out_dir), **row}])
            if self.log is not None:
                self.log(row)
            summary = ", ".join(f"{k.removeprefix('eval/')}={v:.1f}" for k, v in row.items() if k.endswith("/avg"))
            say(f"[step {step}] {summary}")  # on its own line, above the training bar
        return results

    def recorded_steps(self) -> set[int]:
        path = self.run_dir / EVAL_LOG
        return {int(r["step"]) for r in read_jsonl(path, tolerate_truncated_tail=True)} if path.exists() else set()

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        # A resumed run starts from its last checkpoint; if a kill cut that checkpoint's evaluation short, finish it
        # now, while the model holds exactly that checkpoint's weights.
        step = state.global_step
        ckpt = Path(args.output_dir) / checkpoint_dir(step)
        if model is None or step == 0 or not ckpt.is_dir() or step in self.recorded_steps():
            return
        self.evaluate_model(model, ckpt / "eval", step)

    def on_save(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        # Every process takes part: the evaluator shards the items across processes and gathers the results.
        if model is None:
            return
        ckpt = Path(args.output_dir) / checkpoint_dir(state.global_step)
        self.evaluate_model(model, ckpt / "eval", state.global_step)
