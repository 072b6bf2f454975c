"""Decoding is exactly what metrics.json says: neutral greedy whatever the checkpoint's generation config, the
effective config read back from ``generate``, one recorded dtype, and truncation / missing-answer rates."""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import pytest
import torch

from data.benchmark import load_benchmark
from data.schema import DataError
from models.evaluate import PARTIAL_NAME, DecodingConfig, _end_counts, evaluate, weights_dtype
from models.loading import load_model_and_processor
from tests.helpers import CountingModel, write_mmau_benchmark

# What released Instruct checkpoints ship, and fields whose neutral value is None (a merge that only fills unset
# fields cannot be stopped by setting them to their defaults): every one of them must stay out of neutral decoding.
PENALTIES = {"repetition_penalty": 1.3, "no_repeat_ngram_size": 2, "bad_words_ids": [[7]], "suppress_tokens": [8, 9],
             "min_new_tokens": 3}  # fmt: skip
SAMPLING = {"do_sample": True, "temperature": 0.7, "top_k": 20, "top_p": 0.5, "repetition_penalty": 1.1}
MAX_NEW = 24  # long enough for the untrained model to repeat itself, so that the penalties have work to do


def _checkpoint(src: Path, dst: Path, gen_fields: dict) -> Path:
    """A copy of ``src`` whose generation_config.json carries ``gen_fields`` on top of its own."""
    shutil.copytree(src, dst)
    path = dst / "generation_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **gen_fields}))
    return dst


def _raws(out: Path) -> list[str]:
    return [p["raw_output"] for p in json.loads((out / "predictions.json").read_text())]


@pytest.fixture(scope="module")
def ckpts(tiny_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpts")
    return {"plain": Path(tiny_dir), "penalised": _checkpoint(Path(tiny_dir), root / "penalised", PENALTIES),
            "sampling": _checkpoint(Path(tiny_dir), root / "sampling", SAMPLING)}  # fmt: skip


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return load_benchmark(write_mmau_benchmark(tmp_path_factory.mktemp("bench"), n=8), version_label="unit")


@pytest.fixture(scope="module")
def runs(ckpts, bench, tmp_path_factory):
    """``runs(name, source)``: checkpoint ``name`` evaluated (once) in the default mode (source None) or another."""
    root = tmp_path_factory.mktemp("runs")

    @functools.cache
    def run(name: str, source: str | None = None) -> dict:
        model, processor = load_model_and_processor(ckpts[name])
        # Default runs use the default DecodingConfig: the default itself must be neutral.
        dec = DecodingConfig(batch_size=4, max_new_tokens=MAX_NEW, **({"source": source} if source else {}))
        out = root / f"{name}-{source or 'default'}"
        metrics = evaluate(model, processor, bench.items, out, decoding=dec, progress=False)
        return {"metrics": metrics, "raws": _raws(out), "model": model}

    return run


def test_neutral_decoding_ignores_the_checkpoints_generation_config(runs):
    plain = runs("plain")["raws"]
    assert runs("penalised")["raws"] == plain
    assert runs("sampling")["raws"] == plain
    # Not vacuous: decoded as the checkpoint says, the penalties change the outputs.
    penalised = runs("penalised", "checkpoint")["raws"]
    assert sum(a != b for a, b in zip(penalised, plain, strict=True)) >= len(plain) // 2
    # The model keeps its own generation config after the evaluation (saved checkpoints keep it too).
    assert runs("penalised")["model"].generation_config.repetition_penalty == 1.3


def test_metrics_record_the_effective_generation_config(runs, tiny_dir):
    from transformers import AutoTokenizer

    audio = AutoTokenizer.from_pretrained(tiny_dir).convert_tokens_to_ids("<|AUDIO|>")
    for name in ("plain", "penalised", "sampling"):
        dec = runs(name)["metrics"]["decoding"]
        eff = dec["effective"]
        assert dec["source"] == "neutral" and dec["greedy"] is True, name
        assert eff["do_sample"] is False and eff["num_beams"] == 1 and eff["max_new_tokens"] == MAX_NEW
        assert eff["repetition_penalty"] == 1.0 and eff["no_repeat_ngram_size"] == 0, name
        assert eff["bad_words_ids"] is None and eff["min_new_tokens"] is None, name
        assert eff["suppress_tokens"] == [audio], name  # only the audio placeholder
    checkpoint = runs("penalised", "checkpoint")["metrics"]["decoding"]
    assert checkpoint["source"] == "checkpoint" and checkpoint["greedy"] is True
    assert {k: checkpoint["effective"][k] for k in PENALTIES} == PENALTIES
    for args in (("plain",), ("penalised",), ("penalised", "checkpoint")):
        assert runs(*args)["metrics"]["dtype"] == {"compute": "float32", "weights": "float32"}


def test_a_sampling_checkpoint_is_recorded_as_not_greedy(ckpts, bench, tmp_path):
    model, processor = load_model_and_processor(ckpts["sampling"])
    torch.manual_seed(0)
    m = evaluate(model, processor, bench.items[:2], tmp_path / "s", progress=False,
                 decoding=DecodingConfig(max_new_tokens=4, source="checkpoint"))  # fmt: skip
    eff = m["decoding"]["effective"]
    assert m["decoding"]["greedy"] is False
    assert {k: eff[k] for k in SAMPLING} == SAMPLING


class LogitsDtype:
    """Records the dtype of the logits of every forward pass of ``model``."""

    def __init__(self, model):
        self.seen: set[torch.dtype] = set()
        self.handle = model.register_forward_hook(lambda mod, args, out: self.seen.add(out.logits.dtype))


def test_bf16_compute_on_cpu_runs_under_autocast_and_is_recorded(ckpts, bench, tmp_path):
    model, processor = load_model_and_processor(ckpts["plain"])  # fp32 weights on CPU
    spy = LogitsDtype(model)
    fp32 = evaluate(model, processor, bench.items, tmp_path / "fp32", progress=False,
                    decoding=DecodingConfig(batch_size=4, max_new_tokens=6))  # fmt: skip
    assert spy.seen == {torch.float32} and fp32["dtype"] == {"compute": "float32", "weights": "float32"}
    spy.seen.clear()
    bf16 = evaluate(model, processor, bench.items, tmp_path / "bf16", progress=False,
                    decoding=DecodingConfig(batch_size=4, max_new_tokens=6, compute_dtype="bfloat16"))  # fmt: skip
    assert spy.seen == {torch.bfloat16} and bf16["dtype"] == {"compute": "bfloat16", "weights": "float32"}
    assert bf16["n"] == len(bench.items) and all(_raws(tmp_path / "bf16"))
    assert next(model.parameters()).dtype == torch.float32  # autocast, not a cast of the weights
    spy.handle.remove()


def test_static_cache_under_autocast_falls_back_to_the_dynamic_cache(ckpts, bench, tmp_path):
    # transformers' static cache cannot hold autocast's fp32 keys beside bf16 values: it used to crash generate.
    model, processor = load_model_and_processor(ckpts["plain"])
    raws = {}
    for static in (False, True):
        dec = DecodingConfig(batch_size=4, max_new_tokens=6, compute_dtype="bfloat16", static_cache=static)
        m = evaluate(model, processor, bench.items, tmp_path / str(static), decoding=dec, progress=False)
        assert m["decoding"]["effective"]["cache_implementation"] is None
        raws[static] = _raws(tmp_path / str(static))
    assert raws[True] == raws[False]


def test_float32_compute_on_bf16_weights_is_refused(ckpts, bench, tmp_path):
    model, processor = load_model_and_processor(ckpts["plain"], dtype=torch.bfloat16)
    for dec in (DecodingConfig(compute_dtype="float32"), DecodingConfig()):  # CPU: None means float32
        with pytest.raises(DataError, match=r"compute_dtype='float32'.*bfloat16.*compute_dtype='bfloat16'"):
            evaluate(model, processor, bench.items[:2], tmp_path / "e", decoding=dec, progress=False)
    assert not (tmp_path / "e" / PARTIAL_NAME).exists()
    with pytest.raises(DataError, match="compute_dtype='float16'"):
        DecodingConfig(compute_dtype="float16")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="source='greedy'"):
        DecodingConfig(source="greedy")  # type: ignore[arg-type]


def test_weights_dtype_names_every_floating_dtype():
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    assert weights_dtype(net) == "float32"
    net[0].to(torch.bfloat16)  # a LoRA adapter in fp32 on a bf16 base looks like this
    assert weights_dtype(net) == "bfloat16+float32"


def test_end_counts():
    end, pad = 5, 5  # the pad token is an end token too, as in Qwen2-Audio
    rows = torch.tensor([[1, end, pad, pad], [1, 2, 3, 4], [end, pad, pad, pad], [1, 2, 3, 6]])
    effective = {"eos_token_id": [end, 6], "max_new_tokens": 4}
    assert _end_counts(rows, effective) == [(2, False), (4, True), (1, False), (4, False)]


class ScriptedModel(CountingModel):
    """Generates through the real model (so the real config is prepared and read back), then replaces each row's new
    tokens by a scripted completion, in turn: a complete answer, a cut answer that fills the limit, no answer."""

    def __init__(self, model, processor, fail_after: int | None = None):
        super().__init__(model, fail_after)
        tok = processor.tokenizer
        self.end, self.pad = tok.convert_tokens_to_ids("<|im_end|>"), tok.pad_token_id
        ids = {text: tok(text, add_special_tokens=False)["input_ids"] for text in ("<answer>high</answer>", "low")}
        self.limit = max(len(v) for v in ids.values()) + 2
        cut = tok("<answer>high", add_special_tokens=False)["input_ids"]
        cut = (cut * self.limit)[: self.limit]  # no end token up to the limit
        self.scripts = [ids["<answer>high</answer>"] + [self.end], cut, ids["low"] + [self.end]]
        self.texts = ["<answer>high</answer>", tok.decode(self.scripts[1]), "low"]

    def generate(self, **kw):
        first = self.rows  # the rows generated before this batch: scripts go round in item order
        prompt = super().generate(**kw)[:, : kw["input_ids"].shape[1]]
        new = torch.full((prompt.shape[0], self.limit), self.pad, dtype=prompt.dtype)
        for r in range(prompt.shape[0]):
            script = self.scripts[(first + r) % 3]
            new[r, : len(script)] = torch.tensor(script)
        return torch.cat([prompt, new], dim=1)


def test_truncation_and_missing_answer_rates(ckpts, tmp_path):
    bench = load_benchmark(write_mmau_benchmark(tmp_path / "bench", n=10), version_label="unit")
    model, processor = load_model_and_processor(ckpts["plain"])
    scripted = ScriptedModel(model, processor)
    out = tmp_path / "eval"
    m = evaluate(scripted, processor, bench.items, out, progress=False,
                 decoding=DecodingConfig(batch_size=4, max_new_tokens=scripted.limit))  # fmt: skip
    records = json.loads((out / "predictions.json").read_text())
    kinds = [scripted.texts.index(r["raw_output"]) for r in records]
    assert sorted(kinds) == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]  # rows 0..9 cycle through the three scripts
    for r, kind in zip(records, kinds, strict=True):
        assert r["hit_limit"] == (kind == 1)
        assert r["n_new_tokens"] == len(scripted.scripts[kind])  # the end token counts, the padding does not
    assert m["truncation_rate"] == 30.0 and m["truncation_counted"] == 10
    assert m["missing_answer_rate"] == 60.0  # the cut answer and the bare word
    assert m["format_rate"] == 70.0  # "<answer>" present, complete or not
    partial = [json.loads(line) for line in (out / PARTIAL_NAME).read_text().splitlines()]
    assert {r["id"]: r["hit_limit"] for r in partial} == {r["id"]: r["hit_limit"] for r in records}


def _strip_hit_limit(partial: Path) -> None:
    """Make the rows of ``partial`` look as if written before ``hit_limit`` was recorded."""
    rows = [json.loads(line) for line in partial.read_text().splitlines()]
    for r in rows:
        r.pop("hit_limit", None)
    partial.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_truncation_rate_counts_only_rows_that_record_it(ckpts, tmp_path):
    bench = load_benchmark(write_mmau_benchmark(tmp_path / "bench", n=10), version_label="unit")
    model, processor = load_model_and_processor(ckpts["plain"])
    out, dec = tmp_path / "eval", DecodingConfig(batch_size=3, max_new_tokens=2, prefetch=False)
    with pytest.raises(KeyboardInterrupt):
        evaluate(ScriptedModel(model, processor, fail_after=2), processor, bench.items, out, decoding=dec,
                 progress=False)  # fmt: skip
    _strip_hit_limit(out / PARTIAL_NAME)  # the 6 rows of a partial file written before hit_limit existed
    m = evaluate(model, processor, bench.items, out, decoding=dec, progress=False)
    records = {r["id"]: r for r in json.loads((out / "predictions.json").read_text())}
    counted = [r["hit_limit"] for r in records.values() if r["hit_limit"] is not None]
    assert m["n_resumed"] == 6 and m["truncation_counted"] == len(counted) == 4
    assert m["truncation_rate"] == round(100.0 * sum(counted) / 4, 2)
    # Nothing left that records it: no rate, and the effective config is still read back (nothing was generated).
    _strip_hit_limit(out / PARTIAL_NAME)
    again = evaluate(model, processor, bench.items, out, decoding=dec, progress=False)
    assert again["truncation_rate"] is None and again["truncation_counted"] == 0
    assert again["n_resumed"] == 10 and again["decoding"]["effective"] == m["decoding"]["effective"]


def test_resume_with_another_source_or_dtype_is_refused(ckpts, bench, tmp_path):
    model, processor = load_model_and_processor(ckpts["plain"])
    out, items = tmp_path / "eval", bench.items[:2]
    evaluate(model, processor, items, out, decoding=DecodingConfig(max_new_tokens=2), progress=False)
    for dec, field in ((DecodingConfig(max_new_tokens=2, source="checkpoint"), "decoding_source"),
                       (DecodingConfig(max_new_tokens=2, compute_dtype="bfloat16"), "compute_dtype")):  # fmt: skip
        with pytest.raises(DataError, match=f"different settings \\({field} differ\\)"):
            evaluate(model, processor, items, out, decoding=dec, progress=False)
    # A directory from an evaluator that did not record them: its decoding is unknown, so it is not resumed.
    state = out / "eval_settings.json"
    old = {k: v for k, v in json.loads(state.read_text()).items() if k not in ("decoding_source", "compute_dtype")}
    state.write_text(json.dumps(old))
    with pytest.raises(DataError, match="earlier evaluator that did not record compute_dtype, decoding_source"):
        evaluate(model, processor, items, out, decoding=DecodingConfig(max_new_tokens=2), progress=False)


def test_print_table_is_separate_from_the_progress_bar(ckpts, bench, tmp_path, capsys):
    model, processor = load_model_and_processor(ckpts["plain"])
    dec, items = DecodingConfig(max_new_tokens=2), bench.items[:2]
    evaluate(model, processor, items, tmp_path / "a", decoding=dec, progress=True, print_table=False)
    assert "average" not in capsys.readouterr().out
    evaluate(model, processor, items, tmp_path / "b", decoding=dec, progress=False, print_table=True)
    assert "average" in capsys.readouterr().out
    evaluate(model, processor, items, tmp_path / "c", decoding=dec, progress=True)  # None: as progress
    assert "average" in capsys.readouterr().out


def test_bench_api_still_generates_neutrally(ckpts, bench):
    # bench/eval_throughput.py passes decode_plan(...) to generate_batch.
    from models.evaluate import decode_plan, generate_batch, plan_batches, prepare_batch

    model, processor = load_model_and_processor(ckpts["penalised"])
    plan = decode_plan(model, processor, DecodingConfig(max_new_tokens=4))
    batch = prepare_batch(plan_batches(bench.items[:2], processor, "p2", 2)[0], processor, "p2")
    rows = generate_batch(model, processor, batch, plan)
    assert len(rows) == 2 and plan.effective["repetition_penalty"] == 1.0
    assert json.loads(json.dumps(plan.effective)) == plan.effective  # plain JSON data
