"""`dc-vs-dd` (DC Table 3 / T14: imported DD sets beside DC sets the table condenses) and `dc-nas`
(DC Table 4: ranking ConvNet variants on proxy sets; a derived layout: the best-ranked network's
accuracy, the rank correlation with the whole set's ranking, the proxy's evaluation time)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.tables import get_budget, get_table

from .cli_helpers import run_harness, run_table_smoke


def push_dd_set(tmp: Path, capsys: pytest.CaptureFixture[str], ipc: int = 1) -> str:
    """Import and push a "DD" set for digits into the store at $DCREG_HOME: ``ipc`` real training
    images per class, resized to 16x16. Test data standing in for an imported DD set (the harness
    has no DD method); returns its digest."""
    import numpy as np
    import torch

    from dcregistry.cli import (
        cli,
        io_cmds,  # noqa: F401  (registers import/export)
    )
    from dcregistry.cli.common import run_cli
    from harness.data import load_dataset

    train = load_dataset("digits", "train")
    idx = [int(i) for c in range(10) for i in (train.labels == c).nonzero().flatten()[:ipc]]
    images = torch.nn.functional.interpolate(train.images[idx], size=16, mode="bilinear")
    npz, art = tmp / f"dd-{ipc}.npz", tmp / f"dd-{ipc}"
    np.savez(npz, images=images.numpy().astype("float32"), labels=train.labels[idx].numpy())
    capsys.readouterr()
    argv = ["import", npz, "--format", "npz", "--method", "dd", "--dataset", "digits", "--layout", "nchw"]
    assert run_cli(cli, "dcreg", [str(a) for a in [*argv, "-o", art]]) == 0, capsys.readouterr()
    capsys.readouterr()
    assert run_cli(cli, "dcreg", ["push", str(art), "-n", f"test/dd-digits-ipc{ipc}"]) == 0
    ref, digest = capsys.readouterr().out.split()[:2]
    assert ref.startswith(f"test/dd-digits-ipc{ipc}@v")
    return digest


def test_dc_vs_dd_without_a_dd_set_exits_1_saying_how_to_import_one(tmp_path, capsys, dcreg_home):
    res = tmp_path / "r"
    for argv in (
        ["table", "run", "dc-vs-dd", "--budget", "smoke", "--results", res],
        ["table", "render", "dc-vs-dd", "--results", res],
    ):
        code, out, err = run_harness(argv, capsys)
        assert code == 1, (out, err)
        assert len(err.strip().splitlines()) == 1, err
        assert "table dc-vs-dd needs an imported DD set for digits" in err
        assert "`dcreg import FILE.npz --format npz --method dd --dataset digits -o DIR`" in err
        assert "`dcreg push DIR -n NS/NAME`" in err
        assert not res.exists()  # nothing planned or written
    code, out, err = run_harness(["table", "show", "dc-vs-dd"], capsys)
    assert code == 0 and "not runnable now: needs an imported DD set for digits" in out


def test_dc_vs_dd_places_the_store_query_sets_in_the_dd_column():
    t = get_table("dc-vs-dd")
    specs = t.specs(get_budget("smoke"), "cifar10")
    dd = [s for s in specs if s.artifacts]
    assert [a.to_json() for s in dd for a in s.artifacts] == [{"query": "method=dd dataset=cifar10"}]
    dc = [e for s in specs for e in s.condense]
    assert [(e.method, e.ipc, e.model) for e in dc] == [("dc", 1, "lenet")]
    archs = [dict(p.overrides)["arch"] for p in specs[0].protocols]
    assert (
        archs
        == ["lenet", "alexnet", "convnet", "mlp"]
        == [dict(p.overrides)["arch"] for p in dd[0].protocols]
    )
    assert {e.ipc for s in t.specs(get_budget("paper")) for e in s.condense} == {1, 10}


def test_dc_vs_dd_smoke_fills_both_columns(tmp_path, capsys, dcreg_home):
    digest = push_dd_set(tmp_path, capsys)
    res, out = tmp_path / "res", tmp_path / "out"
    code, stdout, err = run_table_smoke(capsys, "dc-vs-dd", res, out)
    assert code == 0, err
    assert "1 set(s) condensed (0 failed), 8 cells computed" in stdout
    doc = json.loads((out / "dc-vs-dd.json").read_text())
    assert doc["missing"] == []
    filled = {(c["row"], c["column"]) for c in doc["cells"] if c["n"] == c["expected"] == 1}
    assert filled == {(f"1 / {a}", m) for a in ("LeNet", "AlexNet", "ConvNet", "MLP") for m in ("DD", "DC")}
    assert {c["artifact"] for c in doc["cells"] if c["column"] == "DD" and c["n"]} == {digest}
    md = (out / "dc-vs-dd.md").read_text()
    assert "| IPC / evaluated with | DD | DC |" in md
    assert "DD sets in the store at IPC 1; none at IPC 10" in md and "DC − DD (points): 1 / LeNet " in md
    # render reads the same cells back
    code, md2, err = run_harness(["table", "render", "dc-vs-dd", "--results", res], capsys)
    assert code == 0 and md2 == md, err


def test_spearman_against_a_known_example_with_ties(monkeypatch):
    import sys

    from harness.tables.dc_nas import _ranks, spearman

    xs, ys = [1.0, 2.0, 2.0, 3.0], [1.0, 3.0, 2.0, 4.0]
    assert _ranks(xs) == [1.0, 2.5, 2.5, 4.0]  # the tie shares ranks 2 and 3
    expected = 3 / 10**0.5  # Pearson of the ranks: 4.5 / sqrt(4.5 * 5)
    assert spearman(xs, ys) == pytest.approx(expected)
    assert spearman([3.0, 2.0, 1.0], [1.0, 2.0, 3.0]) == pytest.approx(-1.0)
    assert spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]) is None  # undefined, never a number
    monkeypatch.setitem(sys.modules, "scipy.stats", None)  # no scipy: the exact fallback
    assert spearman(xs, ys) == pytest.approx(expected)
    assert spearman([10.0, 20.0, 20.0, 5.0], [1.0, 2.0, 2.0, 0.0]) == pytest.approx(1.0)


def _nas_results(proxy_acc: dict[str, list[float]], whole_acc: list[float]):
    from harness.tables.dc_nas import SPACE
    from harness.tables.render import TableCell, TableResults

    t = get_table("dc-nas")
    cells = {}
    for proxy, accs in {**proxy_acc, "whole dataset": whole_acc}.items():
        for a, acc in zip(SPACE, accs, strict=True):
            cells[(proxy, a)] = TableCell(proxy, a, expected=2, values=[acc, acc + 2], wall_times=[1.0, 2.0])
    return TableResults(t, get_budget("smoke"), "digits", "digits", cells, ["p"], source_cells=cells)


def test_nas_derived_layout_from_a_synthetic_results_set():
    from harness.tables.dc_nas import derive

    whole = [50.0, 60.0, 70.0, 55.0, 65.0, 75.0, 58.0, 68.0, 80.0]  # d3 w128 best
    dc = [w / 2 for w in whole]  # the same order: correlation 1, picks the best
    rnd = [10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 20.0][::-1]  # picks d1 w32
    res = _nas_results({"random": rnd, "DC": dc}, whole)
    out = derive(res)
    assert out[("DC", "correlation")].values == [pytest.approx(1.0)]
    assert out[("DC", "performance %")].values == [80.0, 82.0]  # the whole set's d3 w128 cell
    assert out[("random", "performance %")].values == [50.0, 52.0]  # its pick: d1 w32
    # ranks 9, 4.5 x 8 against 1 4 7 2 5 8 3 6 9: -18 / sqrt(18 * 60)
    assert out[("random", "correlation")].values == [pytest.approx(-(0.3**0.5))]
    assert out[("whole dataset", "correlation")].values == [pytest.approx(1.0)]
    assert all(out[(p, "time s")].values == [27.0] for p in ("random", "DC", "whole dataset"))
    assert all(not c.missing for c in out.values())
    # one proxy cell not evaluated: that row's cells wait, saying what for
    res.cells[("DC", "d2 w64")].values = [30.0]
    res.cells[("DC", "d2 w64")].missing = ["dc-noaug seed(s) 1 not evaluated yet"]
    out = derive(res)
    assert out[("DC", "correlation")].values == [] and out[("DC", "performance %")].values == []
    assert out[("DC", "time s")].missing == ["d2 w64: dc-noaug seed(s) 1 not evaluated yet"]
    assert "waits for the proxy's cells" in out[("DC", "correlation")].missing[0]
    assert out[("random", "correlation")].values  # the other rows stand


def test_dc_nas_smoke_through_the_cli(tmp_path, capsys, dcreg_home):
    res, out = tmp_path / "res", tmp_path / "out"
    code, stdout, err = run_table_smoke(capsys, "dc-nas", res, out)
    assert code == 0, err
    assert "3 set(s) condensed (0 failed), 27 cells computed" in stdout
    doc = json.loads((out / "dc-nas.json").read_text())
    by = {(c["row"], c["column"]): c for c in doc["cells"]}
    assert set(by) == {(r, c) for r in ("random", "DC", "whole dataset") for c in doc["columns"]}
    assert doc["missing"] == [] and len(doc["source_cells"]) == 27
    for r in ("random", "DC", "whole dataset"):
        assert 0 <= by[(r, "performance %")]["mean"] <= 100 and by[(r, "performance %")]["n"] == 1
        assert -1 <= by[(r, "correlation")]["mean"] <= 1 and by[(r, "correlation")]["metric"] == "spearman"
        assert by[(r, "time s")]["mean"] > 0 and by[(r, "time s")]["metric"] == "seconds"
    assert by[("whole dataset", "correlation")]["mean"] == pytest.approx(1.0)
    md = (out / "dc-nas.md").read_text()
    assert "| proxy set | performance % | correlation | time s |" in md and "best-ranked network: " in md
    rows = (out / "dc-nas.csv").read_text().splitlines()
    assert rows[0].startswith("row,column,mean") and len(rows) == 10
