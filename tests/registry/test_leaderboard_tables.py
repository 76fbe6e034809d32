"""Rendered paper tables in a results directory become leaderboard pages; each file is
untrusted: a bad one is listed as a problem, never shown, and nothing in it runs."""

from __future__ import annotations

import json
import os

import pytest

from dcregistry.leaderboard import ResultsDirSource, build_site
from dcregistry.leaderboard.tables import parse_table

from .leaderboard_helpers import HOSTILE, TINY_PNG, make_results, table_json


def _write(root, name, doc, png=TINY_PNG):
    (root / f"{name}.json").write_text(json.dumps(doc))
    if png is not None:
        (root / f"{name}.png").write_bytes(png)


def test_a_rendered_table_is_a_page_in_the_papers_layout_linking_its_sets(tmp_path):
    results, store, digests = make_results(tmp_path)
    digest = next(iter(digests.values()))
    _write(results, "dc-demo", table_json(digest=digest, title=HOSTILE, findings=[HOSTILE]))
    site = build_site([ResultsDirSource(results)], store)
    html = site.files["t/dc-demo.html"].decode()
    assert site.files["t/dc-demo.png"] == TINY_PNG
    assert "<script>window.__pwned" not in html and "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html
    assert "<tr><th>1</th>" in html and "<tr><th>10</th>" in html  # the paper's rows, in order
    assert "70.0 ± 1.0" in html and "(paper 91.7, Δ -1.7)" in html
    assert f'href="../a/{digest.removeprefix("sha256:")}.html"' in html  # the set's own page
    assert 'title="set dc ipc 10 not condensed yet"' in html
    index = site.files["index.html"].decode()
    assert 'href="t/dc-demo.html"' in index and "Paper tables" in index


@pytest.mark.parametrize(
    "change, problem",
    [
        ({"table": "../../etc"}, "must be a table name"),
        ({"table": "Other"}, "must be a table name"),
        ({"rows": list(map(str, range(5000)))}, "rows: must be a list of at most 200 strings"),
        ({"rows": list(map(str, range(100))), "columns": list(map(str, range(100)))}, "1 to 4096 positions"),
        ({"rows": []}, "1 to 4096 positions"),
        ({"title": 5}, "title: must be a string"),
        ({"title": "x" * 5000}, "longer than"),
        ({"cells": [{"row": "1", "column": "dc", "mean": "90", "n": 1}]}, "mean: must be a finite number"),
        ({"cells": [{"row": "1", "column": "dc", "mean": 1e999, "n": 1}]}, "Infinity, which is not JSON"),
        ({"cells": [{"row": "1", "column": "dc", "n": -1}]}, "n: must be an integer"),
        ({"cells": [{"row": "1", "column": "dc", "n": True}]}, "n: must be an integer"),
        ({"cells": [{"row": "1", "column": "dc", "n": 1, "artifact": "../x"}]}, "artifact: must be sha256"),
        ({"cells": [{"row": "1", "column": "dc", "n": 1, "published": 3}]}, "published: must be an object"),
        ({"cells": {"a": 1}}, "cells: must be a list"),
    ],
)
def test_a_bad_table_file_is_a_listed_problem_and_no_page(change, problem, tmp_path):
    results, store, _ = make_results(tmp_path)
    _write(results, "dc-demo", table_json(**change))
    site = build_site([ResultsDirSource(results)], store)
    assert "t/dc-demo.html" not in site.files and "t/dc-demo.png" not in site.files
    (found,) = [p for p in site.collection.problems if p.path == "dc-demo.json"]
    assert problem in found.problem, found.problem
    assert problem in site.files["index.html"].decode().replace("&#39;", "'")


def test_links_huge_files_fake_plots_and_other_json_are_not_read_as_tables(tmp_path):
    results, store, _ = make_results(tmp_path)
    outside = tmp_path / "secret.json"
    outside.write_text(json.dumps(table_json("secret")))
    os.symlink(outside, results / "secret.json")
    _write(results, "dc-big", table_json("dc-big", notes=["x" * 100] * 100_000))
    _write(results, "dc-fake", table_json("dc-fake"), png=b"<svg onload=alert(1)>")
    _write(results, "dc-name", table_json("dc-other"))
    (results / "manifest.json").write_text(json.dumps({"kind": "something-else"}))
    site = build_site([ResultsDirSource(results)], store)
    problems = {p.path: p.problem for p in site.collection.problems}
    assert "is not a regular file" in problems["secret.json"]
    assert "larger than" in problems["dc-big.json"] or "at most 200" in problems["dc-big.json"]
    assert "holds table 'dc-other', not 'dc-name'" in problems["dc-name.json"]
    assert "manifest.json" not in problems
    assert "t/dc-fake.html" in site.files and "t/dc-fake.png" not in site.files  # no plot, still a page
    assert 'id="plot"' not in site.files["t/dc-fake.html"].decode()
    assert not any("secret" in k or "dc-big" in k for k in site.files)


def test_the_committed_tables_parse():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "results" / "tables"
    for path in sorted(root.glob("*.json")):
        t = parse_table(path.read_bytes(), path.name)
        assert t.name == path.stem and t.cells and set(t.cells) <= {(r, c) for r in t.rows for c in t.columns}


def test_a_set_no_store_holds_shows_the_grid_its_results_directory_keeps(tmp_path):
    """``harness table run/render -o DIR`` into the results directory writes grids/<set>.png;
    without a store the set pages and the dataset page show those (only real PNG files)."""
    results, _, digests = make_results(tmp_path)
    grids = results / "grids"
    grids.mkdir()
    (grids / "digits-random-ipc1.png").write_bytes(TINY_PNG)
    (grids / "digits-herding-ipc1.png").write_bytes(b"GIF89a not a png")
    outside = tmp_path / "elsewhere.png"
    outside.write_bytes(TINY_PNG)
    os.symlink(outside, grids / "digits-random-ipc5.png")
    site = build_site([ResultsDirSource(results)], None)
    shown = {k for k in site.files if k.startswith("a/") and k.endswith(".png")}
    assert shown == {f"a/{digests['lab/digits-random-ipc1'].removeprefix('sha256:')}.png"}
    assert site.files[shown.pop()] == TINY_PNG
    assert 'id="samples-ipc1"' in site.files["d/digits.html"].decode()


def test_costs_read_the_same_on_the_site_as_in_the_markdown(tmp_path):
    """dcbench-time's K-Center cell: seconds per iteration in significant digits, Δ too."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "results" / "tables"
    md = (root / "dcbench-time.md").read_text()
    site = build_site([ResultsDirSource(root)], None, grids=False)
    html = site.files["t/dcbench-time.html"].decode()
    assert "0.0403 (paper 0.0012, Δ +0.0391)" in md
    assert '0.0403</a> <span class="muted">(paper 0.0012, Δ +0.0391)</span>' in html
    assert not any(k.startswith("a/") and k.endswith(".png") for k in site.files)  # grids=False
