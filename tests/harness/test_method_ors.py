"""`ors` (optimal random selection, the DC paper's T12 baseline): N random class-balanced subsets,
each scored by a freshly trained network on the VALIDATION split (never the test split), the best
kept; deterministic per seed; bad options exit 1 with one line. Digits at 8x8, tiny budgets."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from dcregistry.artifact import open_artifact
from harness.methods import get_method
from harness.methods.loop import CondenseSpec, condense, load_context

from .cli_helpers import run_harness

FAST = {"candidates": "3", "epochs": "2"}


@pytest.fixture
def no_test_split(monkeypatch):
    """Fail any load of a dataset's test split (the loop imports load_dataset at call time)."""
    import harness.data as hdata

    real_load = hdata.load_dataset

    def guarded(name, split, *a, **k):
        assert split != "test", "ors touched the test split"
        return real_load(name, split, *a, **k)

    monkeypatch.setattr(hdata, "load_dataset", guarded)


def _digest(idx: torch.Tensor) -> str:
    return hashlib.sha256(idx.cpu().numpy().astype("<i8").tobytes()).hexdigest()


def test_cli_writes_a_valid_artifact_scored_on_validation(tmp_path, capsys, no_test_split):
    out = tmp_path / "ors1"
    argv = ["condense", "digits", "-m", "ors", "--ipc", "1", "-o", out, "-q"]
    code, _, err = run_harness([*argv, "--option", "candidates=3", "--option", "epochs=2"], capsys)
    assert code == 0, err
    art = open_artifact(out)  # validated on read
    md = art.metadata
    assert md["method"] == "ors" and md["ipc"] == 1
    assert torch.bincount(art.torch("labels"), minlength=10).tolist() == [1] * 10
    mc = md["method_config"]
    assert mc["kind"] == "selection" and mc["config"]["candidates"] == 3
    # The candidates were picked from the training split minus the validation split.
    assert mc["data"]["split"] == "train minus validation" and mc["data"]["validation"]["images"] > 0
    info = mc["info"]
    accs = [c["validation_accuracy"] for c in info["candidates"]]
    assert len(accs) == 3 and all(0.0 <= a <= 1.0 for a in accs)
    assert info["chosen"] == accs.index(max(accs)) and info["chosen_validation_accuracy"] == max(accs)
    assert info["scoring"]["split"] == "validation"
    assert info["candidate_net"]["net"] == "convnet" and info["candidate_net"]["epochs"] == 2
    from dcregistry.citations import method_info

    assert method_info("ors").protocol == "dc-noaug" and "zhao2021dc" in method_info("ors").bibtex
    card = (out / "README.md").read_text()
    assert "Optimal random selection" in card and f"`{mc['config_hash']}`" in card


def test_picks_the_candidate_with_the_best_validation_accuracy(tmp_path, monkeypatch):
    """Scores scripted per candidate: the second wins; what was scored is the validation split."""
    import harness.engine.evaluate as ev

    spec = CondenseSpec("digits", "ors", 2, tmp_path / "x", options={"candidates": "3", "epochs": "1"})
    data = load_context(spec, torch.device("cpu"))
    ctx = data.ctx
    assert ctx.val_images is not None and ctx.val_labels is not None
    assert data.split_info["split"] == "train minus validation"
    assert data.split_info["images"] == len(ctx.labels)
    scripted = iter([0.2, 0.9, 0.9])  # a tie with a later candidate keeps the earlier one
    seen = []

    class _Res:
        def __init__(self, acc):
            self.accuracies = [acc]

    def fake_evaluate_sets(train, test, protocol, factory, **kw):
        assert test.images is ctx.val_images and test.labels is ctx.val_labels
        seen.append(train.images)
        return _Res(next(scripted))

    monkeypatch.setattr(ev, "evaluate_sets", fake_evaluate_sets)
    method = get_method("ors")
    from harness.engine.seeding import generator
    from harness.methods.base import build_config

    cfg = build_config(method, spec.options)
    idx, info = method.select(ctx, cfg, generator(0, "ors/init"))
    assert info["chosen"] == 1 and info["chosen_validation_accuracy"] == 0.9
    assert _digest(idx) == info["candidates"][1]["indices_sha256"]
    assert torch.equal(ctx.images[idx], seen[1])
    assert len({c["indices_sha256"] for c in info["candidates"]}) == 3  # distinct draws


def test_deterministic_per_seed(tmp_path, no_test_split):
    def run(seed, name):
        return condense(CondenseSpec("digits", "ors", 1, tmp_path / name, seed=seed, options=FAST)).artifact

    a, b, c = run(4, "a"), run(4, "b"), run(5, "c")
    assert torch.equal(a.torch("images"), b.torch("images"))
    ia, ib = a.metadata["method_config"]["info"], b.metadata["method_config"]["info"]
    assert json.dumps(ia, sort_keys=True) == json.dumps(ib, sort_keys=True)
    assert a.metadata["method_config"]["config_hash"] == b.metadata["method_config"]["config_hash"]
    ic = c.metadata["method_config"]["info"]
    assert [x["indices_sha256"] for x in ic["candidates"]] != [x["indices_sha256"] for x in ia["candidates"]]


@pytest.mark.parametrize(
    "option,expect",
    [
        ("candidates=0", "candidates=0: must be between 1 and"),
        ("candidates=100000", "must be between 1 and 10000"),
        ("epochs=0", "epochs=0: must be between 1 and"),
        ("runs=-1", "runs=-1: must be between 1 and"),
        ("lr=0", "lr=0.0: must be positive"),
        ("lr=-0.5", "must be positive"),
        ("batch_size=0", "batch_size=0: must be positive"),
        ("candidates=ten", "must be an integer"),
        ("lr=nan", "must be finite"),
        ("nope=1", "options: candidates, epochs, lr, batch_size, runs"),
    ],
)
def test_bad_options_exit_1_with_one_line(option, expect, tmp_path, capsys):
    out = tmp_path / "bad"
    code, _, err = run_harness(
        ["condense", "digits", "-m", "ors", "--ipc", "1", "-o", out, "-q", "--option", option], capsys
    )
    assert code == 1, err
    assert expect in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_methods_show_lists_the_options_with_help(capsys):
    code, out, _ = run_harness(["methods", "show", "ors", "--json"], capsys)
    assert code == 0
    opts = {o["name"]: o for o in json.loads(out)["options"]}
    assert list(opts) == ["candidates", "epochs", "lr", "batch_size", "runs"]
    assert opts["candidates"]["default"] == "10" and opts["epochs"]["default"] == "50"
    assert all(o["help"] for o in opts.values())
    code, out, _ = run_harness(["methods"], capsys)
    assert code == 0 and "ors" in out
