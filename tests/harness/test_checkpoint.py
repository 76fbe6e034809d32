"""harness.methods.checkpoint.Checkpoint: the state.json of a condense checkpoint as a typed
record; exact round trips (what earlier versions wrote included) and refusals that name the
file and the field (exit 1 through the CLI)."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from dcregistry.records import RecordError
from harness.methods.checkpoint import (
    CHECKPOINT_DIR,
    Checkpoint,
    CheckpointError,
    flatten,
    load_checkpoint,
    save_checkpoint,
    unflatten,
)

from .cli_helpers import run_harness

# What the loop wrote (harness-condense-checkpoint/1), key for key.
DOC = {
    "best": {"__dict__": [["images", {"__tensor__": "best.0"}], ["labels", {"__tensor__": "best.1"}]]},
    "best_accuracy": 0.25,
    "best_iteration": 2,
    "curve": [[2, 0.25]],
    "first_iteration_s": 0.5,
    "format": "harness-condense-checkpoint/1",
    "identity": {
        "config_hash": "sha256:" + "0" * 64,
        "dataset": "digits",
        "eval_every": 2,
        "image_shape": [1, 8, 8],
        "init": "real",
        "ipc": 1,
        "method": "dm",
        "model": "convnet",
        "protocol": "dc-noaug@0123456789ab",
        "seed": 0,
    },
    "init_accuracy": 0.2,
    "init_record": {"init": "real"},
    "iteration": 2,
    "lineage": [],
    "losses": [[0, 1.5], [1, 1.25]],
    "peak_bytes": 123456,
    "state": {"__dict__": [["images", {"__tensor__": "state.0"}], ["labels", {"__tensor__": "state.1"}]]},
    "step_s": 1.0,
    "tensor_file": "state-2.safetensors",
    "tensor_sha256": "a" * 64,
    "wall_s": 2.5,
}


def test_round_trip_is_exact():
    ck = Checkpoint.from_json(copy.deepcopy(DOC))
    assert json.dumps(ck.to_json(), sort_keys=True) == json.dumps(DOC, sort_keys=True)
    assert Checkpoint.from_json(ck.to_json()) == ck
    assert ck.differences(DOC["identity"]) == []
    assert ck.differences(dict(DOC["identity"], seed=1, ipc=2)) == ["ipc", "seed"]


def test_a_checkpoint_from_before_init_accuracy_reads():
    old = {k: v for k, v in DOC.items() if k not in ("init_accuracy", "first_iteration_s")}
    ck = Checkpoint.from_json(old)
    assert ck.init_accuracy is None and ck.first_iteration_s is None


@pytest.mark.parametrize(
    "key, value, field",
    [
        ("iteration", KeyError, "checkpoint.iteration"),
        ("iteration", "2", "checkpoint.iteration"),
        ("iteration", 2.0, "checkpoint.iteration"),
        ("state", KeyError, "checkpoint.state"),
        ("identity", [], "checkpoint.identity"),
        ("losses", [[0, float("nan")]], "checkpoint.losses"),
        ("losses", [[0, 1.0, 2.0]], "checkpoint.losses"),
        ("step_s", float("inf"), "checkpoint.step_s"),
        ("best_accuracy", "0.5", "checkpoint.best_accuracy"),
        ("peak_bytes", True, "checkpoint.peak_bytes"),
        ("format", "harness-condense-checkpoint/2", "checkpoint.format"),
        ("tensor_file", "../../etc/passwd", "checkpoint.tensor_file"),
        ("tensor_sha256", None, "checkpoint.tensor_sha256"),
        ("lineage", [1], "checkpoint.lineage"),
        ("colour", "red", "checkpoint.colour"),
    ],
)
def test_from_json_names_the_bad_field(key, value, field):
    d = copy.deepcopy(DOC)
    if value is KeyError:
        del d[key]
    else:
        d[key] = value
    with pytest.raises(RecordError) as exc:
        Checkpoint.from_json(d)
    assert exc.value.field == field, str(exc.value)


def test_unflatten_names_a_missing_tensor():
    flat: dict[str, torch.Tensor] = {}
    tree = flatten({"images": torch.ones(2), "opt": {"state": {0: (torch.zeros(1), 3)}}}, flat, "state")
    back = unflatten(json.loads(json.dumps(tree)), flat)
    assert torch.equal(back["images"], torch.ones(2)) and back["opt"]["state"][0][1] == 3
    del flat["state.0"]
    with pytest.raises(RecordError, match="state.0"):
        unflatten(tree, flat)


def _saved(tmp_path):
    flat: dict[str, torch.Tensor] = {}
    d = copy.deepcopy(DOC)
    d["state"] = flatten({"images": torch.ones(2, 1, 8, 8), "labels": torch.tensor([0, 1])}, flat, "state")
    d["best"] = None
    d["best_iteration"] = d["best_accuracy"] = None
    ck = Checkpoint.from_json(d)
    save_checkpoint(tmp_path, ck, flat)
    return ck


def test_save_then_load(tmp_path):
    ck = _saved(tmp_path)
    loaded, tensors = load_checkpoint(tmp_path)
    assert loaded == ck and set(tensors) == {"state.0", "state.1"}
    state = json.loads((tmp_path / CHECKPOINT_DIR / "state.json").read_text())
    assert state == ck.to_json() and state["tensor_sha256"] == ck.tensor_sha256


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda d: d.pop("losses"), ["checkpoint.losses", "is missing"]),
        (lambda d: d.update(iteration="two"), ["checkpoint.iteration", "must be an integer"]),
        (lambda d: d.update(state={"__tensor__": "nope"}), ["checkpoint.state", "nope"]),
        (lambda d: d.update(tensor_sha256="b" * 64), ["does not match its recorded sha256"]),
    ],
)
def test_a_damaged_state_json_is_one_line_naming_file_and_field(tmp_path, edit, words):
    _saved(tmp_path)
    meta = tmp_path / CHECKPOINT_DIR / "state.json"
    d = json.loads(meta.read_text())
    edit(d)
    meta.write_text(json.dumps(d))
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(tmp_path)
    msg = str(exc.value)
    assert "\n" not in msg and str(tmp_path / CHECKPOINT_DIR) in msg and "start over" in msg
    for w in words:
        assert w in msg, msg


def test_the_cli_refuses_a_damaged_checkpoint_with_exit_1(tmp_path, capsys):
    out = tmp_path / "run"
    _saved(out)
    meta = out / CHECKPOINT_DIR / "state.json"
    d = json.loads(meta.read_text())
    d["wall_s"] = "long"
    meta.write_text(json.dumps(d))
    argv = ["condense", "digits", "--method", "dm", "--ipc", "1", "--iterations", "4", "--image-size", "8"]
    code, _, err = run_harness([*argv, "-o", out, "--resume", "--device", "cpu", "-q"], capsys)
    assert code == 1, err
    line = err.strip().splitlines()[-1]
    assert str(meta) in line and "checkpoint.wall_s: must be a finite number" in line, err
