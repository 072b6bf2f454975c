"""The batched evaluator: greedy answers for a list of items, scored with the MMAU rule, resumable.

It takes a loaded model and processor and a list of :class:`~data.schema.Item`; it knows nothing about training.
Items are grouped into batches of similar length (longest first, so memory errors surface at once), text is padded
on the left, audio on the right, and ``generate`` decodes greedily until the end-of-turn token. While one batch
generates, a background thread loads and featurises the next one.

Decoding is exactly what ``metrics.json`` says (:class:`DecodingConfig`):

- ``source="neutral"`` (the default) decodes greedily with every logits-changing setting neutral: no repetition,
  encoder-repetition or length penalty, no n-gram blocking, bad words, sequence bias, minimum length or forced
  tokens; only the family's audio placeholder (Qwen2-Audio's ``<|AUDIO|>``) is suppressed (as in GRPO sampling).
  transformers 5.23 completes the config passed to ``generate`` from ``model.generation_config`` for every field left unset (None), and setting a
  field to its default value does not stop that for fields whose default *is* None (bad words, suppressed or
  forced tokens). So for the call the model's own config is replaced by an empty one: nothing of a checkpoint's
  ``generation_config.json`` (released Instruct checkpoints ship penalties and sampling) reaches the decoding.
- ``source="checkpoint"`` decodes as the original evaluation did: ``generate(max_new_tokens=N)`` completed from the
  checkpoint's own generation config (penalties apply; it samples if the checkpoint says ``do_sample=True``), still
  stopping at the end of the assistant turn (``<|im_end|>``).
- ``compute_dtype`` (None: bfloat16 on CUDA, float32 otherwise) is one precision per evaluation: fp32 weights are
  decoded under bf16 autocast when it is bfloat16, so step 0 of a run decodes like its later checkpoints.

Every finished batch is appended to ``predictions.partial.jsonl`` (flushed), so a killed evaluation resumes where it
stopped: a rerun with the same settings skips the items already there; a rerun with different settings is refused
rather than mixing two evaluations. At the end it writes, atomically,

- ``predictions.json``: the benchmark's records in its own format, each with every key its official scripts read
  (MMAU: ``model_output`` and ``model_prediction``; MMAR: ``answer_prediction``; each the *extracted* answer, so
  the official script scores it unchanged) and ``raw_output`` (the whole generation);
- ``metrics.json``: accuracy per column (MMAU: task; MMAR: modality), micro average, per breakdown (MMAU:
  difficulty, sub-category; MMAR: category layer, sub-category), 95% Wilson intervals, plus the model, benchmark
  name and version, prompt id and

  - ``decoding``: ``source``, ``max_new_tokens``, batch size, speed switches, ``effective`` (the generation config
    ``generate`` actually used, read back from inside the call: sampling, beams, penalties, n-gram blocking, bad,
    suppressed and forced tokens, lengths, eos/pad, cache) and ``greedy`` (computed from ``effective``);
  - ``dtype``: ``{"compute": "float32"|"bfloat16", "weights": "float32" | "bfloat16+float32" | ...}``;
  - ``truncation_rate``: % of items whose output hit ``max_new_tokens`` without an end token, over the
    ``truncation_counted`` rows that record it (rows resumed from an older partial file do not; None if none do);
  - ``missing_answer_rate``: % of items whose raw output has no complete ``<answer>...</answer>`` (the pattern
    answer extraction uses); ``format_rate``: % whose output contains ``<answer>`` at all;
    ``listed_option_rate``: % whose extracted answer names one of the listed choices (right or wrong).

Each prediction row (in ``predictions.partial.jsonl`` and beside ``raw_output`` in ``predictions.json``) records
``n_new_tokens`` (generated tokens up to and including the end token) and ``hit_limit``.

Run it on any checkpoint with ``python -m experiments eval --model PATH_OR_ID --benchmark FILE --audio-dir DIR``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from data.audio import MIN_AUDIO_SAMPLES, AudioStats, load_audio, probe_audio
from data.benchmark_registry import MMAU, BenchmarkSpec, get_benchmark
from data.distributed import barrier, gather_objects, is_main, rank_and_size
from data.io import JsonlAppender, read_jsonl, write_json_atomic
from data.prompts import PROMPT_TEMPLATES, build_conversation, check_prompt_id, render_prompt
from data.run_files import METRICS_FILE, PREDICTIONS_FILE
from data.schema import DataError, Item
from data.scoring import compute_metrics, extract_answer, format_table, has_answer, mmau_correct
from models.audio_encoder import use_valid_frame_encoder
from models.features import featurize, placeholder_ids
from models.loading import audio_window_seconds
from models.registry import family_of

AudioMode = Literal["real", "silent"]
DecodingSource = Literal["neutral", "checkpoint"]
ComputeDtype = Literal["float32", "bfloat16"]
PARTIAL_NAME = "predictions.partial.jsonl"
STATE_NAME = "eval_settings.json"


@dataclass(frozen=True)
class DecodingConfig:
    """Decoding settings. ``max_new_tokens=256`` and batch 32 are the original evaluation's values.

    ``source``: ``"neutral"`` decodes greedily with neutral settings whatever the checkpoint's generation config says;
    ``"checkpoint"`` decodes as the original evaluation did, with the checkpoint's own generation config (it then
    samples if that config says ``do_sample=True``, drawing from torch's global RNG: seed torch to repeat it).
    ``compute_dtype``: the precision of the whole evaluation; None = ``"bfloat16"`` on a CUDA model, else
    ``"float32"``. bfloat16 on weights that are not all bf16 runs under bf16 autocast; float32 on bf16 weights is
    refused. See the module docstring.
    """

    batch_size: int = 32
    max_new_tokens: int = 256
    # Featurise the next batch in a background thread while the current one generates. None = on for GPU models,
    # off on CPU, where the thread competes with torch for the same cores (measured slower on 2 cores).
    prefetch: bool | None = None
    # Speed switches (exact; see bench/results): the audio encoder on valid frames only, and static-cache decoding
    # (compiled on GPU: a one-time compilation of tens of seconds, then much faster decode steps; not under bf16
    # autocast, where the dynamic cache is used: see decode_plan).
    valid_frame_encoder: bool = True
    static_cache: bool = False
    source: DecodingSource = "neutral"
    compute_dtype: ComputeDtype | None = None

    def __post_init__(self) -> None:
        if self.source not in get_args(DecodingSource):
            raise DataError(f"DecodingConfig.source={self.source!r}: use one of {get_args(DecodingSource)}")
        if self.compute_dtype is not None and self.compute_dtype not in get_args(ComputeDtype):
            raise DataError(
                f"DecodingConfig.compute_dtype={self.compute_dtype!r}: use one of {get_args(ComputeDtype)} or None "
                "(bfloat16 on CUDA, float32 otherwise)"
            )


@dataclass
class EvalSettings:
    """What defines an evaluation: a resumed run must match it exactly."""

    model: str
    prompt_id: str
    max_new_tokens: int
    audio_mode: str
    channel: str
    item_ids_sha256: str
    decoding_source: str
    compute_dtype: str
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
    per_second = family_of(processor).audio_tokens_per_second

    def length(item: Item) -> int:
        text = build_conversation(item.question, item.choices, prompt_id)[-1]["content"][-1]["text"]
        audio = min(_clip_seconds(item.audio_path), window) * per_second
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


def to_device(inputs: dict[str, Any], model: Any) -> dict[str, Any]:
    out = {}
    for k, v in inputs.items():
        if hasattr(v, "to"):
            v = v.to(model.device)
            if k == "input_features":
                v = v.to(model.dtype)
        out[k] = v
    return out


# Generation-config fields recorded in metrics.json whatever their value; any other field set away from
# transformers' own default (a custom entry of a checkpoint's generation_config.json) is recorded as well.
# max_length is not listed: max_new_tokens, always set here, overrides it.
EFFECTIVE_FIELDS = (
    "do_sample", "num_beams", "temperature", "top_k", "top_p", "min_p", "typical_p", "epsilon_cutoff", "eta_cutoff",
    "repetition_penalty", "encoder_repetition_penalty", "length_penalty", "exponential_decay_length_penalty",
    "no_repeat_ngram_size", "encoder_no_repeat_ngram_size", "bad_words_ids", "sequence_bias", "suppress_tokens",
    "begin_suppress_tokens", "forced_bos_token_id", "forced_eos_token_id", "min_new_tokens", "min_length",
    "max_new_tokens", "stop_strings", "eos_token_id", "pad_token_id", "use_cache", "cache_implementation",
)  # fmt: skip
# Neutral values of the logits-changing settings. Written out for the reader and for the record; what guarantees
# them is that the model's own config is replaced for the call (see _decoding_call).
NEUTRAL_GENERATION: dict[str, Any] = {
    "do_sample": False, "num_beams": 1, "repetition_penalty": 1.0, "encoder_repetition_penalty": 1.0,
    "length_penalty": 1.0, "no_repeat_ngram_size": 0, "encoder_no_repeat_ngram_size": 0, "min_length": 0,
}  # fmt: skip


@dataclass
class DecodePlan:
    """How one evaluation calls ``generate`` (made by :func:`decode_plan`).

    ``effective`` is filled in by every :func:`generate_batch` call with the config ``generate`` actually used.
    """

    config: Any  # the GenerationConfig passed to generate
    source: DecodingSource
    compute_dtype: ComputeDtype
    weights_dtype: str  # floating dtypes of the parameters, e.g. "float32" or "bfloat16+float32"
    autocast: bool  # bf16 autocast around generate (bf16 compute on weights that are not all bf16)
    effective: dict[str, Any] | None = None


def weights_dtype(model: Any) -> str:
    """The floating dtypes of the model's parameters, sorted and joined by '+': "float32", "bfloat16+float32"."""
    names = {str(p.dtype).removeprefix("torch.") for p in model.parameters() if p.is_floating_point()}
    return "+".join(sorted(names))


def decode_plan(model: Any, processor: Any, decoding: DecodingConfig) -> DecodePlan:
    """The generation config, precision and source of one evaluation, checked before anything is generated."""
    from transformers import GenerationConfig

    tok = processor.tokenizer
    eos = model.generation_config.eos_token_id
    eos_ids = list(eos) if isinstance(eos, (list, tuple)) else ([eos] if eos is not None else [])
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    if im_end is not None and im_end not in eos_ids:
        eos_ids.append(im_end)
    pad = model.generation_config.pad_token_id
    pad = tok.pad_token_id if pad is None else pad
    weights = weights_dtype(model)
    compute: ComputeDtype = decoding.compute_dtype or ("bfloat16" if model.device.type == "cuda" else "float32")
    if compute == "float32" and weights != "float32":
        raise DataError(
            f"DecodingConfig.compute_dtype='float32' but the model's weights are {weights}: they would be decoded "
            "at their own lower precision. Set compute_dtype='bfloat16', or load the model in float32 "
            "(load_model_and_processor(..., dtype=torch.float32))"
        )
    autocast = compute == "bfloat16" and weights != "bfloat16"
    # Under autocast the rotary embedding returns fp32 keys beside bf16 values, which transformers' static cache
    # cannot hold (index_copy_ dtype error): such evaluations use the dynamic cache (same outputs; recorded).
    static = decoding.static_cache and not autocast and family_of(model).allows("static_cache")
    common = {"max_new_tokens": decoding.max_new_tokens, "eos_token_id": eos_ids, "pad_token_id": pad,
              "cache_implementation": "static" if static else None}  # fmt: skip
    if decoding.source == "checkpoint":  # the original evaluation's generate(max_new_tokens=N), stopping at im_end
        config = GenerationConfig(**common)
    else:
        # A generated placeholder has no audio features behind it; GRPO sampling suppresses it too.
        suppress = [i for i in placeholder_ids(processor) if i is not None and i != tok.unk_token_id] or None
        config = GenerationConfig(**NEUTRAL_GENERATION, **common, suppress_tokens=suppress)
    return DecodePlan(config, decoding.source, compute, weights, autocast)


def _json_safe(value: Any) -> Any:
    # sequence_bias has tuple keys, watermarking/cache configs are objects: metrics.json must still be plain JSON.
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return str(value)


def effective_settings(config: Any) -> dict[str, Any]:
    """The JSON-safe record of a GenerationConfig as ``generate`` uses it (after transformers' merge)."""
    full = config.to_dict()
    defaults = config._get_default_generation_params()
    out = {k: full.get(k) for k in EFFECTIVE_FIELDS}
    out.update({k: v for k, v in full.items()
                if k not in out and not k.startswith("_") and k != "transformers_version"
                and v is not None and v != defaults.get(k)})  # fmt: skip
    return _json_safe(out)


@contextmanager
def _decoding_call(model: Any, plan: DecodePlan) -> Iterator[Any]:
    """Around one generate call: the neutral config replaces the model's own, the effective config is captured,
    and bf16 autocast is on where the plan says so. Yields the module whose ``generate`` prepares the config.

    Both are done on every GenerationMixin module of ``model`` (a PEFT or accelerate wrapper generates through the
    inner model) and undone afterwards, so the model and its saved checkpoints keep their own generation config.
    """
    import torch
    from transformers import GenerationConfig, GenerationMixin

    candidates = model.modules() if hasattr(model, "modules") else [model]
    modules = [m for m in candidates if isinstance(m, GenerationMixin)]
    if not modules:
        raise TypeError(f"{type(model).__name__} has no transformers GenerationMixin module: cannot control decoding")
    saved = [(m, m.generation_config, m.__dict__.get("_prepare_generation_config")) for m in modules]

    def capturing(prepare: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(generation_config: Any, **kwargs: Any) -> Any:
            config, model_kwargs = prepare(generation_config, **kwargs)
            plan.effective = effective_settings(config)  # before generate mutates it (special-token tensors)
            return config, model_kwargs

        return wrapper

    try:
        for m in modules:
            if plan.source == "neutral":
                # generate completes the passed config from this one for every unset field: an empty one adds nothing.
                m.generation_config = GenerationConfig()
            m._prepare_generation_config = capturing(m._prepare_generation_config)
        device_type = modules[0].device.type
        with torch.autocast(device_type, dtype=torch.bfloat16) if plan.autocast else nullcontext():
            yield modules[0]
    finally:
        for m, config, own in saved:
            m.generation_config = config
            m.__dict__.pop("_prepare_generation_config", None)
            if own is not None:  # an instance-level override that was there before us
                m._prepare_generation_config = own


def effective_generation(model: Any, plan: DecodePlan) -> dict[str, Any]:
    """What ``generate`` would use under ``plan``, read through the same hook (for an evaluation fully resumed, which
    generates nothing in this process)."""
    with _decoding_call(model, plan) as module:
        module._prepare_generation_config(plan.config)  # it copies the config itself
    assert plan.effective is not None
    return plan.effective


def _end_counts(new_tokens: Any, effective: dict[str, Any]) -> list[tuple[int, bool]]:
    """(n_new_tokens, hit_limit) per row: tokens up to and including the first end token; a row without one ran to
    the limit (rows that ended earlier are padded after their end token)."""
    import torch

    eos = effective.get("eos_token_id")
    eos_ids = list(eos) if isinstance(eos, list) else ([] if eos is None else [eos])
    ends = torch.isin(new_tokens, torch.tensor(eos_ids, dtype=new_tokens.dtype, device=new_tokens.device))
    limit = effective.get("max_new_tokens")
    counts = []
    for row in ends:
        hits = row.nonzero()
        n = int(hits[0]) + 1 if len(hits) else row.numel()
        counts.append((n, not len(hits) and limit is not None and n >= limit))
    return counts


def generate_batch(model: Any, processor: Any, batch: PreparedBatch, plan: DecodePlan) -> list[dict[str, Any]]:
    """Generate for one prepared batch under ``plan``: per row ``raw_output`` (special tokens removed),
    ``n_new_tokens`` and ``hit_limit``. Records the effective generation config in ``plan.effective``."""
    import torch

    inputs = to_device(batch.inputs, model)
    plan.effective = None
    # not inference_mode: ZeRO-3 keeps gathered params, which must stay usable by autograd
    with torch.no_grad(), _decoding_call(model, plan):
        out = model.generate(**inputs, generation_config=plan.config)
    if plan.effective is None:
        raise RuntimeError(f"{type(model).__name__}.generate did not prepare its config through transformers' hook: "
                           "the effective decoding settings cannot be recorded")  # fmt: skip
    new_tokens = out[:, inputs["input_ids"].shape[1] :]
    raws = processor.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
    return [{"raw_output": raw, "n_new_tokens": n, "hit_limit": hit}
            for raw, (n, hit) in zip(raws, _end_counts(new_tokens, plan.effective), strict=True)]  # fmt: skip


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


def _output_record(item: Item, row: dict[str, Any], spec: BenchmarkSpec) -> dict[str, Any]:
    """The item's own record (its benchmark's format) with every prediction key its official scripts read."""
    rec = dict(item.record) if item.record else {}
    if "choices" not in rec:  # non-MMAU sources (AVQA-format val sets): write an MMAU-shaped record
        rec = {
            "id": item.id, "audio_id": item.audio_path, "question": item.question, "choices": list(item.choices),
            "answer": item.answer, "task": item.task, "category": item.category,
            "sub-category": item.sub_category, "difficulty": item.difficulty, "dataset": item.source,
        }  # fmt: skip
    for key in spec.prediction_keys:  # MMAU: model_output and model_prediction; MMAR: answer_prediction
        rec[key] = row["prediction"]
    rec["raw_output"] = row["raw_output"]
    # None for rows resumed from a partial file written before these were recorded.
    rec["n_new_tokens"] = row.get("n_new_tokens")
    rec["hit_limit"] = row.get("hit_limit")
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
    old, new = json.loads(state_path.read_text()), asdict(settings)
    if old != new:
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        unrecorded = sorted(set(new) - set(old))
        why = (f"; it was written by an earlier evaluator that did not record {', '.join(unrecorded)}, so its "
               "decoding is unknown" if unrecorded else "")  # fmt: skip
        raise DataError(
            f"{out_dir}: holds an evaluation with different settings ({', '.join(diff)} differ{why}); "
            "delete the directory or choose another output directory"
        )
    done: dict[str, dict[str, Any]] = {}
    for path in sorted(out_dir.glob(PARTIAL_NAME.replace(".jsonl", "*.jsonl"))):
        done.update({r["id"]: r for r in read_jsonl(path, tolerate_truncated_tail=True)})
    return done


def _names_a_choice(prediction: str, item: Item) -> bool:
    """Whether the extracted answer is one of the listed choices, right or wrong (the MMAU rule against each)."""
    return any(mmau_correct(prediction, choice, item.choices) for choice in item.choices)


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
    print_table: bool | None = None,
    keep_bar: bool = True,
) -> dict[str, Any]:
    """Evaluate ``items`` and write predictions.json and metrics.json under ``out_dir``; return the metrics.

    ``benchmark`` describes the item source (path, version, sha256, missing_audio_ids) and is copied into the
    metrics. ``audio_mode="silent"`` replaces each clip by silence of the same length (the ``direct-silent``
    control: how much can be answered without listening). Pass the same ``cache`` to repeated evaluations of the
    same items (each checkpoint of a training run) to featurise each item once. ``progress`` shows a progress bar;
    ``print_table`` (None: same as ``progress``) prints the accuracy table at the end;
    ``keep_bar=False`` clears the finished bar (checkpoint evaluations, which print a one-line summary instead).
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
    plan = decode_plan(model, processor, decoding)  # a dtype error here, before anything is loaded or generated
    settings = EvalSettings(
        model=model_name, prompt_id=prompt_id, max_new_tokens=decoding.max_new_tokens, audio_mode=audio_mode,
        channel=channel, item_ids_sha256=_ids_hash(items), decoding_source=decoding.source,
        compute_dtype=plan.compute_dtype, benchmark=dict(benchmark or {}),
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
    use_valid_frame_encoder(model, decoding.valid_frame_encoder)

    def make(b: list[Item]) -> PreparedBatch:
        def build() -> PreparedBatch:
            return prepare_batch(b, processor, prompt_id, audio_mode=audio_mode, channel=channel)

        if cache is None:
            return build()
        return cache.get_or_make((tuple(i.id for i in b), prompt_id, audio_mode, channel, id(processor)), build)

    start = time.perf_counter()
    shown = progress and rank == 0
    bar = tqdm(
        total=len(items),
        initial=len(done),
        desc=f"eval {out_dir.name}",
        unit="item",
        disable=not shown,
        leave=keep_bar,
    )
    new_rows: list[dict[str, Any]] = []
    with JsonlAppender(_partial_path(out_dir, rank, size)) as sink:
        prefetch = decoding.prefetch if decoding.prefetch is not None else model.device.type != "cpu"
        for batch in _prefetched(batches, make, prefetch):
            stats.merge(batch.audio)
            outputs = generate_batch(model, processor, batch, plan)
            rows = []
            for item, gen in zip(batch.items, outputs, strict=True):
                pred = extract_answer(gen["raw_output"])
                row = {"id": item.id, "raw_output": gen["raw_output"], "prediction": pred,
                       "correct": mmau_correct(pred, item.answer, item.choices),
                       "n_new_tokens": gen["n_new_tokens"], "hit_limit": gen["hit_limit"]}  # fmt: skip
                rows.append(row)
                done[item.id] = row
            sink.write_many(rows)
            new_rows.extend(rows)
            bar.update(len(rows) * size)
            if log_every_batch:
                log_every_batch(len(done), len(items))
        for _ in range(spare):  # see above: the same number of generate calls on every process
            generate_batch(model, processor, make(batches[0] if batches else list(items[:1])), plan)
    bar.close()
    if size > 1:  # every process ends with every row and the whole audio count; each item was generated once
        gathered = gather_objects((new_rows, stats))
        stats = AudioStats()
        for rows, shard_stats in gathered:
            done.update({r["id"]: r for r in rows})
            stats.merge(shard_stats)
    elapsed = time.perf_counter() - start
    effective = plan.effective if plan.effective is not None else effective_generation(model, plan)
    hit = [done[i]["hit_limit"] for i in ids if "hit_limit" in done[i]]  # older partial rows lack it

    spec = get_benchmark(str((benchmark or {}).get("name", MMAU.name)))
    per_item = [
        {"task": i.task, "difficulty": i.difficulty, "category": i.category, "sub_category": i.sub_category,
         "correct": done[i.id]["correct"]}
        for i in items
    ]  # fmt: skip
    metrics = compute_metrics(per_item, spec)
    metrics.update(
        model=model_name,
        benchmark=dict(benchmark or {}),
        prompt_id=prompt_id,
        prompt_template=PROMPT_TEMPLATES[prompt_id],
        decoding={
            "source": decoding.source,
            "greedy": effective["do_sample"] is False and effective["num_beams"] == 1,
            "effective": effective,
            "max_new_tokens": decoding.max_new_tokens,
            "batch_size": decoding.batch_size,
            "valid_frame_encoder": decoding.valid_frame_encoder,
            "static_cache": decoding.static_cache,
        },
        dtype={"compute": plan.compute_dtype, "weights": plan.weights_dtype},
        audio_mode=audio_mode,
        audio_channel=channel,
        audio_window_seconds=audio_window_seconds(processor),
        audio=stats.as_dict(),
        format_rate=round(100.0 * sum("<answer>" in done[i]["raw_output"] for i in ids) / len(ids), 2),
        missing_answer_rate=round(100.0 * sum(not has_answer(done[i]["raw_output"]) for i in ids) / len(ids), 2),
        listed_option_rate=round(
            100.0 * sum(_names_a_choice(done[i.id]["prediction"], i) for i in items) / len(ids), 2
        ),
        truncation_rate=round(100.0 * sum(hit) / len(hit), 2) if hit else None,
        truncation_counted=len(hit),
        n_resumed=len(items) - sum(len(r) for r, _ in gathered) if size > 1 else len(items) - len(todo),
        n_processes=size,
        seconds=round(elapsed, 3),
        items_per_second=round(len(todo) / elapsed, 3) if todo and elapsed > 0 else None,
    )
    if rank == 0:
        if stats.n_padded:
            print(f"{out_dir}: {stats.n_padded} clips shorter than {MIN_AUDIO_SAMPLES} samples (one audio token) were "
                  f"padded with silence, e.g. {stats.padded[0]}; all counted in metrics.json (audio.n_padded_short)")  # fmt: skip
        write_json_atomic(out_dir / PREDICTIONS_FILE, [_output_record(i, done[i.id], spec) for i in items])
        write_json_atomic(out_dir / METRICS_FILE, metrics)
        if progress if print_table is None else print_table:
            print(format_table(metrics))
    barrier()
    return metrics
