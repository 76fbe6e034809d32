"""Cards (HF front matter round trip, results table) and name/reference parsing."""

from __future__ import annotations

import pytest

from dcregistry.card import front_matter, parse_card, render_card
from dcregistry.errors import InvalidNameError, InvalidReferenceError
from dcregistry.metadata import validate_metadata
from dcregistry.refs import parse_ref, validate_name, validate_tag


def test_card_round_trips_through_huggingface_datasetcard(make_artifact):
    from huggingface_hub import DatasetCard

    art = make_artifact()
    text = art.card_text()
    card = DatasetCard(text)
    data = card.data.to_dict()
    assert data == front_matter(art.metadata)
    assert data["dcreg"]["metadata"] == art.metadata
    assert "dataset-distillation" in data["tags"]
    assert data["task_categories"] == ["image-classification"]
    validate_metadata(data["dcreg"]["metadata"])
    assert DatasetCard(str(card)).data.to_dict() == data  # and back again


def test_card_body_sections(make_artifact):
    art = make_artifact(method="dsa")
    fm, body = parse_card(art.card_text())
    for section in (
        "## What this is",
        "## How it was made",
        "## Pixel space and loading",
        "## How to evaluate",
        "## Evaluation results",
        "## Lineage",
        "## Citation",
    ):
        assert section in body
    assert "zhao2021dsa" in body
    assert "load_file" in body
    assert fm["pretty_name"]


def test_card_results_table_renders_records(make_artifact):
    md = make_artifact().metadata
    record = {
        "protocol": {"id": "dsa@abc", "content": {"arch": "convnet", "augmentation": "dsa", "epochs": 1000}},
        "accuracies": [0.5, 0.6],
        "mean": 0.55,
        "std": 0.05,
        "device": "cpu",
        "baseline": {"mean": 0.4, "std": 0.01, "delta": 0.15},
    }
    text = render_card(md, [record], ref="me/set@v1")
    assert "| `dsa@abc` | convnet | dsa | 1000 | 2 | 55.00 ± 5.00 | 40.00 ± 1.00 | +15.00 |" in text
    assert "harness eval me/set@v1" in text


@pytest.mark.parametrize(
    "name", ["../x", "/abs/name", "Upper/case", "a b/c", "noslash", "a/b/c", "a/..", "a/.hidden", "", "a/b@"]
)
def test_bad_names_refused(name):
    with pytest.raises((InvalidNameError, InvalidReferenceError)):
        validate_name(name) if "@" not in name else parse_ref(name)


@pytest.mark.parametrize(
    "text, selector, value",
    [
        ("me/set", "latest", None),
        ("me/set@latest", "latest", None),
        ("me/set@v3", "version", 3),
        ("me/set@best", "tag", "best"),
        ("me/set@sha256:abcd12", "digest", "abcd12"),
    ],
)
def test_refs_parse(text, selector, value):
    ref = parse_ref(text)
    assert (ref.kind, ref.name, ref.selector, ref.value) == ("name", "me/set", selector, value)
    assert str(ref) == text.replace("@latest", "")


def test_directory_and_hub_refs(tmp_path):
    assert parse_ref(str(tmp_path)).kind == "path"
    hub = parse_ref("hf://datasets/Org/Set@main")
    assert (hub.kind, hub.name, hub.value) == ("hub", "Org/Set", "main")
    with pytest.raises(InvalidReferenceError):
        parse_ref(str(tmp_path / "missing"))
    with pytest.raises(InvalidReferenceError):
        parse_ref("me/set@sha256:xyz")


@pytest.mark.parametrize("tag", ["v3", "sha256", "Bad", "has space", ""])
def test_bad_tags(tag):
    with pytest.raises(InvalidNameError):
        validate_tag(tag)


@pytest.mark.parametrize(
    ("method", "protocol"),
    [("dc", "dc-noaug"), ("mtt", "mtt"), ("datm", "mtt"), ("dm", "dsa"), ("mine", "dsa")],
)
def test_card_suggests_the_methods_protocol(make_artifact, method, protocol):
    """The suggested protocol is a fact of the method's entry (dcregistry.citations.METHODS)."""
    from dcregistry.citations import method_info

    assert method_info(method).protocol == protocol
    assert f"--protocol {protocol}" in make_artifact(method=method).card_text()
