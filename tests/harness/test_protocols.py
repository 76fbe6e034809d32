"""Named protocols: the published recipe values, hashes and overrides."""

from __future__ import annotations

import pytest

from dcregistry.errors import ProtocolError, UnknownNameError
from harness.protocols import list_protocols, load_protocol

EXPECTED = {"dc-noaug", "dc-mnist", "dsa", "mtt"} | {
    f"dcbench-{a}{o}" for a in ("none", "dsa", "imagenet", "randaug", "autoaug") for o in ("", "-adam")
}


def test_every_listed_protocol_ships():
    assert set(list_protocols()) == EXPECTED


def test_dc_recipe_values():
    p = load_protocol("dc-noaug")
    assert (p.arch, p.augmentation, p.optimizer, p.lr, p.momentum, p.weight_decay) == (
        "convnet",
        "none",
        "sgd",
        0.01,
        0.9,
        0.0005,
    )
    assert (p.epochs, p.decay_epoch, p.decay, p.batch_size, p.test_batch_size) == (300, 151, 0.1, 256, 256)
    assert p.selection == "final-epoch"
    assert load_protocol("dsa").epochs == 1000 and load_protocol("dsa").augmentation == "dsa"
    assert load_protocol("dc-mnist").augmentation == "dc"
    assert load_protocol("mtt").lr_source == "artifact"
    adam = load_protocol("dcbench-dsa-adam")
    assert (adam.optimizer, adam.lr, adam.weight_decay) == ("adam", 0.003, 0.0)
    assert load_protocol("dcbench-none").epochs == 300


def test_ids_are_hashes_of_content():
    p = load_protocol("dsa")
    assert p.id == f"dsa@{p.hash}" and len(p.hash) == 12
    assert load_protocol("dsa").hash == p.hash  # stable
    assert load_protocol("dc-noaug").hash != p.hash


def test_overrides_derive_a_new_protocol():
    p = load_protocol("dsa")
    d = p.with_overrides(arch="resnet18", epochs=50)
    assert d.name == "dsa+arch=resnet18,epochs=50"
    assert d.hash != p.hash and d.arch == "resnet18" and d.epochs == 50
    assert d.with_overrides(runs=2).name == "dsa+arch=resnet18,epochs=50,runs=2"
    assert p.with_overrides() is p
    with pytest.raises(UnknownNameError):
        p.with_overrides(arch="resnet9000")
    with pytest.raises(UnknownNameError):
        p.with_overrides(augmentation="mixup")
    with pytest.raises(ProtocolError):
        p.with_overrides(epochs=0)


def test_protocol_from_file_and_bad_file(tmp_path):
    from harness.protocols import protocol_toml

    f = tmp_path / "mine.toml"
    f.write_text(protocol_toml("dsa").replace('name = "dsa"', 'name = "mine"', 1))
    assert load_protocol(str(f)).hash == load_protocol("dsa").hash
    f.write_text("name = 'broken'\n")
    with pytest.raises(ProtocolError):
        load_protocol(str(f))
    with pytest.raises(UnknownNameError):
        load_protocol("nope")


def test_protocol_ids_are_pinned_to_the_canonical_toml_content():
    """An id is sha256 of the TOML file's tables (minus name/description): pinned values, and an
    independent recomputation from the raw file, so renaming a dataclass field cannot move it."""
    import hashlib
    from importlib import resources

    import tomllib

    from dcregistry.canonical import canonical_json
    from harness.protocols import list_protocols

    assert load_protocol("dc-noaug").id == "dc-noaug@12ef90367d63"
    assert load_protocol("dsa").id == "dsa@fe7b77582db5"
    assert load_protocol("mtt").id == "mtt@489d46a029ad"
    for name in list_protocols():
        raw = tomllib.loads(resources.files("harness.protocols").joinpath(f"{name}.toml").read_text())
        del raw["name"], raw["description"]
        assert load_protocol(name).hash == hashlib.sha256(canonical_json(raw)).hexdigest()[:12], name


def test_unknown_toml_keys_are_refused(tmp_path):
    import re

    from harness.protocols import protocol_toml

    text = protocol_toml("dsa").replace("[model]\n", "[model]\nwidth = 256\n")
    f = tmp_path / "odd.toml"
    f.write_text(text)
    with pytest.raises(ProtocolError, match=re.escape("unknown protocol keys model.width")):
        load_protocol(str(f))
