"""`harness rank`: DD-Ranking's IOR / HLR / LRS / ARS on fractions, the full-data cache, the
record's typed rank block and the card."""

from __future__ import annotations

import json
import math

import pytest

from dcregistry.ranking import ars, lrs, normalized_score
from dcregistry.records import CARD_TABLE_HEADER, EvalRecord, RankBlock, RecordError

from .cli_helpers import run_harness
from .conftest import digits_artifact

FAST = ["--epochs", "1", "--runs", "2", "--strategy", "sequential", "--device", "cpu", "--quiet"]


def _block(**kw):
    fields = dict(
        lam=0.5,
        labels="hard",
        set_acc=[0.6, 0.7],
        random_acc=[0.4, 0.45],
        set_hard_acc=[0.6, 0.7],
        full_acc=[0.95, 0.97],
        set_noaug_acc=[0.5, 0.55],
        random_noaug_acc=[0.35, 0.4],
    )
    return RankBlock(**(fields | kw))


# --- the formulas ---------------------------------------------------------------------------


def test_scores_stay_in_unit_interval_for_fractions():
    grid = [i / 10 for i in range(11)]
    for a in grid:  # accuracies in [0, 1]: IOR, HLR in [-1, 1]
        for b in grid:
            for lam in (0.0, 0.3, 0.5, 1.0):
                assert 0.0 <= lrs(a - b, b - a, lam) <= 1.0
                assert 0.0 <= lrs(a - b, a - b, lam) <= 1.0
                assert 0.0 <= ars(a - b, b - a, lam) <= 1.0
    assert normalized_score(-1.0) == pytest.approx(0.0, abs=1e-15)
    assert normalized_score(1.0) == pytest.approx(1.0)


def test_percent_inputs_break_the_bound():
    # DD-Ranking's code passes percentages: IOR +30 points and HLR 10 points give alpha = 10
    assert lrs(30.0, 10.0) > 1000
    # and a weak set (IOR +2, HLR 40 points) gives a negative "score"
    assert lrs(2.0, 40.0) < 0
    # the same accuracies as fractions are inside [0, 1]
    assert 0 < lrs(0.30, 0.10) < 1 and 0 < lrs(0.02, 0.40) < 1


def test_lambda_is_checked():
    with pytest.raises(ValueError):
        lrs(0.1, 0.1, 1.5)


# --- the typed block ------------------------------------------------------------------------


def test_block_numbers_by_hand_and_round_trip():
    b = _block()
    ior = [0.6 - 0.4, 0.7 - 0.45]
    hlr = [0.95 - 0.6, 0.97 - 0.7]
    lr_ = [
        (math.exp(0.5 * i - 0.5 * h) - math.exp(-1)) / (math.e - math.exp(-1))
        for i, h in zip(ior, hlr, strict=True)
    ]
    noaug = [0.5 - 0.35, 0.55 - 0.4]
    ar = [
        (math.exp(0.5 * i + 0.5 * n) - math.exp(-1)) / (math.e - math.exp(-1))
        for i, n in zip(ior, noaug, strict=True)
    ]
    assert b.ior == pytest.approx(sum(ior) / 2) and b.hlr == pytest.approx(sum(hlr) / 2)
    assert b.lrs == pytest.approx(sum(lr_) / 2) and b.ars == pytest.approx(sum(ar) / 2)
    assert RankBlock.from_json(json.loads(json.dumps(b.to_json()))) == b
    no_ars = _block(set_noaug_acc=None, random_noaug_acc=None)
    assert no_ars.ars is None and RankBlock.from_json(no_ars.to_json()) == no_ars


def test_block_validation():
    good = _block().to_json()
    for bad, field in [
        (good | {"full_acc": [0.9]}, "full_acc"),
        (good | {"set_acc": [1.5, 0.2]}, "set_acc"),
        (good | {"lam": 2}, "lam"),
        (good | {"labels": "fuzzy"}, "labels"),
        (good | {"scores": good["scores"] | {"lrs": {"mean": 0.99, "std": 0}}}, "scores.lrs"),
        (good | {"set_noaug_acc": None}, "set_noaug_acc"),
    ]:
        with pytest.raises(RecordError, match=field):
            RankBlock.from_json(bad)


def test_record_with_and_without_rank():
    base = {
        "kind": "dcreg-eval/1",
        "artifact": {"ref": "x", "digest": "d"},
        "protocol": {
            "id": "dsa@0123456789ab",
            "content": {"arch": "convnet", "augmentation": "dsa", "epochs": 1},
        },
        "seeds": [0, 1],
        "accuracies": [0.6, 0.7],
        "mean": 0.65,
        "std": 0.05,
    }
    old = EvalRecord.from_json(base)
    assert old.rank is None and "rank" not in old.to_json()
    new = EvalRecord.from_json(base | {"rank": _block().to_json()})
    assert new.rank == _block() and EvalRecord.from_json(new.to_json()) == new
    row = new.card_row()
    assert "LRS " in row and "IOR +" in row
    assert row.count("|") == old.card_row().count("|") == CARD_TABLE_HEADER.splitlines()[0].count("|")
    assert "LRS" in new.summary()


# --- through the CLI ------------------------------------------------------------------------


def test_rank_records_metrics_and_caches_full_data(tmp_path, dcreg_home, harness_cache, capsys, monkeypatch):
    from dcregistry.store import LocalStore

    store = LocalStore(dcreg_home)
    store.push(digits_artifact(tmp_path / "art", ipc=3, seed=1).path, "me/digits")
    out = tmp_path / "rank.json"
    argv = ["rank", "me/digits", "--protocol", "dsa", *FAST]
    code, stdout, err = run_harness([*argv, "--record", "--json", out], capsys)
    assert code == 0, err
    data = json.loads(out.read_text())
    rec = EvalRecord.from_json(data)
    b = rec.rank
    assert b is not None and b.labels == "hard" and b.full_data["cached"] is False
    # the components are the record's own numbers ...
    assert b.set_acc == rec.accuracies and b.random_acc == rec.baseline.accuracies == b.random_acc
    assert b.set_hard_acc == b.set_acc  # hard labels: HLR uses the set as it is
    # ... and the scores are DD-Ranking's formulas on them (fractions), per seed then averaged
    n = lambda x: (math.exp(x) - math.exp(-1)) / (math.e - math.exp(-1))  # noqa: E731
    ior = [s - r for s, r in zip(b.set_acc, b.random_acc, strict=True)]
    hlr = [f - s for f, s in zip(b.full_acc, b.set_acc, strict=True)]
    noaug = [s - r for s, r in zip(b.set_noaug_acc, b.random_noaug_acc, strict=True)]
    scores = data["rank"]["scores"]
    assert scores["ior"]["mean"] == pytest.approx(sum(ior) / 2)
    assert scores["hlr"]["mean"] == pytest.approx(sum(hlr) / 2)
    assert scores["lrs"]["mean"] == pytest.approx(
        sum(n(0.5 * i - 0.5 * h) for i, h in zip(ior, hlr, strict=True)) / 2
    )
    assert scores["ars"]["mean"] == pytest.approx(
        sum(n(0.5 * i + 0.5 * a) for i, a in zip(ior, noaug, strict=True)) / 2
    )
    assert 0 <= scores["lrs"]["mean"] <= 1 and 0 <= scores["ars"]["mean"] <= 1
    assert "HLR = acc(full real)" in err and "IOR and HLR with its labels" in err
    # recorded on the version: the card's results table shows the metrics
    anns = store.annotations("me/digits", "eval")
    assert len(anns) == 1 and anns[0]["record"]["rank"]["scores"] == scores
    card = store.card("me/digits")
    assert "DD-Ranking" in card and f"LRS {b.lrs:.3f}" in card

    # second time: the full-data accuracy comes from the cache, nothing is retrained for it
    cache = harness_cache / "fulldata"
    (entry,) = cache.iterdir()
    mtime = entry.stat().st_mtime_ns

    def no_training(*args, **kwargs):
        raise AssertionError("the full-data accuracy was trained again")

    monkeypatch.setattr("harness.engine.rank.train_full_data", no_training)
    code, stdout, err = run_harness([*argv, "--json", "-"], capsys)
    assert code == 0, err
    again = json.loads(stdout)["rank"]
    assert again["full_data"]["cached"] is True and again["full_acc"] == data["rank"]["full_acc"]
    assert entry.stat().st_mtime_ns == mtime
    # a damaged or oversized entry is not trusted (it is recomputed and rewritten)
    from harness.engine.rank import MAX_ENTRY_BYTES, FullDataEntry, _read_entry

    good = _read_entry(entry)
    assert isinstance(good, FullDataEntry) and FullDataEntry.from_json(good.to_json(), "e") == good
    for text in (
        '{"kind": "harness-fulldata/1", "accuracies": [2]}',
        "[" * 100_000,
        " " * (MAX_ENTRY_BYTES + 1),
    ):
        damaged = tmp_path / "damaged.json"
        damaged.write_text(text)
        assert _read_entry(damaged) is None


def test_rank_soft_labels_use_argmax_for_hlr(tmp_path, capsys):
    art = digits_artifact(tmp_path / "soft", ipc=3, seed=1, soft=True)
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the cache directory should be")
    code, stdout, err = run_harness(
        [
            "rank",
            art.path,
            "--protocol",
            "dc-noaug",
            *FAST,
            "--lam",
            "0.25",
            "--json",
            "-",
            "--cache-dir",
            blocked / "fulldata",
        ],
        capsys,
    )
    assert code == 0, err
    assert "not cached in" in err  # an unusable cache costs a warning, not the result
    b = RankBlock.from_json(json.loads(stdout)["rank"])
    assert b.labels == "soft" and b.lam == 0.25
    assert b.ars is None and "ARS: -" in err  # dc-noaug augments nothing
    assert "IOR with its soft labels, HLR with their argmax" in err
    assert b.lrs == pytest.approx(
        sum(
            lrs(s - r, f - h, 0.25)
            for s, r, f, h in zip(b.set_acc, b.random_acc, b.full_acc, b.set_hard_acc, strict=True)
        )
        / 2
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--lam", "1.5"], "--lam"),
        (["--record"], "--record needs a store reference"),
        (["--protocol", "nope"], "unknown protocol"),
        (["--arch", "convnet-q9"], "convnet"),
    ],
)
def test_rank_bad_input_one_line(tmp_path, capsys, argv, message):
    art = digits_artifact(tmp_path / "art", ipc=1)
    code, _, err = run_harness(["rank", art.path, "--protocol", "dc-noaug", *argv, "-q"], capsys)
    assert code == 1 and message in err and err.count("\n") == 1, err
