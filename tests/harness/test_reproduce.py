"""`harness reproduce`: a fresh record re-runs bit-exact; tampered records differ or are refused."""

from __future__ import annotations

import json
import math

import pytest
import torch

from dcregistry.records import RecordError
from harness.engine.reproduce import (
    BIT_EXACT,
    DIFFERS,
    WITHIN_NOISE,
    ReproduceReport,
    classify,
    noise_tolerance,
)

from .cli_helpers import run_harness
from .conftest import digits_artifact

FAST = ["--epochs", "1", "--runs", "2", "--strategy", "sequential", "--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A digits artifact and the record `harness eval --json` wrote for it (made once)."""
    root = tmp_path_factory.mktemp("reproduce")
    art = digits_artifact(root / "art", ipc=3, seed=1)
    rec = root / "rec.json"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the autouse per-test fixture does (the device string says it)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_CACHE", str(root / "cache"))
        from harness.cli import main  # (run_harness needs capsys, a per-test fixture)

        with pytest.raises(SystemExit) as exc:
            main(["eval", str(art.path), "--protocol", "dc-noaug", *FAST, "--json", str(rec)])
    torch.set_num_threads(threads)
    assert exc.value.code == 0
    return art, json.loads(rec.read_text())


def _write(tmp_path, data, name="rec.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_fresh_record_reproduces_bit_exact(recorded, tmp_path, capsys):
    _, data = recorded
    rec = _write(tmp_path, data)
    out = tmp_path / "report.json"
    code, stdout, err = run_harness(["reproduce", rec, "--device", "cpu", "-q", "--json", out], capsys)
    assert code == 0, err
    report = json.loads(out.read_text())
    assert report["verdict"] == BIT_EXACT
    assert [s["verdict"] for s in report["seeds"]] == [BIT_EXACT, BIT_EXACT]
    assert [s["rerun"] for s in report["seeds"]] == data["accuracies"]
    assert "overall: bit-exact" in stdout and "environment: same" in stdout
    parsed = ReproduceReport.from_json(report)
    assert parsed.verdict == BIT_EXACT and parsed.to_json() == report
    with pytest.raises(RecordError, match="verdict"):
        ReproduceReport.from_json(report | {"verdict": "close enough"})


def test_json_to_stdout_and_environment_named(recorded, tmp_path, capsys):
    _, data = recorded
    rec = _write(tmp_path, data | {"torch_version": "0.0.1", "device": "cuda:Imaginary GPU"})
    code, stdout, err = run_harness(["reproduce", rec, "--device", "cpu", "-q", "--json", "-"], capsys)
    assert code == 0, err
    report = json.loads(stdout)
    fields = {e["field"]: e for e in report["environment"]}
    assert set(fields) == {"torch_version", "device"} and fields["torch_version"]["recorded"] == "0.0.1"
    assert "environment differs: torch_version 0.0.1 ->" in err


def test_runs_spot_checks_the_first_seeds_other_overrides_refused(recorded, tmp_path, capsys):
    _, data = recorded
    rec = _write(tmp_path, data)
    code, stdout, err = run_harness(["reproduce", rec, "--runs", "1", "--json", "-", "-q"], capsys)
    assert code == 0, err
    report = json.loads(stdout)
    assert report["verdict"] == BIT_EXACT and [s["seed"] for s in report["seeds"]] == [0]
    assert "first 1 of the record's 2 seeds" in err
    for argv in (["--epochs", "3"], ["--arch", "mlp"], ["--runs", "3"]):
        code, _, err = run_harness(["reproduce", rec, *argv, "-q"], capsys)
        assert code == 1 and err.count("\n") == 1, err


def test_tampered_accuracy_differs_exit_1(recorded, tmp_path, capsys):
    _, data = recorded
    accs = [min(1.0, a + 0.3) for a in data["accuracies"]]
    rec = _write(tmp_path, data | {"accuracies": accs, "mean": sum(accs) / 2})
    code, stdout, err = run_harness(["reproduce", rec, "--device", "cpu", "-q"], capsys)
    assert code == 1, stdout + err
    assert "overall: differs" in stdout and "seed 0:" in stdout


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d["artifact"].update(digest="0" * 64), "not the recorded"),
        (lambda d: d["protocol"].update(hash="0123456789ab"), "not its recorded id"),
        (lambda d: d["protocol"]["content"].update(epochs=7), "not its recorded id"),
        (lambda d: d["protocol"]["content"].update(bogus=1), "unknown content keys"),
        (lambda d: d["strategy"].update(name="teleport"), "strategy 'teleport'"),
    ],
)
def test_unmatchable_record_is_refused(recorded, tmp_path, capsys, edit, message):
    _, data = recorded
    data = json.loads(json.dumps(data))
    edit(data)
    rec = _write(tmp_path, data)
    code, stdout, err = run_harness(["reproduce", rec, "--device", "cpu", "-q"], capsys)
    assert code == 1 and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_artifact_elsewhere_must_have_the_recorded_digest(recorded, tmp_path, capsys):
    _, data = recorded
    other = digits_artifact(tmp_path / "other", ipc=3, seed=2)
    rec = _write(tmp_path, data)
    code, _, err = run_harness(["reproduce", rec, "--artifact", other.path, "-q"], capsys)
    assert code == 1 and "not the recorded" in err and err.count("\n") == 1


def test_bad_record_files_are_one_line_errors(tmp_path, capsys):
    bad = _write(tmp_path, {"kind": "dcreg-eval/1", "protocol": {}}, "bad.json")
    for source in (tmp_path / "missing.json", bad):
        code, _, err = run_harness(["reproduce", source, "-q"], capsys)
        assert code == 1 and err.count("\n") == 1, err


def test_reproduce_from_store_annotations(recorded, tmp_path, dcreg_home, capsys):
    art, _ = recorded
    from dcregistry.store import LocalStore

    LocalStore(dcreg_home).push(art.path, "me/digits")
    for proto in ("dc-noaug", "dc-mnist"):
        code, _, err = run_harness(["eval", "me/digits", "--protocol", proto, *FAST, "--record"], capsys)
        assert code == 0, err
    # two protocols recorded: which one is asked for
    code, _, err = run_harness(["reproduce", "me/digits", "-q"], capsys)
    assert code == 1 and "--protocol" in err and err.count("\n") == 1
    code, stdout, err = run_harness(
        ["reproduce", "me/digits", "--protocol", "dc-noaug+epochs=1,runs=2", "-q"], capsys
    )
    assert code == 0, err
    assert "me/digits@v1#" in stdout and "overall: bit-exact" in stdout
    code, stdout, err = run_harness(["reproduce", "me/digits", "--protocol", "dc-mnist", "-q"], capsys)
    assert code == 0 and "dc-mnist+epochs=1,runs=2@" in stdout, err  # the base protocol's name
    code, _, err = run_harness(["reproduce", "me/digits", "--protocol", "dsa", "-q"], capsys)
    assert code == 1 and "no eval record under protocol 'dsa'" in err


# --- the pure classification ----------------------------------------------------------------


def test_classify_bit_exact_within_noise_differs():
    n = 360  # digits' test split: one image is 1/360
    assert classify([0.5, 0.6], [0.5, 0.6], n).verdict == BIT_EXACT
    assert noise_tolerance(0.0, 5, n) == 1 / n
    # σ = 0.05 over 2 runs: tolerance 2σ/√2 = 0.0707 (> 1/360)
    c = classify([0.5, 0.6], [0.52, 0.64], n)
    assert math.isclose(c.tolerance, 2 * 0.05 / math.sqrt(2))
    assert c.verdict == WITHIN_NOISE and [s.verdict for s in c.seeds] == [WITHIN_NOISE, WITHIN_NOISE]
    assert classify([0.5, 0.6], [0.6, 0.7], n).verdict == DIFFERS
    # one run (σ = 0): the floor is one test image
    assert classify([0.5], [0.5 + 1 / n], n).verdict == WITHIN_NOISE
    assert classify([0.5], [0.5 + 2 / n], n).verdict == DIFFERS
    # per seed: one seed may move more than the mean's band and still be within noise
    c = classify([0.5, 0.6], [0.58, 0.6], n)
    assert c.seeds[1].verdict == BIT_EXACT and c.seeds[0].verdict == WITHIN_NOISE
    assert c.verdict == WITHIN_NOISE  # |Δ mean| 0.04 <= 0.0707
