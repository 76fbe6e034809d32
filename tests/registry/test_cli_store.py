"""``dcreg`` store commands: output formats, --json, exit codes, one-line errors, unchanged store.

Most tests run the click group in-process (``run_cli`` under ``CliRunner.isolation``, which is
what the console script does); a few run the installed ``dcreg`` console script.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from dcregistry.artifact import DATA_FILE, open_artifact
from dcregistry.cli import _register_commands, cli
from dcregistry.cli.common import run_cli
from dcregistry.store.local import LocalStore
from tests.registry.test_store import blob_of, tamper, tree_state

_register_commands()
DCREG = Path(sys.executable).with_name("dcreg")
LINE = re.compile(r"^[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._-]*@v\d+ sha256:[0-9a-f]{64}$")


def dcreg(*args: str) -> tuple[int, str, str]:
    """Run ``dcreg ARGS`` in-process; return (exit code, stdout, stderr)."""
    with CliRunner().isolation() as (out, err, _):
        code = run_cli(cli, "dcreg", [str(a) for a in args])
    return code, out.getvalue().decode(), err.getvalue().decode()


def dcreg_proc(*args: str, home: Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the installed console script."""
    env = {**os.environ, "DCREG_HOME": str(home)}
    env.pop("DCREG_TEST_PAUSE_AT", None)
    return subprocess.run(
        [str(DCREG), *map(str, args)], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def one_line_error(err: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dcreg: error: "), err
    assert "Traceback" not in err


@pytest.fixture
def pushed(dcreg_home, make_artifact):
    """lab/digits v1 (tag stable) and v2."""
    a, b = make_artifact(seed=0), make_artifact(seed=1, ipc=3, method="dc")
    assert dcreg("push", a.path, "--name", "lab/digits", "--tag", "stable")[0] == 0
    assert dcreg("push", b.path, "--name", "lab/digits")[0] == 0
    return a, b


# ------------------------------------------------------------------------------------ push
def test_push_prints_ref_and_digest_and_dedupes(dcreg_home, make_artifact):
    art = make_artifact()
    code, out, err = dcreg("push", art.path, "--name", "lab/digits", "-t", "stable")
    assert code == 0 and out == f"lab/digits@v1 {art.digest}\n" and err == ""
    code, out, err = dcreg("push", art.path, "--name", "lab/digits")
    assert code == 0 and out == f"lab/digits@v1 {art.digest}\n" and "unchanged" in err
    code, out, _ = dcreg("push", make_artifact(seed=1).path, "--name", "lab/digits", "--json")
    assert code == 0 and json.loads(out)["version"] == 2 and json.loads(out)["created"] is True


@pytest.mark.parametrize(
    "name", ["../x", "/lab/x", "Lab/x", "lab/my set", "lab/..", "lab", "lab/x/y", " lab/x"]
)
def test_push_refuses_bad_names(dcreg_home, make_artifact, name):
    art = make_artifact()
    code, out, err = dcreg("push", art.path, "--name", name)
    assert code == 1 and out == ""
    one_line_error(err)
    assert "invalid artifact name" in err
    assert tree_state(dcreg_home) is None


def test_bad_names_refused_by_the_console_script(dcreg_home, make_artifact):
    art = make_artifact()
    assert dcreg_proc("push", art.path, "--name", "lab/ok", home=dcreg_home).returncode == 0
    before = tree_state(dcreg_home)
    for name in ("../x", "/lab/x", "Lab/x", "lab/my set"):
        proc = dcreg_proc("push", art.path, "--name", name, home=dcreg_home)
        assert proc.returncode == 1 and proc.stdout == ""
        one_line_error(proc.stderr)
    assert tree_state(dcreg_home) == before


def test_push_bad_artifact_is_one_line_and_store_unchanged(pushed, dcreg_home, tmp_path, make_artifact):
    before = tree_state(dcreg_home)
    for path in (tmp_path / "missing", tmp_path):
        code, _, err = dcreg("push", path, "--name", "lab/digits")
        assert code == 1
        one_line_error(err)
    bad = make_artifact(seed=9)
    tamper(bad.path / DATA_FILE)
    code, _, err = dcreg("push", bad.path, "--name", "lab/digits")
    assert code == 1 and DATA_FILE in err
    one_line_error(err)
    assert tree_state(dcreg_home) == before


# ------------------------------------------------------------------------------- list/show
def test_list_table_filters_and_json(pushed, make_artifact):
    dcreg("push", make_artifact(seed=2, soft=True, method="mtt").path, "--name", "other/mtt")
    code, out, _ = dcreg("list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == [
        "NAME",
        "DATASET",
        "METHOD",
        "IPC",
        "LABELS",
        "PIXELS",
        "TAGS",
        "DIGEST",
        "CREATED",
    ]
    assert [ln.split()[0] for ln in lines[1:]] == ["lab/digits@v2", "other/mtt@v1"]
    assert lines[1].index("dc ") == lines[0].index("METHOD")  # aligned columns
    row = lines[1].split()
    assert row[1:6] == ["digits", "dc", "3", "hard", "normalized"] and row[6] == "latest"
    assert [ln.split()[0] for ln in dcreg("list", "--all")[1].splitlines()[1:]] == [
        "lab/digits@v1",
        "lab/digits@v2",
        "other/mtt@v1",
    ]
    assert "latest,stable" not in dcreg("list", "--all")[1]  # v1: stable only
    assert "stable" in dcreg("list", "--all")[1]

    def refs(*args):
        code, out, _ = dcreg("list", "--json", *args)
        assert code == 0
        return [i["ref"] for i in json.loads(out)]

    assert refs("--method", "dc") == ["lab/digits@v2"]
    assert refs("--ipc", "2", "--all") == ["lab/digits@v1", "other/mtt@v1"]
    assert refs("ipc<=2") == ["lab/digits@v1", "other/mtt@v1"]
    assert refs("--dataset", "digits", "label_kind=soft") == ["other/mtt@v1"]
    assert refs("--name", "lab/digits", "--all") == ["lab/digits@v1", "lab/digits@v2"]
    assert refs("--name", "other/*") == ["other/mtt@v1"]
    assert refs("--dataset", "cifar10") == []
    item = json.loads(dcreg("list", "--json", "--name", "lab/digits")[1])[0]
    assert set(item) == {"name", "version", "ref", "digest", "tags", "created_at", "metadata"}
    assert item["metadata"]["ipc"] == 3
    code, out, err = dcreg("list", "--dataset", "cifar10")
    assert code == 0 and out == "" and "no matching" in err
    for bad in (["ipc<=ten"], ["nope=1"], ["--name", "Bad Name"], ["--ipc", "x"]):
        code, out, err = dcreg("list", *bad)
        assert code == 1 and out == ""
        one_line_error(err)


def test_show_text_and_json(pushed, dcreg_home):
    a, _ = pushed
    LocalStore().annotate(
        "lab/digits@v1",
        "eval",
        {"protocol": {"id": "dsa@1234"}, "mean": 0.5, "std": 0.02, "accuracies": [0.5]},
    )
    code, out, _ = dcreg("show", "lab/digits@stable")
    assert code == 0
    assert out.splitlines()[0] == f"lab/digits@v1  {a.digest}"
    assert "tags:" in out and "stable" in out and DATA_FILE in out and "dsa@1234" in out
    assert "50.00 ± 2.00" in out
    data = json.loads(dcreg("show", "lab/digits@v1", "--json")[1])
    assert data["digest"] == a.digest and data["tags"] == ["stable"]
    assert set(data["files"]) == {DATA_FILE, "README.md"}
    assert data["annotations"][0]["record"]["mean"] == 0.5
    code, out, _ = dcreg("show", a.path, "--json")  # a directory works too
    assert code == 0 and json.loads(out)["digest"] == a.digest


@pytest.mark.parametrize(
    "ref",
    [
        "lab/nope",
        "lab/digits@v99",
        "lab/digits@nightly",
        "Bad Ref",
        "lab/digits@sha256:zz",
        "./missing-dir",
        "lab/digits@sha256:0000000000",
        "hf://datasets/org/x",
        "/abs",
    ],
)
def test_bad_ref_is_exit_1_and_one_line(pushed, ref):
    for cmd in (["show", ref], ["pull", ref], ["verify", ref], ["card", ref], ["rm", ref], ["tag", ref, "x"]):
        code, out, err = dcreg(*cmd)
        assert code == 1 and out == "", (cmd, out, err)
        one_line_error(err)


# -------------------------------------------------------------------------- tag/untag/tags
def test_tag_untag_tags(pushed):
    assert dcreg("tag", "lab/digits@v2", "paper") == (0, "lab/digits@v2 tagged paper\n", "")
    code, out, _ = dcreg("tags", "lab/digits", "--json")
    assert json.loads(out) == {"latest": 2, "paper": 2, "stable": 1}
    assert dcreg("tags", "lab/digits")[1].splitlines() == [
        "latest  lab/digits@v2",
        "paper  lab/digits@v2",
        "stable  lab/digits@v1",
    ]
    assert dcreg("untag", "lab/digits", "paper")[0] == 0
    log = json.loads(dcreg("tags", "lab/digits", "--log", "--json")[1])
    assert [(e["action"], e["tag"]) for e in log] == [("set", "stable"), ("set", "paper"), ("unset", "paper")]
    for cmd in (
        ["tag", "lab/digits", "latest"],
        ["untag", "lab/digits", "latest"],
        ["untag", "lab/digits", "nope"],
        ["tag", "lab/digits", "v3"],
        ["tags", "lab/nope"],
    ):
        code, _, err = dcreg(*cmd)
        assert code == 1
        one_line_error(err)


# -------------------------------------------------------------------------------- rm / gc
def test_rm_refuses_tagged_without_force(pushed, dcreg_home):
    before = tree_state(dcreg_home)
    code, out, err = dcreg("rm", "lab/digits@v1")
    assert code == 1 and out == "" and "--force" in err
    one_line_error(err)
    assert tree_state(dcreg_home) == before
    code, out, _ = dcreg("rm", "lab/digits@v1", "--force")
    assert code == 0 and out.startswith("removed lab/digits@v1")
    assert [i["ref"] for i in json.loads(dcreg("list", "--all", "--json")[1])] == ["lab/digits@v2"]


def test_gc_is_a_dry_run_by_default(pushed, dcreg_home):
    assert dcreg("rm", "lab/digits@v2")[0] == 0
    before = tree_state(dcreg_home)
    code, out, err = dcreg("gc")
    assert code == 0 and len([ln for ln in out.splitlines() if ln.startswith("blob ")]) == 3
    assert "dry run" in err
    assert dcreg("gc", "--dry-run")[1] == out
    assert tree_state(dcreg_home) == before
    report = json.loads(dcreg("gc", "--json")[1])
    assert report["dry_run"] is True and len(report["blobs"]) == 3 and report["bytes"] > 0
    assert tree_state(dcreg_home) == before
    code, out, err = dcreg("gc", "--no-dry-run", "--json")
    assert code == 0 and json.loads(out)["blobs"] == report["blobs"]
    assert json.loads(dcreg("gc", "--json")[1])["blobs"] == []
    assert dcreg("verify", "--all")[0] == 0


# ------------------------------------------------------------------------- verify / pull
def test_verify_ref_path_and_all(pushed, dcreg_home):
    a, b = pushed
    code, out, _ = dcreg("verify", "lab/digits@stable")
    assert code == 0 and out == f"ok lab/digits@v1 {a.digest}\n"
    code, out, _ = dcreg("verify", a.path, "--json")
    assert code == 0 and json.loads(out) == {"ref": str(a.path), "digest": a.digest, "ok": True}
    code, out, _ = dcreg("verify", "--all", "--json")
    report = json.loads(out)
    assert code == 0 and [r["ok"] for r in report["versions"]] == [True, True]
    assert report["ok"] is True and report["anomalies"] == []
    assert dcreg("verify")[0] == 1  # neither REF nor --all
    tamper(b.path / DATA_FILE)  # a directory modified after build
    code, _, err = dcreg("verify", b.path)
    assert code == 1 and DATA_FILE in err
    one_line_error(err)


def test_pull_default_dir_and_output(pushed, tmp_path, monkeypatch):
    a, _ = pushed
    monkeypatch.chdir(tmp_path)
    code, out, _ = dcreg("pull", "lab/digits@stable", "--quiet")
    assert code == 0 and out == "digits-v1\n"
    assert open_artifact(tmp_path / "digits-v1").digest == a.digest
    code, out, _ = dcreg("pull", "lab/digits@v1", "-o", tmp_path / "x", "--json")
    assert json.loads(out) == {"ref": "lab/digits@v1", "digest": a.digest, "path": str(tmp_path / "x")}
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "f").write_text("mine")
    code, _, err = dcreg("pull", "lab/digits", "-o", tmp_path / "busy")
    assert code == 1 and "not empty" in err
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["f"]


def test_tampered_blob_reported_by_verify_and_pull_console_script(dcreg_home, make_artifact, tmp_path):
    art = make_artifact()
    assert dcreg_proc("push", art.path, "--name", "lab/digits", home=dcreg_home).returncode == 0
    tamper(blob_of(LocalStore(dcreg_home), "lab/digits@v1"))
    proc = dcreg_proc("verify", "lab/digits", home=dcreg_home)
    assert proc.returncode == 1 and proc.stdout == "" and DATA_FILE in proc.stderr
    one_line_error(proc.stderr)
    out = tmp_path / "out"
    proc = dcreg_proc("pull", "lab/digits", "-o", out, home=dcreg_home)
    assert proc.returncode == 1 and proc.stdout == "" and DATA_FILE in proc.stderr
    one_line_error(proc.stderr)
    assert not out.exists()
    proc = dcreg_proc("pull", "lab/digits", home=dcreg_home, cwd=tmp_path)  # default dir
    assert proc.returncode == 1 and not (tmp_path / "digits-v1").exists()
    assert not [p for p in tmp_path.iterdir() if "dcreg-pull" in p.name]
    proc = dcreg_proc("verify", "--all", home=dcreg_home)
    assert proc.returncode == 1 and "FAILED lab/digits@v1" in proc.stdout
    one_line_error(proc.stderr)


# ------------------------------------------------------------------------------ card / misc
def test_card_includes_recorded_results(pushed):
    LocalStore().annotate(
        "lab/digits@v2",
        "eval",
        {"protocol": {"id": "dc-noaug@ff00"}, "mean": 0.8, "std": 0.0, "accuracies": [0.8]},
    )
    code, out, _ = dcreg("card", "lab/digits")
    assert code == 0 and out.startswith("---\n") and "`dc-noaug@ff00`" in out
    assert "80.00 ± 0.00" in out and "lab/digits@v2" in out
    data = json.loads(dcreg("card", "lab/digits@v1", "--json")[1])
    assert data["ref"] == "lab/digits@v1" and "No evaluation recorded" in data["card"]


def test_store_option_selects_another_store(dcreg_home, make_artifact, tmp_path, monkeypatch):
    other = tmp_path / "other-store"
    art = make_artifact()
    assert dcreg("push", art.path, "--name", "lab/x", "--store", other)[0] == 0
    assert tree_state(dcreg_home) is None
    assert json.loads(dcreg("list", "--json", "--store", other)[1])[0]["ref"] == "lab/x@v1"
    assert json.loads(dcreg("list", "--json")[1]) == []
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the Hub store, unreachable here
    code, _, err = dcreg("list", "--store", "hub")
    assert code == 1 and "http://127.0.0.1:9" in err and len(err.strip().splitlines()) == 1


def test_help_lists_the_store_commands(dcreg_home):
    proc = dcreg_proc("--help", home=dcreg_home)
    assert proc.returncode == 0
    for cmd in ("push", "pull", "list", "show", "tag", "untag", "tags", "verify", "rm", "gc", "card"):
        assert re.search(rf"^\s+{cmd}\s", proc.stdout, re.M), cmd
