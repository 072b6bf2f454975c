"""Every run judged on more than one benchmark (``eval.benchmarks``), end to end on the smoke profile, and the toy's
second test in MMAR's shape (``data/toy/mix.py``).

The study test runs every Table 2 experiment on the smoke profile once (seconds), then the silent controls, Table 2
and the figures, and compares what the reports show with the files the evaluations wrote; resume of the second
benchmark's records is in tests/test_resume_exact.py.

    .venv/bin/pytest tests/test_multi_benchmark.py -q
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data.benchmark_registry import MMAR, MMAU
from data.schema import DataError
from tests.helpers import write_mmau_benchmark

TRAINED = ("sft-full", "sft-lora", "grpo-p2", "grpo-p3")
MMAR_FILE = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "mmar" / "MMAR-meta.6249700.json"


# --------------------------------------------------------------------------------------------------------------
# The toy's mixed test


def test_the_mixed_test_is_balanced_mmar_shaped_and_byte_identical(tmp_path: Path) -> None:
    from collections import Counter

    from data.benchmark import load_benchmark
    from data.toy.mix import generate_mix, read_mix
    from data.toy.world import SPECS, SUB_CATEGORIES

    a = generate_mix(tmp_path / "a", n=108, progress=False)
    b = generate_mix(tmp_path / "b", n=108, progress=False)
    assert a.read_bytes() == b.read_bytes()
    first = read_mix(tmp_path / "a")[0]
    wav = first["audio_path"].removeprefix("./")
    assert (tmp_path / "a" / wav).read_bytes() == (tmp_path / "b" / wav).read_bytes()

    records = read_mix(tmp_path / "a")
    assert Counter(r["modality"] for r in records) == {"mix-sound-music": 36, "mix-sound-speech": 36,
                                                       "mix-music-speech": 36}  # fmt: skip
    for r in records:
        target, other = r["target_task"], SPECS[r["distractor"]["sub-category"]].task
        assert (
            target != other
            and r["modality"] == f"mix-{'-'.join(t for t in ('sound', 'music', 'speech') if t in (target, other))}"
        )
        assert r["sub-category"] in SUB_CATEGORIES[target] and sorted(r["choices"]) == sorted(
            SPECS[r["sub-category"]].labels
        )
    # Answers and answer positions balanced per sub-category (counts differ by at most one): text cannot pick.
    for name, spec in SPECS.items():
        mine = [r for r in records if r["sub-category"] == name]
        answers = Counter(r["answer"] for r in mine)
        positions = Counter(r["choices"].index(r["answer"]) for r in mine)
        assert max(answers.values()) - min(answers.get(x, 0) for x in spec.labels) <= 1
        assert max(positions.values()) - min(positions.get(i, 0) for i in range(len(spec.labels))) <= 1
    bench = load_benchmark(a, version_label="toy")
    assert bench.name == MMAR.name and bench.version.startswith("toy-") and len(bench.items) == 108
    assert {it.task for it in bench.items} == {"mix-sound-music", "mix-sound-speech", "mix-music-speech"}


def test_toy_check_covers_the_mixed_test_and_fails_when_text_can_answer_it(tmp_path: Path) -> None:
    from data.toy import check, generate_world
    from data.toy.mix import generate_mix

    world = tmp_path / "w"
    generate_world(world, sizes={"train": 450, "val": 0, "test": 0}, progress=False)
    generate_mix(world / check.MIX, n=270, progress=False)
    report = check.run_check(world)
    mix = report["splits"]["mix"]["overall"]
    assert mix["n"] == 270
    assert mix["margin_points"] <= check.MAX_TEXT_MARGIN_POINTS  # text alone: chance
    assert mix["audio"] >= mix["chance"] + 0.2  # the answer is in the audio, distractor and all
    assert not [f for f in report["failures"] if f.startswith("mix")]

    # Make text able to answer: one answer per sub-category in train and in the mixed test (a prior the label
    # oracle learns from train). The check must then fail on mix.
    from data.toy.world import SPECS

    train = world / "train" / "train_qa.json"
    records = json.loads(train.read_text())
    for r in records:
        r["answer"] = r["multi_choice"].index(SPECS[r["question_type"]].labels[0])
    train.write_text(json.dumps(records))
    path = world / check.MIX / "mmar.json"
    records = json.loads(path.read_text())
    for r in records:
        r["answer"] = SPECS[r["sub-category"]].labels[0]
    path.write_text(json.dumps(records))
    assert [f for f in check.run_check(world, audio=False)["failures"] if f.startswith("mix:")]


# --------------------------------------------------------------------------------------------------------------
# eval.benchmarks and the profiles


def test_eval_benchmarks_must_name_registered_benchmarks_mmau_among_them() -> None:
    import dataclasses

    from experiments.registry import REGISTRY
    from experiments.spec import ExperimentError, check_fields

    exp = REGISTRY["grpo-p2"]
    for ok in (None, "mmau-test-mini", "mmau-test-mini,mmar", " mmar , mmau-test-mini "):
        check_fields(dataclasses.replace(exp, eval=dataclasses.replace(exp.eval, benchmarks=ok)))
    for bad in ("mmar", "mmau-test-mini,mmau", "mmau-test-mini,mmar,mmar", ""):
        with pytest.raises(ExperimentError, match="eval.benchmarks"):
            check_fields(dataclasses.replace(exp, eval=dataclasses.replace(exp.eval, benchmarks=bad)))


def test_paper_profile_adds_mmar_when_its_path_is_given_and_says_once_when_not(tmp_path, monkeypatch, capsys):
    from experiments import profiles

    mmau = write_mmau_benchmark(tmp_path / "mmau", n=3)
    monkeypatch.setenv("MMAU_JSON", str(mmau))
    monkeypatch.delenv("MMAR_JSON", raising=False)
    monkeypatch.setattr(profiles, "_SAID", set())
    data = profiles.get_profile("paper").data()
    for _ in range(2):
        assert [b.benchmark for b in data.eval_benchmarks(None)] == [MMAU.name]
    assert capsys.readouterr().out.count("mmar: skipped") == 1
    with pytest.raises(DataError, match="MMAR_JSON"):
        data.eval_benchmarks((MMAU.name, MMAR.name))

    if not MMAR_FILE.exists():
        pytest.skip(f"shared MMAR file missing: {MMAR_FILE}")
    monkeypatch.setenv("MMAR_JSON", str(MMAR_FILE))
    monkeypatch.setenv("MMAR_AUDIO_DIR", str(tmp_path / "mmar-audio"))
    sources = profiles.get_profile("paper").data().eval_benchmarks(None)
    assert [(b.benchmark, b.set_name) for b in sources] == [(MMAU.name, "test"), (MMAR.name, "mmar")]
    assert sources[1].json == MMAR_FILE and sources[1].audio_dir == tmp_path / "mmar-audio"
    assert [b.benchmark for b in profiles.get_profile("paper").data().eval_benchmarks((MMAU.name,))] == [MMAU.name]


def test_only_the_benchmarks_asked_for_are_evaluated(tmp_path, monkeypatch, smoke_world, tiny_dir) -> None:
    from experiments.__main__ import main

    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb"))
    out = tmp_path / "run"
    assert main(["run", "sft-full", "--profile", "smoke", "--output-dir", str(out),
                 "--set", "eval.benchmarks=mmau-test-mini"]) == 0  # fmt: skip
    rows = [json.loads(line) for line in (out / "checkpoint_evals.jsonl").read_text().splitlines()]
    assert rows and all("eval/test/avg" in r and not any(k.startswith("eval/mmar/") for k in r) for r in rows)
    assert not list(out.glob("checkpoint-*/eval/mmar"))


# --------------------------------------------------------------------------------------------------------------
# A whole smoke study: records, silent controls, Table 2 block, figures


@pytest.fixture(scope="module")
def study(tmp_path_factory, smoke_world, tiny_dir):
    """Every Table 2 experiment on the smoke profile, their silent controls, Table 2 and the figures, in an output
    root of their own (sharing the session's built world and model)."""
    import os

    from analysis.figures import main as figures_main
    from analysis.table2 import main as table2_main
    from controls.silent import main as silent_main
    from experiments.__main__ import main

    root = tmp_path_factory.mktemp("multi")
    (root / "cache").symlink_to(Path(os.environ["R1AQA_OUTPUTS"]) / "cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("R1AQA_OUTPUTS", str(root))
        mp.delenv("WANDB_DIR", raising=False)
        assert main(["paper", "--profile", "smoke", "--seeds", "0"]) == 0
        assert silent_main(["--profile", "smoke"]) == 0
        assert table2_main(["--profile", "smoke", "--out", str(root / "reports")]) == 0
        for fig in ("fig3", "fig4"):
            assert figures_main([fig, "--profile", "smoke", "--out", str(root / "reports")]) == 0
        from analysis.runs import read_offline_runs
        from analysis.table2 import build_table2

        table = build_table2(read_offline_runs(root / "wandb"), "smoke", run_dirs=root)
    return root, table


def _metrics(path: Path) -> dict:
    return json.loads((path / "metrics.json").read_text())


def test_every_checkpoint_and_direct_are_judged_on_both_benchmarks(study) -> None:
    from experiments.profiles import SMOKE_MIX

    root, _ = study
    for name in TRAINED:
        run = root / "smoke" / name / "seed0"
        rows = {r["step"]: r for r in map(json.loads, (run / "checkpoint_evals.jsonl").read_text().splitlines())}
        assert 0 in rows and len(rows) >= 3, name
        for row in rows.values():
            mmar = _metrics(Path(row["dir"]) / "mmar")
            assert mmar["benchmark"]["name"] == MMAR.name and mmar["n"] == SMOKE_MIX
            assert row["eval/mmar/avg"] == mmar["accuracy"]["avg"]
            # One W&B key per modality with items, as the metrics file has them.
            assert {k.split("/")[-1] for k in row if k.startswith("eval/mmar/")} == {
                *(m for m, v in mmar["accuracy"].items() if v is not None),
                "format_rate",
            }
            preds = json.loads((Path(row["dir"]) / "mmar" / "predictions.json").read_text())
            assert len(preds) == SMOKE_MIX and all("answer_prediction" in p for p in preds)
            assert _metrics(Path(row["dir"]) / "test")["benchmark"]["name"] == MMAU.name
    direct = root / "smoke" / "direct" / "seed0"
    assert _metrics(direct / "mmar")["n"] == SMOKE_MIX
    (row,) = map(json.loads, (direct / "checkpoint_evals.jsonl").read_text().splitlines())
    assert row["eval/mmar/avg"] == _metrics(direct / "mmar")["accuracy"]["avg"]


def test_table2_block_and_silent_controls_read_the_selected_checkpoints_files(study) -> None:
    root, table = study
    (block,) = table.blocks
    assert block.set_name == "mmar" and not block.quoted  # the toy's test is no MMAR version: nothing quoted
    assert block.columns[-1] == "avg" and set(block.columns[:-1]) <= {"mix-sound-music", "mix-sound-speech",
                                                                     "mix-music-speech"}  # fmt: skip
    for row, measured in zip(block.rows, table.rows, strict=True):
        (c,) = measured.checkpoints
        real, silent = _metrics(c.set_dir("mmar")), _metrics(c.silent_dir_of("mmar"))
        assert silent["audio_mode"] == "silent" and silent["benchmark"]["sha256"] == real["benchmark"]["sha256"]
        assert row.values["avg"] == [real["accuracy"]["avg"]]
        assert row.silent_values == [silent["accuracy"]["avg"]]
        assert row.gains == [real["accuracy"]["avg"] - silent["accuracy"]["avg"]]
    md = (root / "reports" / "table2" / "table2.md").read_text()
    assert "## Test in MMAR's shape (toy-" in md
    tex = (root / "reports" / "table2" / "table2.tex").read_text()
    assert "\\label{tab:table2-mmar}" in tex and tex.count("\\begin{table}") == tex.count("\\end{table}") == 3
    csv_rows = (root / "reports" / "table2" / "table2-more-benchmarks.csv").read_text().splitlines()
    assert len(csv_rows) == 1 + len(block.rows) * (len(block.columns) + 2)


def test_the_figures_get_a_panel_per_further_benchmark(study) -> None:
    from analysis.figures import FIGURES, draw, figure_runs
    from analysis.runs import read_offline_runs

    root, _ = study
    tables = read_offline_runs(root / "wandb")
    for name, letter in (("fig3", "(e)"), ("fig4", "(c)")):
        runs = figure_runs(tables, FIGURES[name], "smoke")
        fig = draw(tables, FIGURES[name], "smoke", runs=runs)
        titles = [ax.get_title(loc="left") for ax in fig.axes if ax.get_visible()]
        assert len(titles) == len(FIGURES[name].panels) + 1
        assert titles[-1].startswith(letter) and "MMAR's shape" in titles[-1]
        assert (root / "reports" / f"{name}.png").is_file()


def test_quoted_mmar_rows_only_beside_a_registered_mmar_version(tmp_path) -> None:
    from analysis.paper_numbers import MMAR_QUOTED
    from analysis.table2_more import build_block

    class Check:
        def run(self, run_id):
            return None

    class Checkpoint:
        def __init__(self, version: str):
            self.seed, self.run_id, self.step = 0, "r", 0
            self.others = {"mmar": {"sound": 40.0, "avg": 41.0}}
            d = tmp_path / version
            d.mkdir(exist_ok=True)
            (d / "metrics.json").write_text(json.dumps({"benchmark": {"version": version}}))
            self._dir = d

        def set_dir(self, name):
            return self._dir

        def silent_dir_of(self, name):
            return None

    class Row:
        def __init__(self, version: str):
            self.label, self.experiment, self.checkpoints = "GRPO + Prompt <2>", "grpo-p2", [Checkpoint(version)]

    real = build_block([Row("6249700")], Check(), "mmar")
    assert real.quoted == MMAR_QUOTED and real.title == "MMAR" and real.columns == ["sound", "avg"]
    assert any(q.avg == 47.6 and q.benchmark_version == "6249700" for q in real.quoted)
    toy = build_block([Row("toy-12345678")], Check(), "mmar")
    assert toy.quoted == () and "shape" in toy.title


def test_paper_time_reads_each_runs_evaluation_seconds_per_set(study, tmp_path, monkeypatch) -> None:
    from bench.paper_time import main as paper_time

    root, _ = study
    monkeypatch.setenv("R1AQA_OUTPUTS", str(root))
    out = tmp_path / "t.json"
    assert paper_time(["--profile", "smoke", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["runs"]) == {"direct", *TRAINED} and "machine" in result
    for name, r in result["runs"].items():
        assert {"test", "mmar"} <= set(r["eval_s"]) and set(r["silent_s"]) == {"test", "mmar"}, name
        assert r["wall_s"] >= sum(r["eval_s"].values()) > 0
