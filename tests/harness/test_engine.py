"""The training/eval engine: the DC loop's quirks, determinism per seed, strategies, records."""

from __future__ import annotations

import json

import pytest
import torch

from dcregistry.errors import ProtocolError
from harness.engine import trainer
from harness.engine.evaluate import evaluate, prepare
from harness.engine.strategies import augmentation_factory, run_seeds
from harness.protocols import list_protocols, load_protocol
from tests.harness.conftest import digits_artifact


def quick(name: str, **kw):
    return load_protocol(name).with_overrides(**({"epochs": 4, "runs": 2} | kw))


def test_schedule_runs_e_plus_one_epochs_and_recreates_optimizer(digits_art, monkeypatch):
    events = []
    real = trainer.make_optimizer

    def spy(protocol, params, lr):
        events.append(("optimizer", round(lr, 8)))
        return real(protocol, params, lr)

    monkeypatch.setattr(trainer, "make_optimizer", spy)
    p = quick("dc-noaug", epochs=6, runs=1)
    prep = prepare(digits_art, torch.device("cpu"))
    aug = augmentation_factory("none")()
    trainer.train_one(p, prep.train, prep.test, aug, 0, on_epoch=lambda ep: events.append(("epoch", ep)))
    epochs = [e for kind, e in events if kind == "epoch"]
    assert epochs == list(range(7))  # E + 1 passes
    # lr x0.1 after epoch E//2 + 1 = 4, with a fresh optimizer (momentum reset)
    decay = events.index(("optimizer", 0.001))
    assert events.index(("epoch", 3)) < decay == events.index(("epoch", 4)) - 1
    assert events[0] == ("optimizer", 0.01)


def test_same_seed_same_numbers_different_seed_different(digits_art):
    p = quick("dsa")
    a = evaluate(digits_art, p, strategy="sequential")
    b = evaluate(digits_art, p, strategy="sequential")
    assert a["accuracies"] == b["accuracies"]
    assert a["final_train_loss"] == b["final_train_loss"]
    assert a["final_train_loss"][0] != a["final_train_loss"][1]
    other = evaluate(digits_art, p.with_overrides(seed=7), strategy="sequential")
    assert other["final_train_loss"] != a["final_train_loss"]


def test_vmap_ensemble_matches_sequential_per_seed(digits_art):
    p = quick("dsa", epochs=3, runs=3)
    prep = prepare(digits_art, torch.device("cpu"))
    factory = augmentation_factory("dsa", strategy=prep.dsa_strategy)
    seq, _ = run_seeds(p, prep.train, prep.test, factory, p.seeds, "sequential")
    ens, _ = run_seeds(p, prep.train, prep.test, factory, p.seeds, "vmap")
    for s, e in zip(seq, ens, strict=True):
        assert s.seed == e.seed
        assert e.final_train_loss == pytest.approx(s.final_train_loss, rel=1e-3, abs=1e-4)
        assert abs(e.accuracy - s.accuracy) <= 2 / len(prep.test.labels)


def test_sensible_accuracy_on_digits(tmp_path):
    art = digits_artifact(tmp_path / "d10", ipc=10)
    rec = evaluate(art, quick("dc-noaug", epochs=100, runs=2))
    assert rec["mean"] > 0.7  # chance is 0.1
    assert rec["protocol"]["id"].startswith("dc-noaug+epochs=100,runs=2@")
    assert len(rec["accuracies"]) == 2 and rec["seeds"] == [0, 1]
    data = rec.to_json()
    for key in (
        "artifact",
        "harness_version",
        "torch_version",
        "device",
        "wall_time_s",
        "clipped",
        "baseline",
        "std",
        "strategy",
    ):
        assert key in data
    assert rec.artifact["digest"] == art.digest
    # The typed record survives its JSON form (what stores and cards read back).
    from dcregistry.records import EvalRecord

    assert EvalRecord.from_json(json.loads(json.dumps(data))) == rec


def test_baseline_reports_delta(digits_art):
    rec = evaluate(digits_art, quick("dc-noaug"), baseline=True)
    b = rec["baseline"]
    assert b["kind"] == "random-real" and len(b["accuracies"]) == 2
    assert b["delta"] == pytest.approx(rec["mean"] - b["mean"])


def test_soft_labels_and_learned_lr(tmp_path):
    art = digits_artifact(tmp_path / "soft", soft=True, lr=0.02)
    rec = evaluate(art, quick("mtt", epochs=2))
    assert rec["lr"] == pytest.approx(0.02)
    hard = digits_artifact(tmp_path / "hard")
    with pytest.raises(ProtocolError, match="learned lr"):
        evaluate(hard, quick("mtt", epochs=2))


@pytest.mark.parametrize("name", sorted(set(list_protocols()) - {"mtt"}))
def test_every_protocol_runs_on_digits(digits_art, name):
    rec = evaluate(digits_art, quick(name, epochs=1, runs=1))
    assert 0.0 <= rec["mean"] <= 1.0
    assert rec["protocol"]["content"]["augmentation"] == load_protocol(name).augmentation


def test_every_protocol_runs_on_digits_32px(tmp_path):
    art = digits_artifact(tmp_path / "d32", ipc=2, image_size=32)
    for name in ("dsa", "dcbench-autoaug", "dcbench-imagenet-adam"):
        rec = evaluate(art, quick(name, epochs=1, runs=1))
        assert rec["mean"] >= 0.0


def test_auto_strategy_is_remembered_so_reruns_reproduce(digits_art, harness_cache, monkeypatch):
    from harness.engine import strategies

    p = quick("dc-noaug")
    calls = []
    real = strategies._measure

    def measure(*args):
        calls.append(1)
        return strategies.Choice("vmap", real(*args).measured, "test: vmap")

    monkeypatch.setattr(strategies, "_measure", measure)
    a = evaluate(digits_art, p)
    b = evaluate(digits_art, p)
    assert len(calls) == 1  # measured once, then recalled
    assert a["strategy"]["name"] == b["strategy"]["name"]
    assert a["strategy"]["name"] == "vmap" and "remembered" in b["strategy"]["reason"]
    assert a["accuracies"] == b["accuracies"]
    # another setup (runs) is measured on its own
    evaluate(digits_art, p.with_overrides(runs=3))
    assert len(calls) == 2
    # a corrupt cache file costs a re-measurement, not a crash
    (harness_cache / "strategies.json").write_text("{not json")
    c = evaluate(digits_art, p)
    assert len(calls) == 3 and c["accuracies"] == a["accuracies"]
    # so does one nested past the recursion limit
    (harness_cache / "strategies.json").write_text("[" * 200_000 + "]" * 200_000)
    evaluate(digits_art, p)
    assert len(calls) == 4


@pytest.mark.parametrize("strategy", ["processes", "sequential"])
def test_processes_strategy_matches_sequential_per_seed(digits_art, strategy):
    """Worker processes train with one thread each, like this test: the same bits per seed."""
    p = quick("dc-noaug", epochs=2, runs=2)
    prep = prepare(digits_art, torch.device("cpu"))
    factory = augmentation_factory("none")
    ref, _ = run_seeds(p, prep.train, prep.test, factory, p.seeds, "sequential")
    got, _ = run_seeds(p, prep.train, prep.test, factory, p.seeds, strategy)
    assert [r.seed for r in got] == p.seeds
    assert [r.accuracy for r in got] == [r.accuracy for r in ref]
    assert [r.final_train_loss for r in got] == [r.final_train_loss for r in ref]


@pytest.mark.slow
def test_compiled_strategy_matches_sequential_per_seed(digits_art):
    """torch.compile (or its eager fallback where no compiler exists): same math per seed."""
    p = quick("dc-noaug", epochs=1, runs=2)
    prep = prepare(digits_art, torch.device("cpu"))
    factory = augmentation_factory("none")
    ref, _ = run_seeds(p, prep.train, prep.test, factory, p.seeds, "sequential")
    got, _ = run_seeds(p, prep.train, prep.test, factory, p.seeds, "compiled")
    for r, g in zip(ref, got, strict=True):
        assert g.final_train_loss == pytest.approx(r.final_train_loss, rel=1e-3, abs=1e-4)
        assert abs(g.accuracy - r.accuracy) <= 2 / len(prep.test.labels)


def test_strategies_are_registry_entries(capsys):
    from harness.cli import main
    from harness.engine.strategies import STRATEGIES, strategy_names

    assert strategy_names()[0] == "sequential"
    assert set(strategy_names()) == {"sequential", "compiled", "vmap", "processes"}
    assert all(
        callable(STRATEGIES.get(n).run) and callable(STRATEGIES.get(n).measure) for n in strategy_names()
    )
    with pytest.raises(SystemExit) as exc:
        main(["strategies"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert all(n in out for n in strategy_names())
