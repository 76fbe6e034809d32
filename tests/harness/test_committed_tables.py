"""The `quick` tables committed under ``results/tables/`` (README "Paper tables"): their cells are
the sweep results directory they were rendered from, so rendering again from it gives the same
accuracies, and every committed table is complete (nothing missing or failed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.tables import get_budget, get_table
from harness.tables.render import collect

RESULTS = Path(__file__).resolve().parents[2] / "results" / "tables"
COMMITTED = sorted(p for p in RESULTS.glob("*.json")) if RESULTS.is_dir() else []
pytestmark = pytest.mark.skipif(not COMMITTED, reason="no committed table results (results/tables/*.json)")


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.stem)
def test_a_committed_table_renders_again_from_its_committed_cells(path, dcreg_home):
    doc = json.loads(path.read_text())
    assert (
        doc["kind"] == "harness-table-results/1" and doc["budget"] == "quick" and doc["dataset"] == "digits"
    )
    assert doc["missing"] == [], doc["missing"]
    table = get_table(doc["table"])
    # an empty store (dcreg_home): the sets are not committed, the cells and condense records are
    res = collect(table, get_budget("quick"), RESULTS, "digits")
    again = {(c.row, c.column): c for c in res.cells.values()}
    accuracy = [c for c in doc["cells"] if c["metric"] == "accuracy" and c["expected"]]
    assert accuracy or table.metric is not None
    for c in accuracy:
        ours = again[(c["row"], c["column"])]
        assert ours.values == c["values"] and len(c["values"]) == c["expected"] == 3, c
        assert ours.digest == c["artifact"]
    # the conditions are on the page: dataset, budget, and the machine (README says which)
    md = path.with_suffix(".md").read_text()
    assert "budget `quick`" in md and "digits is not" in md


def test_the_issue_tables_are_committed():
    """Issue 16's "done when": dc-coreset, the ConvNet ablations and dcbench-aug at quick on
    digits (dc-cross-arch too once its run is committed), with the group page of the ablations."""
    names = {p.stem for p in COMMITTED}
    want = {
        "dc-coreset",
        "dcbench-aug",
        "dc-activation",
        "dc-pooling",
        "dc-normalization",
        "dc-depth",
        "dc-width",
    }
    assert want <= names, want - names
    assert (RESULTS / "dc-ablations.md").is_file()
    findings = json.loads((RESULTS / "dcbench-aug.json").read_text())["findings"]
    assert any(
        f.startswith("digits, IPC 10: the evaluation augmentation moves a method by") for f in findings
    )
