"""dcregistry.records.EvalRecord: JSON round trip, named errors, the views the card/CLI use."""

from __future__ import annotations

import pytest

from dcregistry.records import CARD_TABLE_HEADER, EvalRecord, RecordError

REC = {
    "kind": "dcreg-eval/1",
    "artifact": {"ref": "a/b@v1", "digest": "sha256:" + "0" * 64},
    "protocol": {
        "id": "dsa@0123456789ab",
        "content": {"arch": "convnet", "augmentation": "dsa", "epochs": 1000},
    },
    "seeds": [0, 1],
    "accuracies": [0.5, 0.7],
    "mean": 0.6,
    "std": 0.1,
    "device": "cpu:1threads",
    "baseline": {
        "kind": "random-real",
        "ipc": 1,
        "accuracies": [0.4, 0.4],
        "mean": 0.4,
        "std": 0.0,
        "delta": 0.2,
    },
}


def test_round_trip_and_views():
    rec = EvalRecord.from_json(REC)
    assert EvalRecord.from_json(rec.to_json()) == rec
    assert rec.summary() == (
        "dsa@0123456789ab: 60.00 ± 10.00 % over 2 runs; random real 40.00 ± 0.00 % (delta +20.00)"
    )
    row = rec.card_row()
    assert row.count("|") == CARD_TABLE_HEADER.splitlines()[0].count("|")
    assert "| convnet | dsa | 1000 | 2 | 60.00 ± 10.00 | 40.00 ± 0.00 | +20.00 |" in row
    assert rec["mean"] == 0.6


@pytest.mark.parametrize(
    "patch,field",
    [
        ({"kind": "other/1"}, "record.kind"),
        ({"protocol": {"name": "x"}}, "record.protocol.id"),
        ({"mean": "high"}, "record.mean"),
        ({"mean": float("nan")}, "record.mean"),
        ({"accuracies": [0.1, "x"]}, "record.accuracies"),
        ({"seeds": [0.5]}, "record.seeds"),
        ({"baseline": {"mean": 0.1}}, "record.baseline.std"),
    ],
)
def test_malformed_records_name_the_field(patch, field):
    with pytest.raises(RecordError, match=field.replace(".", r"\.")):
        EvalRecord.from_json(REC | patch)


def test_card_shows_good_records_and_names_a_damaged_one():
    from dcregistry.card import render_card
    from dcregistry.metadata import with_defaults
    from tests.conftest import artifact_metadata

    md = with_defaults(artifact_metadata())
    card = render_card(md, [REC, REC | {"mean": "high"}])
    assert "| 60.00 ± 10.00 |" in card and "(unreadable result: record.mean" in card
