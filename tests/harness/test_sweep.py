"""`harness sweep`: spec validation and hashing, planning, a real digits sweep (in process and
in worker processes), resume after SIGKILL, failed cells and --retry-failed, Ctrl-C, --record."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dcregistry.canonical import canonical_json, sha256_bytes

from .cli_helpers import run_harness
from .sweep_helpers import NAMES, cell_files, comparable, make_store, run_sweep_in_process, write_spec


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """(store directory, [digest s0, digest s1]) shared by the module (read-only)."""
    return make_store(tmp_path_factory.mktemp("sweep-store"))


@pytest.fixture(scope="module")
def reference(store, tmp_path_factory):
    """An uninterrupted in-process run of the default spec: (spec path, results directory)."""
    root = tmp_path_factory.mktemp("sweep-ref")
    spec = write_spec(root / "spec.toml", store[0])
    run_sweep_in_process(spec, root / "res")
    return spec, root / "res"


# ----------------------------------------------------------------------------- spec
def _parse(text: str, tmp_path: Path | None = None):
    from harness.sweep.spec import parse_spec

    return parse_spec(text, "spec.toml", tmp_path)


GOOD = 'name = "s"\nartifacts = ["me/x"]\nprotocols = ["dsa"]\n'


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (
            GOOD + "epochs = 3\n",
            "unknown key(s) epochs (known: name, artifacts, protocols, seeds, store, condense)",
        ),
        (
            'name = "s"\nartifacts = ["me/x"]\nprotocols = [{ name = "dsa", lr = 1 }]\n',
            "unknown key(s) lr (known: name, epochs",
        ),
        (GOOD + "seeds = [0, true]\n", "seeds: must be a non-empty list of integers"),
        (GOOD + "seeds = [1, 1]\n", "1 is listed twice"),
        (GOOD + 'seeds = "0"\n', "seeds: must be a non-empty list"),
        ('name = "s"\nartifacts = []\nprotocols = ["dsa"]\n', "artifacts: required"),
        (
            'name = "s"\nartifacts = [3]\nprotocols = ["dsa"]\n',
            "artifacts[0]: an artifact is a reference or query",
        ),
        ('name = "s"\nartifacts = ["Me/X"]\nprotocols = ["dsa"]\n', "artifacts[0]:"),
        ('name = "s"\nartifacts = ["ipc<=x"]\nprotocols = ["dsa"]\n', "ipc takes an integer"),
        ('name = "s"\nartifacts = ["me/x"]\nprotocols = ["nope"]\n', "unknown protocol 'nope'"),
        (
            'name = "s"\nartifacts = ["me/x"]\nprotocols = [{ name = "dsa", epochs = "10" }]\n',
            "epochs: must be a positive integer",
        ),
        (
            'name = "s"\nartifacts = ["me/x"]\nprotocols = [{ name = "dsa", arch = "nonet" }]\n',
            "unknown model",
        ),
        (
            'name = "s"\nartifacts = ["me/x"]\nprotocols = [{ name = "dsa", runs = 3 }]\nseeds = [0]\n',
            "drop runs",
        ),
        ('name = "s"\nartifacts = ["me/x"]\nprotocols = ["dsa", { name = "dsa" }]\n', "listed twice"),
        ('name = "a b"\nartifacts = ["me/x"]\nprotocols = ["dsa"]\n', "name: required"),
        ("name = [", "not valid TOML"),
        (
            GOOD + '[[condense]]\ndataset = "digits"\nmethod = "random"\nipc = 1\nsteps = 3\n',
            "unknown key(s) steps",
        ),
        (GOOD + '[[condense]]\ndataset = "nodata"\nmethod = "random"\nipc = 1\n', "unknown dataset 'nodata'"),
    ],
)
def test_bad_specs_are_refused_naming_the_key(text, needle):
    from harness.sweep.spec import SweepSpecError

    with pytest.raises(SweepSpecError) as err:
        _parse(text)
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


def test_bad_spec_on_the_command_line_exits_1_with_one_line(tmp_path, capsys):
    spec = tmp_path / "bad.toml"
    spec.write_text(GOOD + "epoch = 3\n")
    code, out, err = run_harness(["sweep", spec, "--dry-run"], capsys)
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("harness: error:") and "epoch" in err
    code, _, err = run_harness(["sweep", tmp_path / "missing.toml"], capsys)
    assert code == 1 and "cannot read the spec" in err
    code, _, err = run_harness(["sweep", "status", tmp_path / "missing.toml"], capsys)
    assert code == 1 and "Traceback" not in err


def test_spec_hash_is_stable_and_names_the_content():
    a = _parse(
        'name = "one"\nartifacts = ["me/x"]\nprotocols = ["dsa", { name = "dc-noaug", epochs = 5 }]\nseeds = [2, 0, 1]\n'
    )
    b = _parse(
        'name = "two"\nartifacts = [{ ref = "me/x" }]\nprotocols = [{ name = "dsa" }, { epochs = 5, name = "dc-noaug" }]\nseeds = [0, 1, 2]\n'
    )
    c = _parse(
        'name = "one"\nartifacts = ["me/x"]\nprotocols = ["dsa", { name = "dc-noaug", epochs = 6 }]\nseeds = [0, 1, 2]\n'
    )
    assert a.hash == b.hash != c.hash
    assert a.hash == sha256_bytes(canonical_json(a.content()))
    assert a.content()["seeds"] == [0, 1, 2]
    # to_json round-trips to the same validated spec and hash
    from harness.sweep.spec import SweepSpec

    assert SweepSpec.from_json(a.to_json()).hash == a.hash
    # pinned: the canonical content of a fixed spec never changes silently
    assert _parse(GOOD).hash == sha256_bytes(
        b'{"artifacts":[{"ref":"me/x"}],"condense":[],"protocols":[{"name":"dsa"}],"seeds":null,"store":null}'
    )


def test_artifact_entries_are_refs_or_queries():
    s = _parse(
        'name = "s"\nartifacts = ["me/x@v2", "dataset=digits method=dc ipc<=10", { query = "ipc=1" }, "./dir"]\nprotocols = ["dsa"]\n'
    )
    assert [(a.kind, a.text) for a in s.artifacts] == [
        ("ref", "me/x@v2"),
        ("query", "dataset=digits method=dc ipc<=10"),
        ("query", "ipc=1"),
        ("ref", "./dir"),
    ]


def test_a_deeply_nested_spec_is_one_line_not_a_recursion_error():
    from harness.sweep.spec import SweepSpecError

    with pytest.raises(SweepSpecError, match="nests 5000 levels deep"):
        _parse('name = "h"\nprotocols = ["dsa"]\nartifacts = ' + "[" * 5000 + "]" * 5000)


def test_condense_tables_are_parsed_validated_and_expanded():
    from harness.sweep.spec import SweepSpecError

    text = GOOD + '[[condense]]\ndataset = "digits"\nmethod = ["random", "herding"]\nipc = [1, 2]\nseed = 2\n'
    spec = _parse(text)
    assert [(c.method, c.ipc, c.seed) for c in spec.condense] == [
        ("random", 1, 2),
        ("random", 2, 2),
        ("herding", 1, 2),
        ("herding", 2, 2),
    ]
    assert spec.condense[0].to_json() == {
        "dataset": "digits",
        "method": "random",
        "ipc": 1,
        "seed": 2,
        "options": {},
        "model": "convnet",
        "iterations": None,
        "image_size": None,
        "name": "{sweep}/{method}-{dataset}-ipc{ipc}-s{seed}-{id}",
    }
    assert spec.condense[0].push_name("S") == f"s/random-digits-ipc1-s2-{spec.condense[0].id[:10]}"
    for bad, needle in [
        ('method = "nope"\nipc = 1', "unknown method"),
        ('method = "dc"\nipc = []', "empty list"),
        ('method = "dc"\nipc = 1\nname = "Bad Name/{id}"', "invalid artifact name"),
        ('method = "dc"\nipc = 1\nname = "x/{nope}"', "template"),
        ('method = "dc"\nipc = 1\ncolor = 1', "color"),
        ('method = "dc"\nipc = 1\nname = "x/{id:>900000000}"', "plain placeholders"),  # no allocation
        ('method = "dc"\nipc = 1\nname = "x/{sweep.__class__}"', "plain placeholders"),
        ('method = "dc"\nipc = 1\nname = "x/{}"', "plain placeholders"),
        ('method = "dc"\nipc = 99999999999999999999', "ipc"),
        ('method = "dc"\nipc = 1\nimage_size = 100000', "image_size"),
    ]:
        with pytest.raises(SweepSpecError, match=needle):
            _parse(GOOD + f'[[condense]]\ndataset = "digits"\n{bad}\n')


# ----------------------------------------------------------------------------- plan
def test_plan_resolves_refs_and_queries_to_digests(store, tmp_path):
    from harness.sweep.plan import plan_sweep
    from harness.sweep.spec import load_spec

    root, digests = store
    spec = load_spec(
        write_spec(
            tmp_path / "s.toml",
            root,
            artifacts=f'["{NAMES[0]}@v1", "dataset=digits ipc<=10", "{root.parent / "set1"}", "method=dc"]',
        )
    )
    plan = plan_sweep(spec)
    assert [a.digest for a in plan.artifacts] == digests  # the query and the directory: no duplicates
    assert plan.artifacts[0].open_ref == f"{NAMES[0]}@{digests[0]}"  # pinned
    assert len(plan.cells) == 2 * 2 * 3
    assert {c.key.seed for c in plan.cells} == {0, 1, 2}
    assert plan.notes == ["artifacts[3] 'method=dc' matched no version"]
    # without seeds: each protocol's own
    spec2 = load_spec(
        write_spec(tmp_path / "s2.toml", root, seeds="", protocols='[{ name = "dsa", runs = 2 }]')
    )
    assert {c.key.seed for c in plan_sweep(spec2).cells} == {0, 1}


@pytest.mark.parametrize(
    ("artifacts", "needle"),
    [
        ('["me/absent"]', "no artifact named me/absent"),
        ('["./no-such-dir"]', "neither a store reference"),
        ('["method=dc"]', "the sweep has no cells"),
    ],
)
def test_plan_refuses_what_does_not_resolve(store, tmp_path, capsys, artifacts, needle):
    spec = write_spec(tmp_path / "s.toml", store[0], artifacts=artifacts)
    code, _, err = run_harness(["sweep", spec, "--dry-run"], capsys)
    assert code == 1 and needle in err.lower() and err.count("\n") == 1


def test_dry_run_prints_axes_and_counts_then_an_estimate(store, reference, tmp_path, capsys):
    spec = write_spec(tmp_path / "s.toml", store[0])
    code, out, _ = run_harness(["sweep", spec, "--results", tmp_path / "empty", "--dry-run"], capsys)
    assert code == 0
    assert "artifacts: 2" in out and "protocols: 2" in out and "seeds: 3" in out
    assert "cells: 12 total, 0 done, 0 failed, 12 left" in out and "estimate: none yet" in out
    assert not (tmp_path / "empty").exists()  # a dry run writes nothing
    # half done: the estimate comes from the recorded seconds of the done cells
    res = tmp_path / "half"
    shutil.copytree(reference[1], res)
    for p in cell_files(res)[::2]:
        p.unlink()
    code, out, _ = run_harness(
        ["sweep", spec, "--results", res, "--dry-run", "--workers", "2", "--json"], capsys
    )
    data = json.loads(out)
    assert data["cells"] == {"total": 12, "done": 6, "failed": 0, "left": 6}
    assert data["estimate_s"] > 0 and data["workers"] == 2
    assert sum(r["done"] for r in data["axes"]["seed"]) == 6


# ------------------------------------------------------------------------------ run
def test_sweep_writes_one_record_per_cell_equal_to_harness_eval(store, reference):
    from dcregistry.store import LocalStore
    from harness.engine.evaluate import evaluate
    from harness.protocols import load_protocol

    spec, res = reference
    files = cell_files(res)
    assert len(files) == 12
    root, digests = store
    d0 = digests[0].removeprefix("sha256:")
    p = load_protocol("dsa").with_overrides(epochs=2)
    cell = res / "digits" / "ipc1" / d0 / p.id / "seed1.json"
    rec = json.loads(cell.read_text())
    assert rec["kind"] == "dcreg-eval/1" and rec["status"] == "done"
    assert rec["cell"] == {"artifact": digests[0], "protocol": p.id, "seed": 1}
    assert rec["sweep"]["name"] == "t" and len(rec["sweep"]["hash"]) == 64
    assert set(rec["env"]) >= {"cpu", "gpu", "torch", "harness", "python"}
    assert rec["protocol"]["id"] == p.id and rec["seeds"] == [1]
    # the per-seed number is the one `harness eval` gives for that seed (same thread count)
    full = evaluate(
        LocalStore(root).open(f"{NAMES[0]}@v1"), p.with_overrides(runs=3), strategy="sequential", device="cpu"
    )
    got = [json.loads((cell.parent / f"seed{s}.json").read_text())["accuracies"][0] for s in range(3)]
    assert got == full.accuracies


def test_rerun_skips_done_cells_and_status_shows_them(reference, capsys):
    spec, res = reference
    before = {p: p.stat().st_mtime_ns for p in cell_files(res)}
    code, out, _ = run_harness(["sweep", spec, "--results", res, "--workers", "1", "-q"], capsys)
    assert code == 0 and "0 computed" in out and "12 already done" in out
    assert {p: p.stat().st_mtime_ns for p in cell_files(res)} == before
    code, out, _ = run_harness(["sweep", "status", spec, "--results", res], capsys)
    assert code == 0 and "cells: 12 total, 12 done, 0 failed, 0 left" in out
    assert "done    6  failed    0  left    0" in out  # per artifact and per protocol


def test_numbers_do_not_depend_on_the_worker_count(store, reference, tmp_path, capsys):
    spec, res = reference
    code, out, err = run_harness(
        ["sweep", spec, "--results", tmp_path / "w2", "--workers", "2", "-q"], capsys
    )
    assert code == 0, err
    assert comparable(tmp_path / "w2") == comparable(res)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_sweep_killed_with_sigkill_resumes_to_the_same_results(store, reference, tmp_path, capsys):
    spec, ref_res = reference
    res = tmp_path / "res"
    env = dict(os.environ, HARNESS_CACHE=str(tmp_path / "cache"))
    code = "import sys; from harness.cli import main; main(sys.argv[1:])"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "sweep", str(spec), "--results", str(res), "--workers", "2", "-q"],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    try:
        while len(cell_files(res)) < 3:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the sweep wrote no cells in time"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)  # the driver only: its workers must not outlive it
        proc.wait()
        gone = time.monotonic() + 15
        while _group_alive(proc.pid) and time.monotonic() < gone:
            time.sleep(0.1)
        orphans = _group_alive(proc.pid)
    finally:
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    assert not orphans, "worker processes outlived the killed driver"
    partial = cell_files(res)
    assert 3 <= len(partial) < 12, "killed mid-run"
    from harness.sweep.results import ResultsDir

    scan = ResultsDir(res).scan()
    assert scan.bad == [] and len(scan.cells) == len(partial)  # nothing half-written
    code, out, err = run_harness(["sweep", spec, "--results", res, "--workers", "1", "-q"], capsys)
    assert code == 0, err
    assert f"{len(partial)} already done" in out and f"{12 - len(partial)} computed" in out
    assert comparable(res) == comparable(ref_res)  # same records, each cell once
    assert [p.name for p in res.rglob("*") if p.is_file() and "~tmp." in p.name] == []


def test_failed_cells_are_recorded_and_retried_only_when_asked(store, tmp_path, capsys, monkeypatch):
    import harness.engine.evaluate as ev  # run_cell imports evaluate when it runs: patched here

    original = ev.evaluate

    def flaky(artifact, protocol, **kw):
        if protocol.seed == 1:
            raise RuntimeError("simulated\nfailure on two lines")
        return original(artifact, protocol, **kw)

    spec = write_spec(tmp_path / "s.toml", store[0], protocols='[{ name = "dc-noaug", epochs = 2 }]')
    res = tmp_path / "res"
    monkeypatch.setattr(ev, "evaluate", flaky)
    code, out, err = run_harness(["sweep", spec, "--results", res, "--workers", "1", "-q"], capsys)
    assert code == 1 and "2 cell(s) failed" in err and "--retry-failed" in err
    failed = [json.loads(p.read_text()) for p in cell_files(res) if p.name == "seed1.json"]
    assert len(failed) == 2
    assert all(
        f["status"] == "failed" and f["error"] == "RuntimeError: simulated failure on two lines"
        for f in failed
    )
    code, out, _ = run_harness(["sweep", "status", spec, "--results", res], capsys)
    assert "4 done, 2 failed, 0 left" in out and "RuntimeError: simulated" in out
    monkeypatch.setattr(ev, "evaluate", original)
    code, out, err = run_harness(["sweep", spec, "--results", res, "--workers", "1", "-q"], capsys)
    assert code == 1 and "0 computed" in out and "2 failed earlier" in out  # skipped
    code, out, err = run_harness(
        ["sweep", spec, "--results", res, "--workers", "1", "-q", "--retry-failed"], capsys
    )
    assert code == 0 and "2 computed (2 done, 0 failed)" in out
    assert all(json.loads(p.read_text())["status"] == "done" for p in cell_files(res))


def test_a_cell_that_cannot_run_is_a_failed_cell_with_its_reason(store, tmp_path, capsys):
    spec = write_spec(
        tmp_path / "s.toml",
        store[0],
        artifacts=f'["{NAMES[0]}"]',
        protocols='[{ name = "dc-noaug", epochs = 1, arch = "convnet-d4" }]',
        seeds="[0]",
    )
    code, out, err = run_harness(["sweep", spec, "--results", tmp_path / "r", "--workers", "1", "-q"], capsys)
    assert code == 1
    (f,) = cell_files(tmp_path / "r")
    assert "too small" in json.loads(f.read_text())["error"]


def test_ctrl_c_stops_cleanly_with_exit_130(store, tmp_path, capsys, monkeypatch):
    import harness.engine.evaluate as ev

    original = ev.evaluate
    calls = []

    def interrupted(artifact, protocol, **kw):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)  # a real SIGINT, as Ctrl-C sends, mid-cell
        return original(artifact, protocol, **kw)

    monkeypatch.setattr(ev, "evaluate", interrupted)
    spec = write_spec(tmp_path / "s.toml", store[0])
    res = tmp_path / "res"
    code, out, err = run_harness(["sweep", spec, "--results", res, "--workers", "1", "-q"], capsys)
    assert code == 130, err
    assert "stopped; 2 cells written this run; rerun to resume" in err
    assert len(cell_files(res)) == 2
    assert [p for p in res.rglob("*") if "~tmp." in p.name] == []  # nothing half-written
    assert not (res / ".sweep.lock").exists()


def test_a_second_sweep_on_the_same_results_is_refused(store, tmp_path, capsys):
    from harness.sweep.results import ResultsDir

    spec = write_spec(tmp_path / "s.toml", store[0])
    with ResultsDir(tmp_path / "res").locked():
        code, _, err = run_harness(["sweep", spec, "--results", tmp_path / "res", "--workers", "1"], capsys)
    assert code == 1 and "another sweep is writing" in err


def test_record_attaches_one_result_per_artifact_and_protocol_once(store, tmp_path, capsys):
    from dcregistry.store import LocalStore

    root = tmp_path / "store"
    shutil.copytree(store[0], root)
    spec = write_spec(
        tmp_path / "s.toml",
        root,
        artifacts=f'["{NAMES[0]}"]',
        protocols='[{ name = "dc-noaug", epochs = 2 }]',
    )
    args = ["sweep", spec, "--results", tmp_path / "res", "--workers", "1", "-q", "--record"]
    code, out, err = run_harness(args, capsys)
    assert code == 0, err
    assert "1 results recorded" in out
    anns = LocalStore(root).annotations(NAMES[0], "eval")
    assert len(anns) == 1
    rec = anns[0]["record"]
    assert rec["seeds"] == [0, 1, 2] and len(rec["accuracies"]) == 3 and rec["sweep"]["name"] == "t"
    code, out, err = run_harness(args, capsys)  # again: nothing new to record
    assert code == 0 and len(LocalStore(root).annotations(NAMES[0], "eval")) == 1
    # a directory cannot carry annotations: refused before any work
    spec2 = write_spec(tmp_path / "s2.toml", root, artifacts=f'["{store[0].parent / "set0"}"]')
    code, _, err = run_harness(["sweep", spec2, "--results", tmp_path / "r2", "--record"], capsys)
    assert code == 1 and "--record needs store references" in err and not (tmp_path / "r2").exists()


def test_protocol_toml_paths_are_relative_to_the_spec(store, tmp_path):
    from harness.protocols import protocol_toml
    from harness.sweep.plan import plan_sweep
    from harness.sweep.spec import load_spec

    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "mine.toml").write_text(
        protocol_toml("dc-noaug").replace('name = "dc-noaug"', 'name = "mine"')
    )
    spec = load_spec(
        write_spec(tmp_path / "s.toml", store[0], protocols='[{ name = "p/mine.toml", epochs = 2 }]')
    )
    assert plan_sweep(spec).protocols[0].name == "mine+epochs=2"


def test_executor_registry_names_the_local_engine():
    from harness.sweep.executor import EXECUTORS, ExecutorOptions, make_executor

    assert EXECUTORS.names()[0] == "local"  # the default; other engines add one file and one name each
    with make_executor("local", ExecutorOptions(workers=1, device="cpu")) as ex:
        assert ex.workers == 1 and ex.worker_device == "cpu" and "1 CPU worker" in ex.describe()
