"""`harness table`: the papers' tables as shipped sweep specs -- every table plans valid sweep specs
at every budget, runs from one command at `smoke` and renders in the paper's layout (published
values and Δ beside ours where the table carries them); unknown names exit 1 with one line; a
partially filled results directory renders with its missing cells listed."""

from __future__ import annotations

import csv
import json

import pytest

from harness.tables import BUDGET_NAMES, TABLE_GROUPS, TABLES, get_budget, get_table

from .cli_helpers import run_harness, run_table_smoke

RUNNABLE = [n for n in TABLES.names() if get_table(n).needs is None]
NEEDS = [n for n in TABLES.names() if get_table(n).needs is not None]


def test_list_names_every_table_and_what_the_unmakeable_ones_need(capsys):
    code, out, err = run_harness(["table", "list"], capsys)
    assert code == 0, err
    for name in TABLES.names():
        assert name in out
    assert {"dc-coreset", "dcbench-aug", "dc-cross-arch", "dc-distance", "dc-vs-dd", "dc-nas"} <= set(
        RUNNABLE
    )
    assert all(f"[needs {get_table(n).needs}]" in out for n in NEEDS)
    assert "dc-ablations      group: dc-activation, dc-pooling, dc-normalization, dc-depth, dc-width" in out


def test_a_group_name_stands_for_its_tables(capsys):
    code, out, err = run_harness(["table", "show", "dc-ablations"], capsys)
    assert code == 0, err
    assert [ln.split(":")[0] for ln in out.splitlines() if ln.startswith("dc-")] == list(
        TABLE_GROUPS["dc-ablations"]
    )
    # quick runs the ablations at 16x16 (depth 4 needs it), 30 DC iterations, and dc-cross-arch
    # with 10 DC iterations and 20 evaluation epochs
    quick = get_budget("quick")
    for name in TABLE_GROUPS["dc-ablations"]:
        cells = [e for s in get_table(name).specs(quick) for e in s.condense]
        assert {e.image_size for e in cells} == {16} and {e.iterations for e in cells} == {30}
    cross = get_table("dc-cross-arch").specs(quick)
    assert {e.iterations for s in cross for e in s.condense} == {10}
    assert {p.protocol().epochs for s in cross for p in s.protocols} == {20}


@pytest.mark.parametrize("name", RUNNABLE)
def test_every_table_plans_valid_sweep_specs_at_every_budget(name):
    t = get_table(name)
    positions = {(r, c) for r in t.rows for c in t.columns}
    for b in BUDGET_NAMES:
        specs = t.specs(get_budget(b))
        assert specs and all(s.condense or s.artifacts for s in specs)
        placed = {
            pos
            for s in specs
            for part in [s.name.removeprefix(f"{name}-").split("-digits-")[0]]
            for e in s.condense
            for p in s.protocols
            for pos in t.place(e, p, part)
        }
        if t.derive is None:  # a derived table places the cells it computes its layout from
            assert placed and placed <= positions, (b, placed - positions)
        else:
            assert placed
        if b == "smoke":
            assert all(s.seeds == (0,) for s in specs)
            assert all(p.protocol().epochs == 1 for s in specs for p in s.protocols)
            ipcs = {e.ipc for s in specs for e in s.condense}
            assert ipcs <= {1, 131}, ipcs  # IPC 1, and the whole-dataset row (131 per class)
        if b == "paper":
            assert all(s.seeds is None for s in specs)  # the protocols' own five seeds
            paper_its = dict(t.budget_overrides.get("paper", {}).get("iterations", {}))
            assert all(e.iterations == paper_its.get(e.method) for s in specs for e in s.condense)


def test_published_numbers_are_the_seeds(capsys):
    dc = get_table("dc-coreset").published
    assert [dc["mnist"][(k, "dc")].mean for k in ("1", "10", "50")] == [91.7, 97.4, 98.8]
    assert [dc["fashionmnist"][(k, "dc")].mean for k in ("1", "10", "50")] == [70.5, 82.3, 83.6]
    assert [dc["svhn"][(k, "dc")].mean for k in ("1", "10", "50")] == [31.2, 76.1, 82.3]
    assert [dc["cifar10"][(k, "dc")].mean for k in ("1", "10", "50")] == [28.3, 44.9, 53.9]
    aug = get_table("dcbench-aug").published["cifar10"]
    assert aug[("kcenter 1", "dsa")].mean == 25.16 and aug[("kcenter 50", "dsa")].std == 0.29
    assert aug[("mtt 10", "none")].mean == 53.49 and aug[("random 50", "autoaug")].mean == 42.47
    assert get_table("dcbench-ipc").published["cifar10"][("1000", "dm")].mean == 78.83


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["table", "show", "dc-corset"], "unknown table 'dc-corset'; did you mean dc-coreset"),
        (["table", "run", "dc-coreset", "--budget", "huge"], "unknown budget 'huge'"),
        (["table", "render", "nope"], "unknown table 'nope'"),
        (["table", "run", "dc-coreset", "--dataset", "imagenet"], "unknown dataset 'imagenet'"),
        # dc-vs-dd with no DD set in the store (see test_tables_dd_nas.py)
        (["table", "run", "dc-vs-dd"], "table dc-vs-dd needs an imported DD set for digits"),
        (["table", "render", "dc-vs-dd"], "table dc-vs-dd needs an imported DD set for digits"),
        (["table", "render", "dc-coreset"], "no such results directory"),
    ],
)
def test_bad_names_and_unmakeable_tables_exit_1_with_one_line(argv, message, tmp_path, capsys, dcreg_home):
    code, out, err = run_harness([*argv, "--results", tmp_path / "r"] if argv[1] != "show" else argv, capsys)
    assert code == 1, (out, err)
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r").exists()  # nothing was planned or written


def test_show_gives_the_layout_and_each_budgets_estimate(capsys):
    code, out, err = run_harness(["table", "show", "dc-coreset"], capsys)
    assert code == 0, err
    assert "columns: random, ors, herding, kcenter, forgetting, dc, dsa, dm, mtt, whole dataset" in out
    for b in BUDGET_NAMES:
        assert f"    {b} " in out
    assert "published values: 3 (mnist" in out
    assert "after " not in out  # the first table shares with none before it
    # a table whose sets and cells an earlier table makes: its cost after that one is nothing
    code, out, err = run_harness(["table", "show", "dcbench-time"], capsys)
    assert code == 0, err
    quick = out.split("    quick ")[1].split("    paper ")[0]
    assert "after dc-coreset, dcbench-aug (run first" in quick, quick
    assert "0 sets to condense, 0 evaluation cells, ~0 s" in quick
    code, out, err = run_harness(["table", "show", "dcbench-optim"], capsys)
    quick = out.split("    quick ")[1].split("    paper ")[0]
    assert "0 sets to condense, 36 evaluation cells" in quick  # the Adam half is its own


def test_a_partial_results_directory_renders_with_its_missing_cells(tmp_path, capsys, dcreg_home):
    """dc-distance at smoke (3 DC sets, one per distance), then a cell and a set record removed."""
    res, out = tmp_path / "res", tmp_path / "out"
    code, stdout, err = run_table_smoke(capsys, "dc-distance", res, out)
    assert code == 0, err
    assert "3 set(s) condensed (0 failed), 3 cells computed" in stdout
    # a sample grid per set, indexed beside the table
    assert "wrote 3 sample grid(s)" in stdout
    pngs = sorted((out / "grids").glob("*.png"))
    assert len(pngs) == 3 and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    index = (out / "dc-distance-grids.md").read_text()
    assert all(f"(grids/{p.name})" in index for p in pngs) and "Ours / " in index
    doc = json.loads((out / "dc-distance.json").read_text())
    assert doc["missing"] == [] and {c["row"] for c in doc["cells"] if c["n"] == 1} == {
        "Euclidean",
        "Cosine",
        "Ours",
    }
    assert (out / "dc-distance.png").stat().st_size > 1000
    # a rerun computes nothing
    code, stdout, err = run_table_smoke(capsys, "dc-distance", res)
    assert code == 0 and "0 set(s) condensed" in stdout and "0 cells computed, 3 already done" in stdout
    # another results directory: the sets come from the store (made once), only the cells are new
    code, stdout, err = run_table_smoke(capsys, "dc-distance", tmp_path / "res2")
    assert code == 0 and "0 set(s) condensed" in stdout and "3 cells computed" in stdout, err
    code, md, err = run_harness(["table", "render", "dc-distance", "--results", tmp_path / "res2"], capsys)
    assert code == 0 and "Incomplete" not in md, md
    # --no-grids: the table renders, no grid is claimed
    code, stdout, err = run_harness(
        ["table", "render", "dc-distance", "--results", res, "-o", tmp_path / "o2", "--no-grids"], capsys
    )
    assert code == 0 and "sample grid" not in stdout and not (tmp_path / "o2" / "grids").exists()
    # remove one evaluation cell, and one set from the store (with its record)
    from dcregistry.store import LocalStore

    cells = sorted(res.glob("digits/ipc1/*/*/seed0.json"))
    cells[0].unlink()
    store = LocalStore(dcreg_home)
    other = next(v for v in store.list() if v.digest.removeprefix("sha256:") != cells[0].parts[-3])
    store.rm(f"{other.name}@{other.digest}", force=True)
    for r in (res / "condense").glob("*.json"):
        if other.digest in r.read_text():
            r.unlink()
    code, md, err = run_harness(["table", "render", "dc-distance", "--results", res], capsys)
    assert code == 0, err
    assert "**Incomplete**: 2 missing or failed" in md
    assert "not evaluated yet" in md and "not condensed yet" in md
    assert "IPC 10 | not in this budget" not in md  # the smoke budget has IPC 1 only
    assert "digits is not mnist" in md and "budget `smoke`" in md and "(paper " not in md


@pytest.mark.slow
def test_every_table_runs_at_smoke_from_one_command_and_renders(tmp_path, capsys, dcreg_home):
    """All shipped tables into one results directory and store (sets with the same recipe are
    made once and shared by the tables that ask for them)."""
    from .test_tables_dd_nas import push_dd_set

    push_dd_set(tmp_path, capsys)  # dc-vs-dd's DD column: an imported set (test data)
    res, out = tmp_path / "res", tmp_path / "out"
    for name in RUNNABLE:
        # the two tables of many networks on two worker processes (the spawns pay off only there)
        workers = 2 if name in ("dc-cross-arch", "dcbench-transfer") else 1
        code, stdout, err = run_table_smoke(capsys, name, res, out, workers=workers)
        assert code == 0, (name, err)
        t = get_table(name)
        doc = json.loads((out / f"{name}.json").read_text())
        assert doc["missing"] == [], (name, doc["missing"])
        done = [c for c in doc["cells"] if c["n"] == c["expected"] == 1]
        accuracy = [c for c in done if c["metric"] == "accuracy"]
        costs = [c for c in done if c["metric"] != "accuracy"]
        assert done and all(0 <= c["mean"] <= 100 for c in accuracy), name
        from harness.tables.metrics import METRICS

        recorded = [c for c in costs if METRICS[c["metric"]].read is not None]  # one per set
        assert all(c["mean"] > 0 and c["protocol"] is None for c in recorded), name
        assert bool(costs) == (t.metric is not None), name
        md = (out / f"{name}.md").read_text()
        assert md.startswith(f"# {t.title}") and "budget `smoke`" in md and "digits is not" in md
        header = "| " + " | ".join([t.row_header, *t.columns]) + " |"
        assert header in md, name
        rows = list(csv.DictReader((out / f"{name}.csv").open()))
        assert {r["row"] for r in rows if r["n"] == "1"} <= set(t.rows)
        assert (out / f"{name}.png").is_file() == (t.plot is not None)
        if t.published_for("digits")[1]:  # published values beside ours, and the difference
            with_delta = [c for c in done if c["published"] is not None]
            assert with_delta and all(c["delta"] is not None for c in with_delta), name
            assert "(paper " in md and "Δ " in md
    # the dc-ablations group renders its five tables from the same cells, and one page of them
    code, stdout, err = run_harness(["table", "render", "dc-ablations", "--results", res, "-o", out], capsys)
    assert code == 0, err
    group = (out / "dc-ablations.md").read_text()
    for member in TABLE_GROUPS["dc-ablations"]:
        assert f"# {get_table(member).title}" in group and f"wrote {out / member}.md" in stdout
    # dc-cost: dc-coreset's sets and cells (nothing computed for it) beside their recorded costs
    cost = json.loads((out / "dc-cost.json").read_text())
    by = {(c["row"], c["column"]): c for c in cost["cells"]}
    coreset_doc = json.loads((out / "dc-coreset.json").read_text())
    for c in coreset_doc["cells"]:
        if c["row"] == "1" and c["column"] in ("dc", "kcenter"):
            assert by[(c["column"], "IPC 1 accuracy %")]["values"] == c["values"]
            assert by[(c["column"], "IPC 1 time s")]["artifact"] == c["artifact"]
    timing = json.loads((out / "dcbench-time.json").read_text())
    assert {c["row"] for c in timing["cells"] if c["n"]} == {"K-Center", "DC", "DSA", "DM", "MTT"}
    assert all(c["published"] for c in timing["cells"] if c["column"] == "s/iter IPC 1")
    coreset = (out / "dc-coreset.md").read_text()
    assert "digits is not mnist" in coreset and "(paper 91.7, Δ " in coreset
    assert "| 10 |" in coreset and "not in this budget (paper 97.4)" in coreset


def test_cost_metrics_read_the_sets_method_config():
    from dataclasses import replace

    from dcregistry.method_config import MethodConfig
    from harness.tables.metrics import METRICS, metric_value

    common = dict(config={}, config_hash="h", model="convnet", device="cpu", data={}, peak_memory_kind="rss")
    dc = MethodConfig(
        "dc",
        "synthesis",
        **common,
        wall_time_s=30.0,
        peak_memory_bytes=3 * 2**20,
        iterations=120,
        s_per_iter=0.25,
    )
    assert metric_value(METRICS["s_per_iter"], dc) == 0.25
    assert metric_value(METRICS["wall_s"], dc) == 30.0
    assert metric_value(METRICS["peak_mb"], dc) == 3.0
    # K-Center: its selection's time over its k-means iterations (DC-Bench Table 8's division)
    kc = MethodConfig(
        "kcenter",
        "selection",
        **{**common, "config": {"max_iter": 300}},
        wall_time_s=6.0,
        peak_memory_bytes=0,
    )
    assert metric_value(METRICS["s_per_iter"], kc) == 0.02
    # other selections have no iterations; junk in the free-form config is "not recorded"
    assert metric_value(METRICS["s_per_iter"], replace(kc, method="herding")) is None
    for junk in (True, "300", 0, -3, 1e-300, None):
        assert metric_value(METRICS["s_per_iter"], replace(kc, config={"max_iter": junk})) is None
    t = get_table("dcbench-time")
    assert (
        t.metric_of(("DC", "s/iter IPC 10")) == "s_per_iter" and t.metric_of(("DC", "MB IPC 1")) == "peak_mb"
    )
    assert get_table("dc-cost").metric_of(("dc", "IPC 10 accuracy %")) == "accuracy"
    assert get_table("dc-coreset").metric_of(("1", "dc")) == "accuracy"


def test_dcbench_aug_findings_compare_augmentation_spread_with_method_gaps():
    from harness.tables.dcbench_aug import findings
    from harness.tables.render import TableCell

    # two methods at IPC 1: augmentation moves each by 10 points, the methods are 2 apart and
    # swap places under dsa
    cells = {
        ("random 1", "none"): TableCell("random 1", "none", values=[50.0]),
        ("random 1", "dsa"): TableCell("random 1", "dsa", values=[60.0]),
        ("dc 1", "none"): TableCell("dc 1", "none", values=[52.0]),
        ("dc 1", "dsa"): TableCell("dc 1", "dsa", values=[58.0]),
    }
    (line,) = findings(cells, "digits")
    assert line.startswith("digits, IPC 1: the evaluation augmentation moves a method by 8.0 points")
    assert "most: random, 10.0" in line and "2 of 2 gaps" in line and "median gap 2.0" in line
    assert "flips the order of 1 of 1 method pairs" in line
    assert findings({}, "digits") == []
    # the paper's own CIFAR-10 numbers are read the same way, beside ours
    res_lines = get_table("dcbench-aug").findings
    assert res_lines is not None


def test_a_set_whose_record_does_not_parse_is_reported_not_read(make_artifact, dcreg_home):
    """A pushed set's ``method_config`` claims to be a condense record (``config_hash``) but its
    fields are junk: the table says so for that set; nothing is read from it as a number."""
    from dcregistry.store import LocalStore
    from harness.tables.render import _method_config

    store = LocalStore(dcreg_home)
    bad = {"config_hash": "h", "method": "dc", "kind": "synthesis", "wall_time_s": "1e9"}
    pushed = store.push(make_artifact(method="dc", method_config=bad).path, "lab/junk")
    why = _method_config(None, "lab/junk", pushed.digest)
    assert isinstance(why, str) and "method_config" in why
    free_form = store.push(make_artifact(method_config={"wall_time_s": 3.0}).path, "lab/imported")
    assert _method_config(None, "lab/imported", free_form.digest) is None  # not a condense record
    assert _method_config(None, "lab/absent", "sha256:" + "0" * 64) is None


def test_sets_that_failed_earlier_keep_the_table_run_failing_until_retried(tmp_path, capsys, dcreg_home):
    """A dataset that is not there: every set fails; a rerun does not retry them and still exits 1
    (the table is incomplete), saying so; --retry-failed tries again."""
    res, extra = tmp_path / "res", ("--dataset", "mnist", "--data-root", tmp_path / "no-data")
    code, stdout, err = run_table_smoke(capsys, "dc-distance", res, None, *extra)
    assert code == 1 and "3 cell(s) failed" in err and "mnist not found under" in err
    assert "0 set(s) condensed (3 failed)" in stdout
    code, stdout, err = run_table_smoke(capsys, "dc-distance", res, None, *extra)
    assert code == 1 and "(0 failed, 3 failed earlier (skipped; --retry-failed reruns them))" in stdout
    assert "mnist not found" not in err and "3 cell(s) failed" in err
    code, stdout, err = run_table_smoke(capsys, "dc-distance", res, None, *extra, "--retry-failed")
    assert code == 1 and "(3 failed)" in stdout and "mnist not found under" in err


def test_the_site_and_the_markdown_format_each_metric_alike():
    from dcregistry.leaderboard.tables import FIXED_DECIMALS, delta_text, value_text
    from harness.tables.metrics import METRICS

    for m in METRICS.values():  # fixed decimals for what is not a cost of a set, and only that
        assert (m.read is None) == (m.name in FIXED_DECIMALS), m.name
    assert value_text("accuracy", 91.66) == "91.7" and value_text("spearman", 0.456) == "0.46"
    assert value_text("s_per_iter", 0.040331) == "0.0403" and value_text("peak_mb", 2438.4) == "2438"
    assert delta_text("accuracy", -1.25) == "-1.2" and delta_text("s_per_iter", 0.03913) == "+0.0391"
