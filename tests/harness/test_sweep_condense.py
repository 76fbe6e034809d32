"""`[[condense]]` cells: a sweep makes its sets (pushed to its store), then evaluates them; a
rerun condenses nothing again; a failing condense cell is recorded and retried when asked."""

from __future__ import annotations

import json

from dcregistry.store import LocalStore

from .cli_helpers import run_harness

SPEC = """name = "cs"
store = "{store}"
protocols = [{{ name = "dc-noaug", epochs = 2 }}]
seeds = [0, 1]

[[condense]]
dataset = "digits"
method = ["random", "herding"]
ipc = 1
{extra}
"""


def _spec(tmp_path, extra: str = ""):
    path = tmp_path / "spec.toml"
    path.write_text(SPEC.format(store=tmp_path / "store", extra=extra))
    return path


def _sweep(spec, res, capsys, *args):
    return run_harness(["sweep", spec, "--results", res, "--workers", "1", "-q", *args], capsys)


def test_condense_cells_make_push_and_evaluate_their_sets_once(tmp_path, capsys):
    spec, res = _spec(tmp_path), tmp_path / "res"
    code, out, err = _sweep(spec, res, capsys, "--dry-run")
    assert code == 0, err
    assert "condense cells: 2 total, 0 done, 0 failed, 2 left" in out and "cells: 0 total" in out
    code, out, err = _sweep(spec, res, capsys)
    assert code == 0, err
    assert "condense: 2 set(s) made and pushed, 0 failed" in out and "4 computed (4 done" in out
    store = LocalStore(tmp_path / "store")
    versions = store.list(all_versions=True)
    assert sorted(v.metadata["method"] for v in versions) == ["herding", "random"]
    assert all(v.name.startswith("cs/") and v.version == 1 for v in versions)
    records = sorted((res / "condense").glob("*.json"))
    assert len(records) == 2
    rec = json.loads(records[0].read_text())
    assert rec["status"] == "done" and rec["digest"] in {v.digest for v in versions}
    # the random cell's set holds the images `harness condense --method random` picks (the
    # digests differ: method_config records wall times)
    random_v = next(v for v in versions if v.metadata["method"] == "random")
    code, _, err = run_harness(
        ["condense", "digits", "--method", "random", "--ipc", "1", "-o", tmp_path / "direct", "-q"], capsys
    )
    from dcregistry.artifact import open_artifact

    assert code == 0, err
    import numpy as np

    swept = store.open(f"{random_v.name}@{random_v.digest}")
    assert np.array_equal(open_artifact(tmp_path / "direct").numpy("images"), swept.numpy("images"))
    before = {p.name: p.stat().st_mtime_ns for p in records}
    code, out, err = _sweep(spec, res, capsys)  # nothing left: no condensing, no evaluation
    assert code == 0, err
    assert "condense:" not in out and "0 computed" in out
    assert {p.name: p.stat().st_mtime_ns for p in sorted((res / "condense").glob("*.json"))} == before
    assert len(store.list(all_versions=True)) == 2
    code, out, _ = run_harness(["sweep", "status", spec, "--results", res], capsys)
    assert code == 0 and "condense cells: 2 total, 2 done" in out and "cells: 4 total, 4 done" in out


def test_a_failing_condense_cell_is_recorded_and_retried_only_when_asked(tmp_path, capsys):
    spec, res = _spec(tmp_path, "options = { no_such_option = 1 }"), tmp_path / "res"
    code, out, err = _sweep(spec, res, capsys)
    assert code == 1 and "2 condense cell(s) failed" in err and "no_such_option" in err
    assert len(err.strip().splitlines()[-1]) < 300  # one line
    recs = [json.loads(p.read_text()) for p in (res / "condense").glob("*.json")]
    assert [r["status"] for r in recs] == ["failed", "failed"] and "no_such_option" in recs[0]["error"]
    code, out, err = run_harness(["sweep", "status", spec, "--results", res], capsys)
    assert "condense cells: 2 total, 0 done, 2 failed" in out
    code, out, err = _sweep(spec, res, capsys)  # not retried without --retry-failed
    assert code == 1 and "condense:" not in out
    code, out, err = _sweep(spec, res, capsys, "--retry-failed")
    assert code == 1 and "condense: 0 set(s) made and pushed, 2 failed" in out
