"""`harness results push DIR --to TARGET`: a results directory as a results repo on a real
`dcreg serve` (idempotent, batched, concurrent pushers, one-line refusals)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.conftest import TOKEN, Server, start_server

from .cli_helpers import run_harness

HEXES = ["1" * 64, "2" * 64]
PIDS = ["dc-noaug+epochs=2@0123456789ab", "dsa@00aa11bb22cc"]


def cell(hexd: str, pid: str, seed: int, acc: float, status: str = "done"):
    from dcregistry.records import EvalRecord
    from harness.sweep.results import CellKey, CellResult, Environment, SweepRef

    key = CellKey(f"sha256:{hexd}", pid, seed)
    art = {"ref": "me/set@v1", "digest": key.digest, "dataset": "digits", "method": "random", "ipc": 1}
    env = Environment(python="3.11", harness="0.1.0", torch="2.0", cpu="x", threads=1)
    if status == "failed":
        return CellResult("failed", key, SweepRef("t", "h"), art, env, error="boom")
    name, phash = pid.split("@")
    rec = EvalRecord(
        artifact=art,
        protocol={"id": pid, "name": name, "hash": phash, "content": {"epochs": 2}, "overrides": {}},
        seeds=[seed],
        accuracies=[acc],
        mean=acc,
        std=0.0,
        device="cpu",
        strategy={"name": "sequential", "measured": {}, "reason": "test"},
        final_train_loss=[0.3],
        created_at="2026-12-03T00:00:00Z",
    )
    return CellResult("done", key, SweepRef("t", "h"), art, env, record=rec)


def write_results(root: Path, cells) -> Path:
    from harness.sweep.results import ResultsDir

    out = ResultsDir(root)
    for c in cells:
        out.write(c)
    return root


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("push-serve")
    (root / "token").write_text(TOKEN)
    s = start_server(root / "home", root / "token", root / "server.log")
    try:
        yield s
    finally:
        s.proc.terminate()
        s.proc.wait(timeout=10)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, srv: Server, tmp_path: Path) -> Server:
    monkeypatch.setenv("DCREG_TOKEN", TOKEN)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    return srv


def hub(srv: Server):
    from huggingface_hub import HfApi

    return HfApi(endpoint=srv.url, token=TOKEN)


def test_what_the_harness_writes_is_what_the_server_accepts() -> None:
    from dcregistry.results import validate_record
    from harness.sweep.push import cell_file

    for c in (cell(HEXES[0], PIDS[0], 0, 0.5), cell(HEXES[1], PIDS[1], 7, 1.0)):
        path, data = cell_file(c)
        assert path == c.relpath().as_posix()
        assert validate_record(path, data).accuracies == c.record.accuracies
        assert data.count(b"\n") == 1 and json.loads(data) == json.loads(json.dumps(c.to_json()))


def test_push_is_idempotent_batched_and_replaces_changed_records(env: Server, tmp_path: Path, capsys) -> None:
    cells = [cell(h, p, s, 0.5 + 0.1 * s) for h in HEXES for p in PIDS for s in (0, 1)]
    res = write_results(tmp_path / "res", [*cells, cell(HEXES[0], PIDS[0], 9, 0, status="failed")])
    target = f"{env.url}/lab/sweep"
    code, out, err = run_harness(["results", "push", res, "--to", target, "--batch", "3"], capsys)
    assert code == 0, err
    assert (
        out.strip() == f"pushed 8 record(s) in 3 commit(s) to {target}; 0 unchanged, 1 failed cell(s) skipped"
    )
    api = hub(env)
    files = set(api.list_repo_files("lab/sweep", repo_type="dataset"))
    assert {c.relpath().as_posix() for c in cells} | {"README.md"} == files
    commits = api.list_repo_commits("lab/sweep", repo_type="dataset")
    assert len(commits) == 4  # three batches + the initial commit

    code, out, err = run_harness(["results", "push", res, "--to", target, "--json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert (report["pushed"], report["unchanged"], report["commits"]) == (0, 8, [])
    assert len(api.list_repo_commits("lab/sweep", repo_type="dataset")) == 4

    write_results(res, [cell(HEXES[0], PIDS[0], 0, 0.99)])  # a re-run changed one record
    code, out, err = run_harness(["results", "push", res, "--to", target, "--json"], capsys)
    report = json.loads(out)
    assert (report["pushed"], report["unchanged"], len(report["commits"])) == (1, 7, 1)
    from huggingface_hub import hf_hub_download

    got = hf_hub_download(
        "lab/sweep",
        cells[0].relpath().as_posix(),
        repo_type="dataset",
        endpoint=env.url,
        cache_dir=tmp_path / "dl",
    )
    assert json.loads(Path(got).read_text())["accuracies"] == [0.99]


def test_concurrent_pushers_of_disjoint_cells_both_land(env: Server, tmp_path: Path) -> None:
    from harness.sweep.push import push_results

    dirs = [
        write_results(tmp_path / f"r{i}", [cell(HEXES[i], p, s, 0.5) for p in PIDS for s in range(3)])
        for i in range(2)
    ]
    target = f"{env.url}/lab/together"
    errors: list[BaseException] = []
    reports = []

    def go(d: Path) -> None:
        try:
            reports.append(push_results(d, target, batch_size=1))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(d,)) for d in dirs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    files = set(hub(env).list_repo_files("lab/together", repo_type="dataset"))
    assert len([f for f in files if f.endswith(".json")]) == 12
    assert sum(len(r.pushed) for r in reports) == 12


def test_python_api_pushes_given_cells_and_hf_target_uses_the_same_calls(
    env: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.sweep.push import ResultsPusher

    monkeypatch.setenv("HF_ENDPOINT", env.url)  # hf:// goes to $HF_ENDPOINT with HF_TOKEN
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.delenv("DCREG_TOKEN")
    pusher = ResultsPusher("hf://datasets/lab/viahf")
    first = pusher.push_cells([cell(HEXES[0], PIDS[0], 0, 0.5)])
    again = pusher.push_cells([cell(HEXES[0], PIDS[0], 0, 0.5), cell(HEXES[0], PIDS[0], 1, 0.5)])
    assert (len(first.pushed), len(first.commits)) == (1, 1)
    assert (len(again.pushed), again.unchanged, len(again.commits)) == (1, 1, 1)
    assert len(hub(env).list_repo_files("lab/viahf", repo_type="dataset")) == 3  # + README.md


def test_refusals_are_one_line_and_exit_1(
    env: Server, tmp_path: Path, capsys, make_artifact, monkeypatch
) -> None:
    from dcregistry.store.hub import HubStore

    res = write_results(tmp_path / "res", [cell(HEXES[0], PIDS[0], 0, 0.5)])
    HubStore(env.url, TOKEN).push(make_artifact(seed=3).path, "lab/anartifact")
    code, out, err = run_harness(["results", "push", res, "--to", f"{env.url}/lab/anartifact"], capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1 and "results repo" in err, err
    monkeypatch.delenv("DCREG_TOKEN")
    code, out, err = run_harness(["results", "push", res, "--to", f"{env.url}/lab/notoken"], capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1 and "401" in err, err
    assert TOKEN not in err
    for bad in ("ftp://x/y/z", "hf://models/a/b", f"{env.url}/UPPER/Case", "hf://datasets/a/b@v1"):
        code, out, err = run_harness(["results", "push", res, "--to", bad], capsys)
        assert code == 1 and len(err.strip().splitlines()) == 1, (bad, err)
    code, out, err = run_harness(["results", "push", tmp_path / "nope", "--to", f"{env.url}/lab/x"], capsys)
    assert code == 1 and "no such results directory" in err


def test_a_real_sweeps_cells_are_valid_records(tmp_path: Path) -> None:
    """Format agreement on what a sweep really writes (strategy, env, protocol content ...)."""
    from dcregistry.results import validate_record
    from harness.sweep.results import ResultsDir

    from .sweep_helpers import make_store, run_sweep_in_process, write_spec

    store, _ = make_store(tmp_path)
    spec = write_spec(tmp_path / "spec.toml", store, seeds="[0]")
    run_sweep_in_process(spec, tmp_path / "res")
    scan = ResultsDir(tmp_path / "res").scan()
    assert scan.bad == [] and len(scan.cells) == 4
    from harness.sweep.push import cell_file

    for c in scan.cells:
        path, data = cell_file(c)
        validate_record(path, data)
        assert validate_record(path, (tmp_path / "res" / path).read_bytes().replace(b"\n", b"") + b"\n")


def test_a_sweep_pushes_its_cells_as_they_finish_and_a_rerun_pushes_nothing_new(env, tmp_path, capsys):
    """`harness sweep --push-results URL`: the records land in the results repo (readable with
    `datasets`), and a second run of the finished sweep commits nothing."""
    from datasets import load_dataset

    from dcregistry.results import results_features

    from .sweep_helpers import cell_files, make_store, write_spec

    store, _ = make_store(tmp_path)
    spec = write_spec(tmp_path / "spec.toml", store, seeds="[0, 1]")
    url = f"{env.url}/lab/sweep-results"
    args = ["sweep", spec, "--results", tmp_path / "res", "--workers", "1", "-q", "--push-results", url]
    code, out, err = run_harness(args, capsys)
    assert code == 0, err
    assert "results pushed to" in out and ": 8 new or changed record(s)" in out
    files = sorted(
        f for f in hub(env).list_repo_files("lab/sweep-results", repo_type="dataset") if f.endswith(".json")
    )
    assert files == sorted(str(p.relative_to(tmp_path / "res")) for p in cell_files(tmp_path / "res"))
    commits = hub(env).list_repo_commits("lab/sweep-results", repo_type="dataset")
    local = [hub(env).hf_hub_download("lab/sweep-results", f, repo_type="dataset") for f in files]
    ds = load_dataset("json", data_files=local, features=results_features(), split="train")
    assert len(ds) == 8 and set(ds["status"]) == {"done"}
    code, out, err = run_harness(args, capsys)
    assert code == 0, err
    assert ": 0 new or changed record(s)" in out
    assert len(hub(env).list_repo_commits("lab/sweep-results", repo_type="dataset")) == len(commits)


def test_a_bad_push_target_stops_the_sweep_before_any_work(env, tmp_path, capsys):
    from .sweep_helpers import make_store, write_spec

    store, _ = make_store(tmp_path)
    spec = write_spec(tmp_path / "spec.toml", store, seeds="[0]")
    code, _, err = run_harness(
        ["sweep", spec, "--results", tmp_path / "res", "-q", "--push-results", "ftp://nowhere/x/y"], capsys
    )
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "res").exists()
