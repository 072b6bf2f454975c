"""The batched evaluator: greedy answers for a list of items, scored with the MMAU rule, resumable.

It takes a loaded model and processor and a list of :class:`~data.schema.Item`; it knows nothing about training.
Items are grouped into batches of similar length (longest first, so memory errors surface at once), text is padded
on the left, audio on the right, and ``generate`` decodes greedily until the end-of-turn token. While one batch
generates, a background thread loads and featurises the next one.

Every finished batch is appended to ``predictions.partial.jsonl`` (flushed), so a killed evaluation resumes where it
stopped: a rerun with the same settings skips the items already there; a rerun with different settings is refused
rather than mixing two evaluations. At the end it writes, atomically,

- ``predictions.json``: the benchmark's records in MMAU format, each with ``model_output`` and
  ``model_prediction`` (both the *extracted* answer, so either version of the official MMAU script scores it
  unchanged) and ``raw_output`` (the whole generation);
- ``metrics.json``: accuracy per task, micro average, per difficulty and sub-category, 95% Wilson intervals, plus
  the model, benchmark version, prompt id and decoding settings.

Run it on any checkpoint with ``python -m experiments eval --model PATH_OR_ID --benchmark FILE --audio-dir DIR``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from data.audio import AudioStats, load_audio, probe_audio
from data.audio_encoder import use_valid_frame_encoder
from data.distributed import barrier, gather_objects, is_main, rank_and_size
from data.features import featurize
from data.io import JsonlAppender, read_jsonl, write_json_atomic
from data.models import audio_window_seconds
from data.prompts import PROMPT_TEMPLATES, build_conversation, check_prompt_id, render_prompt
from data.schema import DataError, Item
from data.scoring import compute_metrics, extract_answer, format_table, mmau_correct

AudioMode = Literal["real", "silent"]
PARTIAL_NAME = "predictions.partial.jsonl"
STATE_NAME = "eval_settings.json"
# Audio tokens per second of audio in Qwen2-Audio (after the encoder's stride-2 conv and pooling).
AUDIO_TOKENS_PER_SECOND = 25


@dataclass(frozen=True)
class DecodingConfig:
    """Greedy decoding settings. ``max_new_tokens=256`` and batch 32 are the original evaluation's values."""

    batch_size: int = 32
    max_new_tokens: int = 256
    # Featurise the next batch in a background thread while the current one generates. None = on for GPU models,
    # off on CPU, where the thread competes with torch for the same cores (measured slower on 2 cores).
    prefetch: bool | None = None
    # Speed switches (exact; see bench/results): the audio encoder on valid frames only, and static-cache decoding
    # (compiled on GPU: a one-time compilation of tens of seconds, then much faster decode steps).
    valid_frame_encoder: bool = True
    static_cache: bool = False


@dataclass
class EvalSettings:
    """What defines an evaluation: a resumed run must match it exactly."""

    model: str
    prompt_id: str
    max_new_tokens: int
    audio_mode: str
    channel: str
    item_ids_sha256: str
    benchmark: dict[str, Any] = field(default_factory=dict)


@dataclass
class PreparedBatch:
    items: list[Item]
    inputs: dict[str, Any]
    audio: AudioStats = field(default_factory=AudioStats)

    def nbytes(self) -> int:
        return sum(v.numel() * v.element_size() for v in self.inputs.values() if hasattr(v, "numel"))


class FeatureCache:
    """Prepared batches kept in memory across evaluations of the same items (one per checkpoint in training).

    Featurisation is a fixed cost per item that does not change between checkpoints; on a small model it costs as
    much as generation itself. Entries are keyed by the batch's item ids and every setting that changes the inputs.
    ``max_bytes`` bounds memory (the real model's 30 s features take 1.5 MB per item); past it, nothing more is kept.
    """

    def __init__(self, max_bytes: int = 2 << 30):
        self.max_bytes, self.nbytes, self.hits, self.misses = max_bytes, 0, 0, 0
        self._store: dict[tuple, PreparedBatch] = {}

    def get_or_make(self, key: tuple, make: Callable[[], PreparedBatch]) -> PreparedBatch:
        if key in self._store:
            self.hits += 1
            return self._store[key]
        self.misses += 1
        batch = make()
        size = batch.nbytes()
        if self.nbytes + size <= self.max_bytes:
            self._store[key] = batch
            self.nbytes += size
        return batch


def _ids_hash(items: Sequence[Item]) -> str:
    return hashlib.sha256("\n".join(sorted(i.id for i in items)).encode()).hexdigest()[:16]


def _clip_seconds(path: str) -> float:
    # Header checks only (cheap, run at every checkpoint): a missing, corrupt or truncated clip raises DataError
    # here, while batches are planned, before anything is generated (the loaders also probed the samples).
    return probe_audio(path, check_samples=False).duration


def plan_batches(items: Sequence[Item], processor: Any, prompt_id: str, batch_size: int) -> list[list[Item]]:
    """Batches of similar total length (prompt tokens + audio tokens), longest first.

    Sorting cuts padding (left-padded rows of very different lengths waste decode compute); longest first means an
    out-of-memory batch fails in the first seconds, not after an hour.
    """
    window = audio_window_seconds(processor)

    def length(item: Item) -> int:
        text = build_conversation(item.question, item.choices, prompt_id)[-1]["content"][-1]["text"]
        audio = min(_clip_seconds(item.audio_path), window) * AUDIO_TOKENS_PER_SECOND
        return len(processor.tokenizer(text)["input_ids"]) + int(audio)

    ordered = sorted(items, key=lambda it: (-length(it), it.id))
    return [ordered[i : i + batch_size] for i in range(0, len(ordered), batch_size)]


def prepare_batch(
    items: Sequence[Item],
    processor: Any,
    prompt_id: str,
    *,
    audio_mode: AudioMode = "real",
    channel: str = "mean",
) -> PreparedBatch:
    """Load the audio and run the processor for one batch (CPU work, safe to run in a background thread)."""
    window = audio_window_seconds(processor)
    stats = AudioStats()
    waves = []
    for item in items:
        wave = load_audio(item.audio_path, max_seconds=window, channel=channel, stats=stats)  # type: ignore[arg-type]
        # Silent audio keeps the clip's length (and so its number of audio tokens): only the content is removed.
        waves.append(np.zeros_like(wave) if audio_mode == "silent" else wave)
    texts = [render_prompt(processor, build_conversation(i.question, i.choices, prompt_id)) for i in items]
    return PreparedBatch(list(items), featurize(processor, texts, waves), stats)


def generation_kwargs(
    model: Any, processor: Any, max_new_tokens: int, *, static_cache: bool = False
) -> dict[str, Any]:
    """Greedy decoding that stops at the end of the assistant turn, whatever the checkpoint's own sampling config."""
    from transformers import GenerationConfig

    tok = processor.tokenizer
    eos = model.generation_config.eos_token_id
    eos_ids = list(eos) if isinstance(eos, (list, tuple)) else ([eos] if eos is not None else [])
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    if im_end is not None and im_end not in eos_ids:
        eos_ids.append(im_end)
    pad = model.generation_config.pad_token_id
    pad = tok.pad_token_id if pad is None else pad
    config = GenerationConfig(
        do_sample=False, max_new_tokens=max_new_tokens, eos_token_id=eos_ids, pad_token_id=pad,
        cache_implementation="static" if static_cache else None,
    )  # fmt: skip
    return {"generation_config": config}


def to_device(inputs: dict[str, Any], model: Any) -> dict[str, Any]:
    out = {}
    for k, v in inputs.items():
        if hasattr(v, "to"):
            v = v.to(model.device)
            if k == "input_features":
                v = v.to(model.dtype)
        out[k] = v
    return out


def generate_batch(model: Any, processor: Any, batch: PreparedBatch, gen_kwargs: dict[str, Any]) -> list[str]:
    """Raw generations (special tokens removed) for one prepared batch."""
    import torch

    inputs = to_device(batch.inputs, model)
    with torch.no_grad():  # not inference_mode: ZeRO-3 keeps gathered params, which must stay usable by autograd
        out = model.generate(**inputs, **gen_kwargs)
    new_tokens = out[:, inputs["input_ids"].shape[1] :]
    return processor.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)


def _prefetched(batches: list[list[Item]], make: Callable[[list[Item]], PreparedBatch], on: bool) -> Iterator:
    if not on:
        for b in batches:
            yield make(b)
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(make, batches[0]) if batches else None
        for i in range(len(batches)):
            batch = future.result()  # type: ignore[union-attr]
            future = pool.submit(make, batches[i + 1]) if i + 1 < len(batches) else None
            yield batch


def _output_record(item: Item, row: dict[str, Any]) -> dict[str, Any]:
    """The item's own record (MMAU format) with the prediction keys the official script reads."""
    rec = dict(item.record) if item.record else {}
    if "choices" not in rec:  # non-MMAU sources (AVQA-format val sets): write an MMAU-shaped record
        rec = {
            "id": item.id, "audio_id": item.audio_path, "question": item.question, "choices": list(item.choices),
            "answer": item.answer, "task": item.task, "category": item.category,
            "sub-category": item.sub_category, "difficulty": item.difficulty, "dataset": item.source,
        }  # fmt: skip
    rec["model_output"] = row["prediction"]
    rec["model_prediction"] = row["prediction"]
    rec["raw_output"] = row["raw_output"]
    return rec


def _partial_path(out_dir: Path, rank: int, size: int) -> Path:
    # One file per process when sharded, so that no two processes append to the same file.
    return out_dir / (PARTIAL_NAME if size == 1 else PARTIAL_NAME.replace(".jsonl", f".rank{rank}.jsonl"))


def _load_partial(out_dir: Path, settings: EvalSettings) -> dict[str, dict[str, Any]]:
    """Rows already evaluated in this directory (by any process of any earlier run), after checking settings."""
    state_path = out_dir / STATE_NAME
    if is_main() and not state_path.exists():
        write_json_atomic(state_path, asdict(settings))
    barrier()
    old = json.loads(state_path.read_text())
    if old != asdict(settings):
        diff = sorted(k for k in set(old) | set(asdict(settings)) if old.get(k) != asdict(settings).get(k))
        raise DataError(
            f"{out_dir}: holds an evaluation with different settings ({', '.join(diff)} differ); "
            "delete the directory or choose another output directory"
        )
    done: dict[str, dict[str, Any]] = {}
    for path in sorted(out_dir.glob(PARTIAL_NAME.replace(".jsonl", "*.jsonl"))):
        done.update({r["id"]: r for r in read_jsonl(path, tolerate_truncated_tail=True)})
    return done


def evaluate(
    model: Any,
    processor: Any,
    items: Sequence[Item],
    out_dir: str | Path,
    *,
    prompt_id: str = "p2",
    decoding: DecodingConfig | None = None,
    model_name: str = "",
    benchmark: dict[str, Any] | None = None,
    audio_mode: AudioMode = "real",
    channel: str = "mean",
    progress: bool = True,
    log_every_batch: Callable[[int, int], None] | None = None,
    cache: FeatureCache | None = None,
) -> dict[str, Any]:
    """Evaluate ``items`` and write predictions.json and metrics.json under ``out_dir``; return the metrics.

    ``benchmark`` describes the item source (path, version, sha256, missing_audio_ids) and is copied into the
    metrics. ``audio_mode="silent"`` replaces each clip by silence of the same length (the ``direct-silent``
    control: how much can be answered without listening). Pass the same ``cache`` to repeated evaluations of the
    same items (each checkpoint of a training run) to featurise each item once.
    """
    from tqdm.auto import tqdm

    check_prompt_id(prompt_id)
    decoding = decoding or DecodingConfig()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not items:
        raise DataError("evaluate() got no items: check the benchmark file and audio directory")
    ids = [i.id for i in items]
    if len(set(ids)) != len(ids):
        raise DataError("evaluate() got duplicate item ids; each benchmark item must be scored once")
    settings = EvalSettings(
        model=model_name, prompt_id=prompt_id, max_new_tokens=decoding.max_new_tokens, audio_mode=audio_mode,
        channel=channel, item_ids_sha256=_ids_hash(items), benchmark=dict(benchmark or {}),
    )  # fmt: skip
    rank, size = rank_and_size()
    done = _load_partial(out_dir, settings)
    todo = [i for i in items if i.id not in done]
    stats = AudioStats()
    if size > 1 and todo:  # shard by length order, so every process gets items of every length
        ordered = plan_batches(todo, processor, prompt_id, len(todo))[0]
        todo = ordered[rank::size]
    batches = plan_batches(todo, processor, prompt_id, decoding.batch_size) if todo else []
    # A sharded model (FSDP, ZeRO-3) runs collectives in every forward: every process must call generate equally
    # often, so a process with fewer batches repeats one at the end and discards the output.
    spare = max(gather_objects(len(batches))) - len(batches) if size > 1 else 0
    gen_kwargs = generation_kwargs(model, processor, decoding.max_new_tokens, static_cache=decoding.static_cache)
    use_valid_frame_encoder(model, decoding.valid_frame_encoder)

    def make(b: list[Item]) -> PreparedBatch:
        def build() -> PreparedBatch:
            return prepare_batch(b, processor, prompt_id, audio_mode=audio_mode, channel=channel)

        if cache is None:
            return build()
        return cache.get_or_make((tuple(i.id for i in b), prompt_id, audio_mode, channel, id(processor)), build)

    start = time.perf_counter()
    shown = progress and rank == 0
    bar = tqdm(total=len(items), initial=len(done), desc=f"eval {out_dir.name}", unit="item", disable=not shown)
    new_rows: list[dict[str, Any]] = []
    with JsonlAppender(_partial_path(out_dir, rank, size)) as sink:
        prefetch = decoding.prefetch if decoding.prefetch is not None else model.device.type != "cpu"
        for batch in _prefetched(batches, make, prefetch):
            stats.merge(batch.audio)
            raws = generate_batch(model, processor, batch, gen_kwargs)
            rows = []
            for item, raw in zip(batch.items, raws, strict=True):
                pred = extract_answer(raw)
                row = {"id": item.id, "raw_output": raw, "prediction": pred,
                       "correct": mmau_correct(pred, item.answer, item.choices)}  # fmt: skip
                rows.append(row)
                done[item.id] = row
            sink.write_many(rows)
            new_rows.extend(rows)
            bar.update(len(rows) * size)
            if log_every_batch:
                log_every_batch(len(done), len(items))
        for _ in range(spare):  # see above: the same number of generate calls on every process
            generate_batch(model, processor, make(batches[0] if batches else list(items[:1])), gen_kwargs)
    bar.close()
    if size > 1:  # every process ends with every row and the whole audio count; each item was generated once
        gathered = gather_objects((new_rows, stats))
        stats = AudioStats()
        for rows, shard_stats in gathered:
            done.update({r["id"]: r for r in rows})
            stats.merge(shard_stats)
    elapsed = time.perf_counter() - start

    per_item = [
        {"task": i.task, "difficulty": i.difficulty, "sub_category": i.sub_category, "correct": done[i.id]["correct"]}
        for i in items
    ]
    metrics = compute_metrics(per_item)
    metrics.update(
        model=model_name,
        benchmark=dict(benchmark or {}),
        prompt_id=prompt_id,
        prompt_template=PROMPT_TEMPLATES[prompt_id],
        decoding={
            "greedy": True,
            "max_new_tokens": decoding.max_new_tokens,
            "batch_size": decoding.batch_size,
            "valid_frame_encoder": decoding.valid_frame_encoder,
            "static_cache": decoding.static_cache,
        },
        audio_mode=audio_mode,
        audio_channel=channel,
        audio_window_seconds=audio_window_seconds(processor),
        audio=stats.as_dict(),
        format_rate=round(100.0 * sum("<answer>" in done[i]["raw_output"] for i in ids) / len(ids), 2),
        n_resumed=len(items) - sum(len(r) for r, _ in gathered) if size > 1 else len(items) - len(todo),
        n_processes=size,
        seconds=round(elapsed, 3),
        items_per_second=round(len(todo) / elapsed, 3) if todo and elapsed > 0 else None,
    )
    if rank == 0:
        write_json_atomic(out_dir / "predictions.json", [_output_record(i, done[i.id]) for i in items])
        write_json_atomic(out_dir / "metrics.json", metrics)
        if progress:
            print(format_table(metrics))
    barrier()
    return metrics
