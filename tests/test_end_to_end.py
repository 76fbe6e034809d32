"""The README walk-through as a new user runs it: console scripts, real digits, one store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, env: dict, ok: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(BIN / args[0]), *args[1:]], env=env, capture_output=True, text=True, timeout=600
    )
    if ok:
        assert proc.returncode == 0, f"{args}: {proc.stderr}"
    return proc


@pytest.fixture
def env(tmp_path):
    e = dict(
        os.environ,
        DCREG_HOME=str(tmp_path / "home"),
        HARNESS_DATA=str(tmp_path / "data"),
        HARNESS_CACHE=str(tmp_path / "cache"),
        OMP_NUM_THREADS="1",
    )
    return e


@pytest.mark.slow
def test_readme_walkthrough(tmp_path, env):
    npz = tmp_path / "digits.npz"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts/make_digits_npz.py"), str(npz), "--ipc", "5"],
        check=True,
        capture_output=True,
    )
    out = run(
        "dcreg",
        "import",
        str(npz),
        "--format",
        "npz",
        "--dataset",
        "digits",
        "--method",
        "random",
        "-o",
        str(tmp_path / "art"),
        env=env,
    )
    assert "sha256:" in out.stdout
    push = run("dcreg", "push", str(tmp_path / "art"), "--name", "me/digits", "--tag", "first", env=env)
    assert push.stdout.startswith("me/digits@v1 sha256:")
    listed = json.loads(run("dcreg", "list", "--dataset", "digits", "ipc<=10", "--json", env=env).stdout)
    assert [r["name"] for r in listed] == ["me/digits"]
    run("dcreg", "pull", "me/digits@first", "-o", str(tmp_path / "fresh"), env=env)
    run("dcreg", "verify", str(tmp_path / "fresh"), env=env)
    run("dcreg", "export", "me/digits@first", "--format", "png", "-o", str(tmp_path / "g.png"), env=env)
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"
    run("dcreg", "export", "me/digits@first", "--format", "hf-datasets", "-o", str(tmp_path / "hf"), env=env)

    results = []
    for i in range(2):  # reproducible per seed, end to end
        res = tmp_path / f"r{i}.json"
        run(
            "harness",
            "eval",
            "me/digits@first",
            "--protocol",
            "dc-noaug",
            "--epochs",
            "20",
            "--runs",
            "2",
            "--baseline",
            "--json",
            str(res),
            "--quiet",
            *(["--record"] if i == 0 else []),
            env=env,
        )
        results.append(json.loads(res.read_text()))
    a, b = results
    assert a["accuracies"] == b["accuracies"]
    assert a["protocol"]["id"] == b["protocol"]["id"]
    assert a["artifact"]["ref"] == "me/digits@v1" and a["baseline"]["kind"] == "random-real"
    assert a["mean"] > 0.3  # 20 epochs on 50 real digits; chance is 0.1

    card = run("dcreg", "card", "me/digits@first", env=env).stdout
    assert f"| `{a['protocol']['id']}` | convnet | none | 20 | 2 |" in card
    shown = json.loads(run("dcreg", "show", "me/digits@v1", "--json", env=env).stdout)
    assert "eval" in json.dumps(shown)
    verify = run("dcreg", "verify", "me/digits@v1", env=env)  # annotations leave digest intact
    assert verify.returncode == 0
