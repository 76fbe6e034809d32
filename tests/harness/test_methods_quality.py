"""A synthesis run that made its set worse says so: a rising loss trend, or (with --eval-every) a
best validation accuracy below the initial set's, ends with one warning line, is recorded in
``method_config["quality"]``, shown on the card and marked in `harness table render`."""

from __future__ import annotations

import json
import math

import pytest

from harness.methods.quality import MIN_TREND_ITERATIONS, LossTrend, QualityCheck, quality_warning

from .cli_helpers import run_harness


def test_loss_trend_compares_the_first_and_last_tenth():
    assert LossTrend.of([5.0] * (MIN_TREND_ITERATIONS - 1)) is None  # too short to judge
    assert LossTrend.of([1.0, math.nan] * 10) is None
    falling = LossTrend.of([10.0 - 0.1 * i for i in range(50)])
    assert falling.window == 5 and not falling.rising
    assert falling.first_mean == pytest.approx(9.8) and falling.last_mean == pytest.approx(5.3)
    rising = LossTrend.of([120.0] + [240.0] * 9)
    assert rising.window == 1 and rising.rising
    assert QualityCheck(falling).warning is None
    w = QualityCheck(rising).warning
    assert "the loss rose (first iteration: 120, last iteration: 240)" in w and "\n" not in w
    rec = QualityCheck(rising).to_json()
    assert rec["loss_trend"] == {"window": 1, "first_mean": 120.0, "last_mean": 240.0, "rising": True}
    assert rec["warning"] == w


def test_model_selection_below_the_initial_set_warns():
    q = QualityCheck(None, initial_accuracy=0.70, best_accuracy=0.60)
    assert "best validation accuracy 60.00 % is below the initial set's 70.00 %" in q.warning
    assert q.to_json()["initial_accuracy"] == 0.70
    assert QualityCheck(None, 0.70, 0.70).warning is None  # equal is not worse
    assert QualityCheck(None).to_json() == {"loss_trend": None, "warning": None}


@pytest.mark.parametrize(
    "mc", [None, [], {}, {"quality": "x"}, {"quality": {"warning": 3}}, {"quality": {"warning": ""}}]
)
def test_a_record_without_a_warning_reads_as_none(mc):
    assert quality_warning(mc) is None


# lr_img 30 (300x the published 0.1) throws the pixels out of the data's range in one step: the
# matching loss doubles (120 -> ~245 at 8x8) and the set scores below its real init.
BAD = ["--option", "lr_img=30", "--option", "batch_real=32", "--option", "compile=false"]


def test_a_run_that_made_its_set_worse_warns_and_records_it(tmp_path, capsys):
    from dcregistry.artifact import open_artifact

    out = tmp_path / "bad"
    code, stdout, err = run_harness(
        [
            "condense",
            "digits",
            "--method",
            "dc",
            "--ipc",
            "1",
            "--iterations",
            "10",
            *BAD,
            "-o",
            str(out),
            "--eval-every",
            "5",
            "--protocol",
            "dc-noaug",
            "--eval-epochs",
            "20",
            "--eval-runs",
            "1",
            "--device",
            "cpu",
            "-q",
        ],
        capsys,
    )
    assert code == 0, err  # the set is written: a warning never loses work
    lines = [ln for ln in err.splitlines() if ln.startswith("warning:")]
    assert len(lines) == 1 and "the loss rose" in lines[0], err
    art = open_artifact(out)
    q = art.metadata["method_config"]["quality"]
    assert q["loss_trend"]["rising"] and q["loss_trend"]["last_mean"] > 1.5 * q["loss_trend"]["first_mean"]
    val = art.metadata["method_config"]["validation"]
    assert val["initial_accuracy"] == q["initial_accuracy"] > q["best_accuracy"] == val["best_accuracy"]
    assert "is below the initial set's" in q["warning"] and q["warning"] in lines[0]
    assert "**quality warning**" in (out / "README.md").read_text()


def test_a_good_run_has_no_warning(tmp_path, capsys):
    from dcregistry.artifact import open_artifact

    out = tmp_path / "good"
    code, _, err = run_harness(
        [
            "condense",
            "digits",
            "--method",
            "dm",
            "--ipc",
            "1",
            "--iterations",
            "20",
            "--option",
            "compile=false",
            "-o",
            str(out),
            "--device",
            "cpu",
            "-q",
        ],
        capsys,
    )
    assert code == 0 and "warning" not in err, err
    q = open_artifact(out).metadata["method_config"]["quality"]
    assert q["warning"] is None and q["loss_trend"]["rising"] is False


def test_a_paper_table_marks_a_set_with_a_warning(tmp_path, dcreg_home):
    """A table (harness.tables) whose DC set was condensed with the bad settings above: its cell
    carries ⚠ and the note under the table names the warning; the random cell does not."""
    from harness.tables.base import Budget, TableDef
    from harness.tables.render import collect, render_json, render_markdown
    from harness.tables.run import run_table

    template = """
[[sweep]]
name = "q"
protocols = ["dc-noaug"]

[[sweep.condense]]
method = "random"
ipc = 1

[[sweep.condense]]
method = "dc"
ipc = 1
iterations = 10
options = { lr_img = 30, batch_real = 32, compile = false }
"""
    table = TableDef(
        name="t-quality",
        title="quality",
        reference="test",
        template=template,
        rows=("1",),
        columns=("random", "dc"),
        place=lambda e, p, part: [(str(e.ipc), e.method)],
    )
    budget = Budget("test", "test", ipcs=(1,), seeds=(0,), epochs=2, image_size=None)
    report = run_table(table, budget, tmp_path / "res")
    assert report.condensed == 2 and report.computed == 2 and not report.failed
    res = collect(table, budget, tmp_path / "res")
    md = render_markdown(res)
    row = next(ln for ln in md.splitlines() if ln.startswith("| 1 |"))
    random_cell, dc_cell = row.split(" | ")[1:3]
    assert "⚠" in dc_cell and "⚠" not in random_cell
    assert "quality warning" in md and "1 / dc: " in md
    cells = {c["column"]: c for c in json.loads(render_json(res))["cells"]}
    assert cells["dc"]["quality_warning"] and cells["random"]["quality_warning"] is None
