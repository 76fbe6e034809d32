"""dcregistry.method_config.MethodConfig: exact JSON round trips of what ``harness condense``
writes, and from_json refusing bad input with the field named."""

from __future__ import annotations

import copy
import json

import pytest

from dcregistry.card import render_card
from dcregistry.method_config import MethodConfig, QualityRecord, condense_record
from dcregistry.records import RecordError

SELECTION = {
    "allocator": "system",
    "config": {"embed": "convnet", "embed_batch": 256, "embed_epochs": 1, "embed_lr": 0.01},
    "config_hash": "sha256:" + "3" * 64,
    "data": {"images": 1347, "split": "train"},
    "device": "cpu",
    "info": {
        "embedding": {"net": "convnet", "training": {"batch_size": 256, "epochs": 1, "optimizer": "sgd"}},
        "selection": "greedy herding per class (float64)",
    },
    "kind": "selection",
    "method": "herding",
    "model": "convnet",
    "peak_memory_bytes": 642060288,
    "peak_memory_kind": "ru_maxrss (whole process)",
    "selection_s": 3.107,
    "threads": 2,
    "wall_time_s": 4.495,
    "validation": {
        "curve": [[0, 0.5]],
        "best_iteration": 0,
        "best_accuracy": 0.5,
        "accuracies": [0.5],
        "protocol": "dc-noaug@0123456789ab",
    },
}

SYNTHESIS = {
    "allocator": "heap",
    "config": {"batch_real": 8, "compile": True, "iterations": 2, "lr_img": 1.0},
    "config_hash": "sha256:" + "4" * 64,
    "data": {"images": 1212, "split": "train minus validation", "validation": {"images": 135}},
    "device": "cpu",
    "first_iteration_s": 0.25,
    "init": {"init": "real"},
    "iterations": 2,
    "kind": "synthesis",
    "loss": {"curve": [[0, 1.5], [1, 1.25]], "first": 1.5, "last": 1.25},
    "method": "dm",
    "model": "convnet",
    "peak_memory_bytes": 1000,
    "peak_memory_kind": "ru_maxrss (whole process)",
    "quality": {
        "best_accuracy": 0.4,
        "initial_accuracy": 0.5,
        "loss_trend": {"window": 1, "first_mean": 1.0, "last_mean": 2.0, "rising": True},
        "warning": "this set may be worse",
    },
    "resumed": False,
    "s_per_iter": 0.125,
    "threads": 2,
    "validation": {
        "curve": [[1, 0.3], [2, 0.4]],
        "best_iteration": 2,
        "best_accuracy": 0.4,
        "initial_accuracy": 0.5,
        "every": 1,
        "protocol": "dc-noaug@0123456789ab",
    },
    "wall_time_s": 5.5,
}

# What the loop wrote before threads/allocator/first_iteration_s/quality/initial_accuracy existed.
OLD_SYNTHESIS = {
    k: v
    for k, v in SYNTHESIS.items()
    if k not in ("threads", "allocator", "first_iteration_s", "quality", "validation")
}


def _canon(d):
    return json.dumps(d, sort_keys=True, allow_nan=False)


@pytest.mark.parametrize("doc", [SELECTION, SYNTHESIS], ids=["selection", "synthesis"])
def test_round_trip_is_exact(doc):
    rec = MethodConfig.from_json(copy.deepcopy(doc))
    assert _canon(rec.to_json()) == _canon(doc)
    assert MethodConfig.from_json(rec.to_json()) == rec


def test_an_older_record_reads_with_the_newer_fields_none():
    rec = MethodConfig.from_json(OLD_SYNTHESIS)
    assert rec.threads is rec.allocator is rec.quality is rec.first_iteration_s is None
    # the one field a synthesis record always writes since: null when unknown
    assert rec.to_json() == dict(OLD_SYNTHESIS, first_iteration_s=None)


def test_views():
    sel, syn = MethodConfig.from_json(SELECTION), MethodConfig.from_json(SYNTHESIS)
    assert sel.network is not None and sel.network["net"] == "convnet" and sel.init_kind is None
    assert syn.init_kind == "real" and syn.best_validation == (0.4, 2)
    assert syn.quality_warning == "this set may be worse" and sel.quality_warning is None
    assert isinstance(syn.quality, QualityRecord) and syn.quality.loss_trend is not None
    assert MethodConfig.from_json(OLD_SYNTHESIS).first_iteration_s is None


def test_free_form_configs_are_not_condense_records():
    assert condense_record({"experiment": 0, "soft_labels": "logits"}) is None
    assert condense_record(None) is None and condense_record([]) is None
    assert condense_record(SYNTHESIS) == MethodConfig.from_json(SYNTHESIS)


def _bad(doc, path, value):
    root = d = copy.deepcopy(doc)
    *head, last = path
    for k in head:
        d = d[k]
    if value is KeyError:
        del d[last]
    else:
        d[last] = value
    return root


@pytest.mark.parametrize(
    "doc, path, value, field",
    [
        (SYNTHESIS, ("wall_time_s",), float("nan"), "method_config.wall_time_s"),
        (SYNTHESIS, ("wall_time_s",), float("inf"), "method_config.wall_time_s"),
        (SYNTHESIS, ("wall_time_s",), "5", "method_config.wall_time_s"),
        (SYNTHESIS, ("peak_memory_bytes",), 1.5, "method_config.peak_memory_bytes"),
        (SYNTHESIS, ("peak_memory_bytes",), True, "method_config.peak_memory_bytes"),
        (SYNTHESIS, ("config_hash",), KeyError, "method_config.config_hash"),
        (SYNTHESIS, ("iterations",), KeyError, "method_config.iterations"),
        (SYNTHESIS, ("loss",), KeyError, "method_config.loss"),
        (SYNTHESIS, ("loss", "curve"), [[0, float("nan")]], "method_config.loss.curve"),
        (SYNTHESIS, ("loss", "first"), float("nan"), "method_config.loss.first"),
        (SYNTHESIS, ("resumed",), 0, "method_config.resumed"),
        (SYNTHESIS, ("kind",), "magic", "method_config.kind"),
        (SYNTHESIS, ("config",), [], "method_config.config"),
        (SYNTHESIS, ("wall_time",), 1.0, "method_config.wall_time"),  # unknown key
        (SYNTHESIS, ("selection_s",), 1.0, "method_config.selection_s"),
        (SYNTHESIS, ("validation", "best_iteration"), "2", "method_config.validation.best_iteration"),
        (SYNTHESIS, ("validation", "extra"), 1, "method_config.validation.extra"),
        (SYNTHESIS, ("quality", "warning"), 3, "method_config.quality.warning"),
        (SYNTHESIS, ("quality", "loss_trend", "rising"), "yes", "method_config.quality.loss_trend.rising"),
        (SELECTION, ("selection_s",), KeyError, "method_config.selection_s"),
        (SELECTION, ("loss",), {"first": 1.0, "last": 1.0, "curve": []}, "method_config.loss"),
        (SELECTION, ("validation", "accuracies"), [0.5, None], "method_config.validation.accuracies"),
    ],
)
def test_from_json_names_the_bad_field(doc, path, value, field):
    with pytest.raises(RecordError) as exc:
        MethodConfig.from_json(_bad(doc, path, value))
    assert exc.value.field == field, str(exc.value)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("doc", [None, [], "x", 3])
def test_from_json_refuses_a_non_object(doc):
    with pytest.raises(RecordError, match="must be an object"):
        MethodConfig.from_json(doc)


def _md(mc):
    return {
        "dataset": "digits",
        "num_classes": 10,
        "class_names": [str(i) for i in range(10)],
        "image_shape": [1, 8, 8],
        "ipc": 1,
        "method": "dm",
        "method_config": mc,
        "pixel_space": {"kind": "unit"},
        "label_kind": "hard",
        "seed": 0,
        "created_at": "2026-01-01T00:00:00Z",
        "producer": {"package": "test"},
        "source": None,
        "lineage": [],
        "license": "other",
    }


def test_card_reads_the_record():
    card = render_card(_md(SYNTHESIS))
    assert "| made by | `harness condense` (synthesis method) |" in card
    assert "| init | real |" in card and "0.125 s/iteration over 2 iterations" in card
    assert "best 40.00 % at iteration 2" in card and "| **quality warning** | this set may be worse |" in card
    herd = render_card(_md(SELECTION))
    assert "| embedding net | `convnet`, trained 1 epoch(s), sgd, batch 256 |" in herd


def test_card_shows_a_damaged_record_as_recorded():
    bad = dict(SYNTHESIS, wall_time_s="soon")
    card = render_card(_md(bad))
    assert "| method record | unreadable: method_config.wall_time_s: must be a finite number" in card
    assert "| made by |" not in card
