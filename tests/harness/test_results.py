"""Sweep results as data: validated cell files, tampered files reported (never crashed on) and
recomputed, `harness results ls|show|export`, Parquet/JSONL read back, mean ± std as eval has it."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from .cli_helpers import run_harness
from .sweep_helpers import NAMES, cell_files, make_store, run_sweep_in_process, write_spec


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """(spec, results directory, store, digests) of one in-process digits sweep (read-only)."""
    root = tmp_path_factory.mktemp("results")
    store, digests = make_store(root)
    spec = write_spec(root / "spec.toml", store)
    run_sweep_in_process(spec, root / "res")
    return spec, root / "res", store, digests


@pytest.fixture
def res_copy(swept, tmp_path):
    """A writable copy of the swept results directory."""
    shutil.copytree(swept[1], tmp_path / "res")
    return tmp_path / "res"


# ----------------------------------------------------------------------- cell files
def test_every_cell_file_reads_back_as_a_validated_cell(swept):
    from dcregistry.records import EvalRecord
    from harness.sweep.results import ResultsDir

    scan = ResultsDir(swept[1]).scan()
    assert scan.bad == [] and len(scan.cells) == 12
    for c in scan.cells:
        assert c.status == "done" and c.record is not None and c.record.seeds == [c.key.seed]
        assert EvalRecord.from_json(c.to_json()).accuracies == c.record.accuracies  # an EvalRecord too
        assert swept[1] / c.relpath() in cell_files(swept[1])


def _tamper(res, capsys):
    """Damage five cell files in different ways; return their paths."""
    files = cell_files(res)
    files[0].write_bytes(b"\x00garbage{")
    files[1].write_text("[" * 5000 + "]" * 5000)
    d = json.loads(files[2].read_text())
    d["accuracies"] = [2.5]
    files[2].write_text(json.dumps(d))
    shutil.copy(files[4], files[3])  # valid JSON, but another cell's: misplaced
    files[4].unlink()
    os.symlink("/dev/zero", files[4])  # unbounded
    return files[:5]


def test_tampered_files_are_reported_and_skipped_by_results_ls(res_copy, capsys):
    bad = _tamper(res_copy, capsys)
    code, out, err = run_harness(["results", "ls", res_copy, "--json"], capsys)
    assert code == 0 and "Traceback" not in err
    warnings = [line for line in err.splitlines() if line.startswith("harness: warning: skipped")]
    assert len(warnings) == 5
    assert "is not valid JSON" in err and "nests 5000 levels" in err and "an accuracy lies in [0, 1]" in err
    assert "not of its own place" in err and "larger than" in err
    assert sum(g["done"] for g in json.loads(out)) == 12 - len(bad)


def test_a_sweep_recomputes_tampered_files(swept, res_copy, capsys):
    from harness.sweep.results import ResultsDir

    _tamper(res_copy, capsys)
    spec = swept[0]
    code, out, _ = run_harness(["sweep", "status", spec, "--results", res_copy], capsys)
    assert code == 0 and "7 done, 0 failed, 5 left" in out and out.count("bad file (will be recomputed)") == 5
    code, out, err = run_harness(["sweep", spec, "--results", res_copy, "--workers", "1", "-q"], capsys)
    assert code == 0, err
    assert "5 computed" in out and "5 bad files recomputed" in out
    assert err.count("recomputing it") == 5
    assert ResultsDir(res_copy).scan().bad == []
    orig = {p.relative_to(swept[1]): json.loads(p.read_text())["accuracies"] for p in cell_files(swept[1])}
    now = {p.relative_to(res_copy): json.loads(p.read_text())["accuracies"] for p in cell_files(res_copy)}
    assert now == orig


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda d: d.update(status="maybe"), "status: must be 'done' or 'failed'"),
        (lambda d: d["cell"].update(seed=-1), "cell.seed"),
        (lambda d: d["cell"].update(protocol="../../x"), "not a protocol id usable as a directory"),
        (lambda d: d.update(seeds=[0, 1]), "exactly its own seed"),
        (lambda d: d["artifact"].update(digest="sha256:" + "0" * 64), "differs from the cell's artifact"),
        (lambda d: d.update(mean="high"), "must be a finite number"),
        (lambda d: d.pop("sweep"), "sweep: must be an object"),
    ],
)
def test_cell_json_is_validated_field_by_field(swept, change, needle):
    from dcregistry.errors import UserError
    from harness.sweep.results import CellResult

    d = json.loads(cell_files(swept[1])[0].read_text())
    change(d)
    with pytest.raises(UserError, match=None) as err:
        CellResult.from_json(d)
    assert needle in str(err.value)


def test_a_failed_cell_round_trips(swept):
    from harness.sweep.results import FAILED_KIND, CellResult, Environment, SweepRef

    done = CellResult.from_json(json.loads(cell_files(swept[1])[0].read_text()))
    failed = CellResult(
        "failed", done.key, SweepRef("t", "h"), done.artifact, Environment("3", "0"), error="boom"
    )
    d = failed.to_json()
    assert d["kind"] == FAILED_KIND and d["status"] == "failed" and d["error"] == "boom"
    assert CellResult.from_json(d) == failed


# -------------------------------------------------------------------------- results ls
def test_results_ls_is_mean_and_std_over_seeds_as_harness_eval_has_it(swept, capsys):
    from dcregistry.store import LocalStore
    from harness.engine.evaluate import evaluate
    from harness.protocols import load_protocol

    spec, res, store, digests = swept
    code, out, _ = run_harness(["results", "ls", res], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["DATASET", "IPC", "METHOD"] and len(lines) == 1 + 4
    p = load_protocol("dc-noaug").with_overrides(epochs=2, runs=3)
    full = evaluate(LocalStore(store).open(NAMES[0]), p, strategy="sequential", device="cpu")
    code, out, _ = run_harness(
        ["results", "ls", res, "--artifact", digests[0][7:15], "--protocol", "dc-noaug*", "--json"], capsys
    )
    (group,) = json.loads(out)
    assert group["accuracies"] == full.accuracies and group["seeds"] == [0, 1, 2]
    assert group["mean"] == full.mean and group["std"] == full.std
    assert f"{100 * full.mean:.2f} ± {100 * full.std:.2f}" in run_harness(["results", "ls", res], capsys)[1]


@pytest.mark.parametrize(
    ("args", "groups"),
    [
        (["--dataset", "digits"], 4),
        (["--dataset", "mnist"], 0),
        (["--method", "random", "--ipc", "1"], 4),
        (["--ipc", "10"], 0),
        (["--protocol", "dsa"], 0),  # neither the id nor the name (which is dsa+epochs=2)
        (["--protocol", "dsa+epochs=2"], 2),
        (["--protocol", "dsa*"], 2),
    ],
)
def test_results_ls_filters(swept, capsys, args, groups):
    code, out, _ = run_harness(["results", "ls", swept[1], *args, "--json"], capsys)
    assert code == 0 and len(json.loads(out)) == groups


def test_results_show_one_group_or_one_cell(swept, capsys):
    _, res, _, digests = swept
    code, _, err = run_harness(["results", "show", res], capsys)
    assert code == 1 and "4 artifact x protocol groups match" in err and "--artifact" in err
    code, out, _ = run_harness(
        ["results", "show", res, "--artifact", digests[1][7:19], "--protocol", "dsa*"], capsys
    )
    assert code == 0 and out.count("seed ") == 3 and "mean ± std over 3 seeds" in out
    code, out, _ = run_harness(
        [
            "results",
            "show",
            res,
            "--artifact",
            digests[1][7:19],
            "--protocol",
            "dsa*",
            "--seed",
            "2",
            "--json",
        ],
        capsys,
    )
    cell = json.loads(out)
    assert cell["cell"]["seed"] == 2 and cell["artifact"]["digest"] == digests[1]
    code, _, err = run_harness(["results", "show", res, "--artifact", "ffff"], capsys)
    assert code == 1 and "no cell matches" in err
    code, _, err = run_harness(["results", "ls", res.parent / "nothing-here"], capsys)
    assert code == 1 and "no such results directory" in err


# ------------------------------------------------------------------------------ export
def test_export_parquet_reads_back(swept, tmp_path, capsys):
    import pyarrow.parquet as pq

    from harness.sweep.groups import EXPORT_COLUMNS

    res = swept[1]
    out = tmp_path / "cells.parquet"
    code, stdout, _ = run_harness(["results", "export", res, "-o", out], capsys)
    assert code == 0 and stdout.strip() == f"wrote 12 rows to {out}"
    table = pq.read_table(out)
    assert table.column_names == list(EXPORT_COLUMNS) and table.num_rows == 12
    rows = table.to_pylist()
    by_file = {(r["artifact_digest"], r["protocol_id"], r["seed"]): r["accuracy"] for r in rows}
    for p in cell_files(res):
        d = json.loads(p.read_text())
        assert (
            by_file[(d["cell"]["artifact"], d["cell"]["protocol"], d["cell"]["seed"])] == d["accuracies"][0]
        )
    assert {r["status"] for r in rows} == {"done"} and {r["dataset"] for r in rows} == {"digits"}
    assert json.loads(rows[0]["record"])["kind"] == "dcreg-eval/1"
    # filtered
    code, _, _ = run_harness(["results", "export", res, "-o", out, "--protocol", "dsa*"], capsys)
    assert pq.read_table(out).num_rows == 6


def test_export_jsonl_is_the_cell_files(swept, tmp_path, capsys):
    from harness.sweep.results import CellResult

    out = tmp_path / "cells.jsonl"
    code, _, _ = run_harness(["results", "export", swept[1], "-o", out], capsys)
    assert code == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 12
    assert all(CellResult.from_json(json.loads(line)).status == "done" for line in lines)
    code, _, err = run_harness(["results", "export", swept[1], "-o", tmp_path / "cells.csv"], capsys)
    assert code == 1 and "--format parquet|jsonl" in err
