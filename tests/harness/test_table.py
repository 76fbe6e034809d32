"""`harness table`: one command condenses, evaluates and renders the comparison table; a rerun
recomputes nothing; more runs reuse the stored cells and sets; bad budgets fail before any work."""

from __future__ import annotations

import json
import re

import pytest
from PIL import Image

from .cli_helpers import run_harness

# Tiny budgets: 8x8 digits, 2 DM iterations without compilation, 2+1 evaluation epochs.
BASE = [
    "table",
    "--methods",
    "random,dm",
    "--ipcs",
    "1",
    "--protocols",
    "dc-noaug,dsa",
    "--image-size",
    "8",
    "--epochs",
    "2",
    "--iterations",
    "dm=2",
    "--option",
    "dm.compile=false",
    "--device",
    "cpu",
    "-q",
]


def _counts(stdout: str) -> tuple[int, int, int]:
    m = re.search(r"(\d+) sets condensed, (\d+) cells computed, (\d+) missing", stdout)
    assert m, stdout
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def test_table_runs_renders_and_resumes_without_recomputing(tmp_path, capsys):
    out = tmp_path / "results"
    code, stdout, err = run_harness([*BASE, "-o", str(out), "--runs", "1"], capsys)
    assert code == 0, err
    assert _counts(stdout) == (2, 4, 0)  # 2 sets; 2 sets x 2 protocols x 1 run

    table = (out / "table.md").read_text()
    for method in ("random", "dm"):
        row = next(line for line in table.splitlines() if line.startswith(f"| {method} |"))
        assert len(re.findall(r"\d+\.\d ± \d+\.\d", row)) == 2, row  # both protocols filled
    assert "| dm | 1 | 2 |" in table  # the iterations actually used are in the budget table
    assert "Incomplete" not in table

    res = json.loads((out / "results.json").read_text())
    assert res["missing"] == []
    dm = next(r for r in res["rows"] if r["method"] == "dm")
    assert dm["sets"][0]["iterations"] == 2 and dm["peak_memory_bytes"] > 0
    assert dm["wall_time_s"] > 0 and dm["protocols"]["dsa"]["n"] == 1
    assert 0.0 <= dm["protocols"]["dc-noaug"]["mean"] <= 1.0

    grids = sorted((out / "grids").glob("*.png"))
    assert [g.name.split("-")[0] for g in grids] == ["dm", "random"]
    for png in [*grids, out / "chart.png"]:
        with Image.open(png) as im:
            assert im.format == "PNG" and im.size[0] > 10 and im.size[1] > 10
    cells = sorted((out / "cells").glob("*.json"))
    stamps = {c: c.stat().st_mtime_ns for c in cells}

    # The same command again: nothing condensed, nothing evaluated, the stored cells untouched.
    code, stdout, err = run_harness([*BASE, "-o", str(out), "--runs", "1"], capsys)
    assert code == 0, err
    assert _counts(stdout) == (0, 0, 0)
    assert {c: c.stat().st_mtime_ns for c in cells} == stamps

    # --render-only fills a README's marked section from the stored results, computing nothing.
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- method-table:begin -->\nold\n<!-- method-table:end -->\nafter\n")
    code, stdout, err = run_harness(
        [*BASE, "-o", str(out), "--runs", "1", "--render-only", "--readme", str(readme)], capsys
    )
    assert code == 0, err
    text = readme.read_text()
    assert "old" not in text and text.endswith("<!-- method-table:end -->\nafter\n")
    assert "| random |" in text and "(results/chart.png)" in text
    for link in re.findall(r"\]\((results/[^)]+\.png)\)", text):
        assert (tmp_path / link).is_file(), link
    assert len(re.findall(r"\]\((results/grids/[^)]+\.png)\)", text)) == 2

    # Only the rendered files kept (sets/ and cells/ gone, as in a commit of results/): rendering
    # again refuses instead of replacing the stored table with an empty one.
    kept = tmp_path / "kept"
    kept.mkdir()
    for name in ("results.json", "table.md"):
        (kept / name).write_bytes((out / name).read_bytes())
    code, stdout, err = run_harness([*BASE, "-o", str(kept), "--runs", "1", "--render-only"], capsys)
    assert code == 1 and "measured cells but none of them" in err, err
    assert (kept / "results.json").read_bytes() == (out / "results.json").read_bytes()
    hostile = b"[" * 200_000 + b"]" * 200_000  # json.loads would die of RecursionError (exit 2)
    (kept / "results.json").write_bytes(hostile)
    code, stdout, err = run_harness([*BASE, "-o", str(kept), "--runs", "1", "--render-only"], capsys)
    assert (
        code == 1 and "cannot be read as a results document" in err and len(err.strip().splitlines()) == 1
    ), err
    assert (kept / "results.json").read_bytes() == hostile

    # One more run: only the new cells are computed, on the sets already condensed.
    code, stdout, err = run_harness([*BASE, "-o", str(out), "--runs", "2"], capsys)
    assert code == 0, err
    assert _counts(stdout) == (0, 4, 0)
    res = json.loads((out / "results.json").read_text())
    assert all(b["n"] == 2 for r in res["rows"] for b in r["protocols"].values())


def test_partial_table_lists_the_missing_cells(tmp_path, capsys):
    from harness.table import collect, config_from_cli, render_markdown

    cfg = config_from_cli(
        str(tmp_path / "empty"), "random,dc", "1,10", "dc-noaug", 2, 1, 2, (), (), None, image_size=8
    )
    res = collect(cfg)
    md = render_markdown(res)
    assert "set random-ipc1-s0-" in " ".join(res.missing)
    assert "random ipc 10 dc-noaug run 1" in res.missing
    assert "**Incomplete**" in md and "| random | — |" in md


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--iterations", "random=5"], "random is a selection method"),
        (["--iterations", "dc@x=5"], "METHOD or METHOD@IPC"),
        (["--iterations", "dc=0"], "positive integer"),
        (["--option", "dm.no_such_option=1"], "no_such_option"),
        (["--option", "compile=false"], "METHOD.KEY=VALUE"),
        (["--methods", "random,nosuchmethod"], "nosuchmethod"),
        (["--sets", "3", "--runs", "2"], "3 sets but only 2 runs"),
        (["--epochs", "3", "--protocol-epochs"], "not both"),
    ],
)
def test_bad_budgets_fail_before_any_work(argv, message, tmp_path, capsys):
    out = tmp_path / "results"
    code, _, err = run_harness(["table", "-o", str(out), "--methods", "random,dc,dm", "-q", *argv], capsys)
    assert code == 1, err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (out / "sets").exists() and not (out / "cells").exists()


def test_a_failing_condensation_reports_the_childs_error(tmp_path):
    """The set is condensed by a spawned process calling condense(); its error reaches the parent."""
    from harness.table import TableConfig, condense_set, plan_sets

    cfg = TableConfig(
        out=tmp_path / "t",
        dataset="mnist",
        data_root=str(tmp_path / "no-data"),
        methods=("random",),
        ipcs=(1,),
        device="cpu",
    )
    plan = plan_sets(cfg)[0]
    with pytest.raises(RuntimeError, match=r"condensing random-ipc1-s0-\w+ failed \(exit 1\): .*mnist"):
        condense_set(cfg, plan, quiet=True)


def test_the_recorded_command_asks_for_the_same_spec(tmp_path):
    """`command` in sets/NAME.run.json is a `harness condense` line that parses back to the spec."""
    import click

    from harness.cli import cli
    from harness.table import TableConfig, condense_spec, plan_sets

    cfg = TableConfig(
        out=tmp_path / "t",
        methods=("dm",),
        ipcs=(10,),
        image_size=16,
        device="cpu",
        options={"dm": {"compile": "false"}},
        iterations={"dm@10": 30},
    )
    spec = condense_spec(cfg, plan_sets(cfg)[0])
    args = spec.command_line()
    ctx = cli.make_context("harness", list(args), resilient_parsing=True)
    sub = cli.get_command(ctx, args[0])
    params = sub.make_context(args[0], args[1:], resilient_parsing=True).params
    assert isinstance(sub, click.Command)
    assert (params["dataset"], params["method"], params["ipc"], params["iterations"]) == (
        "digits",
        "dm",
        10,
        30,
    )
    assert params["image_size"] == 16 and params["resume"] and params["overwrite"]
    assert params["checkpoint_every"] == 3 and params["options"] == ("compile=false",)
    assert params["out"] == str(spec.out)
