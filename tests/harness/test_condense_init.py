"""`harness condense --init <selection method>`: a synthesis run starts from the set a selection
method picks (run in-process with its defaults), recorded in ``method_config.init`` (method and
config hash); unknown names are one line listing the choices. Condense cells carry ``init`` in
their recipe only when they set one, so every other cell keeps its id."""

from __future__ import annotations

import pytest
import torch

from dcregistry.artifact import open_artifact
from dcregistry.canonical import canonical_json, sha256_bytes
from harness.methods import METHODS
from harness.methods.loop import CondenseSpec, condense, init_choices

from .cli_helpers import run_harness
from .test_condense import _Toy

FAST_DM = ["--option", "compile=false", "--option", "batch_real=8"]


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(METHODS._entries, "toy", _Toy)
    _Toy.fail_at = None
    yield _Toy


def test_init_choices_are_real_noise_and_every_selection_method():
    choices = init_choices()
    assert choices[:2] == ["real", "noise"]
    assert {"random", "herding", "kcenter", "forgetting"} <= set(choices)
    assert not {"dc", "dsa", "dm", "mtt"} & set(choices)
    assert "ors" not in choices  # it scores on the validation split, which a synthesis trains on


def test_init_from_a_selection_starts_from_the_set_that_method_makes(toy, tmp_path):
    kc = condense(CondenseSpec("digits", "kcenter", 2, tmp_path / "kc", seed=3)).artifact
    child = condense(
        CondenseSpec("digits", "toy", 2, tmp_path / "c", seed=3, init="kcenter", iterations=0)
    ).artifact
    # no iterations: the artifact is the init, which is `condense --method kcenter`'s set
    assert torch.equal(child.torch("images"), kc.torch("images"))
    assert torch.equal(child.torch("labels"), kc.torch("labels"))
    init = child.metadata["method_config"]["init"]
    kc_mc = kc.metadata["method_config"]
    assert init["init"] == "selection" and init["method"] == "kcenter"
    assert init["config_hash"] == kc_mc["config_hash"] and init["config"] == kc_mc["config"]
    assert init["info"]["clustering"]["n_clusters"] == 2 and init["selection_s"] >= 0
    assert child.metadata["lineage"] == []  # no parent artifact was made
    # the random selection is the random-real stream: the same images as `real`, recorded apart
    rnd = condense(CondenseSpec("digits", "toy", 2, tmp_path / "r", init="random", iterations=0)).artifact
    real = condense(CondenseSpec("digits", "toy", 2, tmp_path / "rr", iterations=0)).artifact
    assert torch.equal(rnd.torch("images"), real.torch("images"))
    assert rnd.metadata["method_config"]["init"]["method"] == "random"
    assert real.metadata["method_config"]["init"] == {"init": "real"}


def test_cli_init_selection_and_one_line_errors(tmp_path, capsys):
    out = tmp_path / "dm"
    argv = ["condense", "digits", "--method", "dm", "--ipc", "1", "--iterations", "1", "-q", *FAST_DM]
    code, stdout, err = run_harness([*argv, "--init", "herding", "-o", out], capsys)
    assert code == 0, err
    art = open_artifact(out)
    init = art.metadata["method_config"]["init"]
    assert init["method"] == "herding" and init["config_hash"].startswith("sha256:")
    assert f"herding selection (`{init['config_hash']}`)" in (out / "README.md").read_text()
    for bad, needle in [("bogus", "unknown"), ("dc", "a synthesis method"), ("KCenter", "unknown")]:
        code, stdout, err = run_harness([*argv, "--init", bad, "-o", tmp_path / bad], capsys)
        assert code == 1 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert needle in err and ", ".join(init_choices()) in err
        assert not (tmp_path / bad).exists()
    # a selection method takes no init (as before)
    code, _, err = run_harness(
        ["condense", "digits", "--method", "random", "--ipc", "1", "--init", "kcenter", "-o", tmp_path / "r"],
        capsys,
    )
    assert code == 1 and "does not apply" in err


# ----------------------------------------------------------------------------- condense cells
BASE = {"dataset": "digits", "method": "dc", "ipc": 1}
#: the recipe a cell without init has always had (its id must never change)
PINNED = (
    b'{"dataset":"digits","image_size":null,"ipc":1,"iterations":null,"method":"dc",'
    b'"model":"convnet","options":{},"seed":0}'
)


def test_condense_entry_init_is_part_of_the_recipe_only_when_set():
    from harness.sweep.spec import CondenseEntry

    plain = CondenseEntry.from_json(BASE)
    assert plain.init is None and plain.id == sha256_bytes(PINNED)
    assert canonical_json(plain.recipe()) == PINNED and "init" not in plain.to_json()
    # real is the default: the same cell and id as none
    assert CondenseEntry.from_json({**BASE, "init": "real"}) == plain
    kc = CondenseEntry.from_json({**BASE, "init": "kcenter"})
    assert kc.recipe() == {**plain.recipe(), "init": "kcenter"} and kc.id != plain.id
    assert CondenseEntry.from_json(kc.to_json()) == kc
    named = {**BASE, "name": "s/{method}-{init}-{id}"}
    noise = CondenseEntry.from_json({**named, "init": "noise"})
    assert noise.push_name("x") == f"s/dc-noise-{noise.id[:10]}"
    assert CondenseEntry.from_json(named).push_name("x").startswith("s/dc-real-")


@pytest.mark.parametrize(
    "value, needle",
    [
        ({**BASE, "init": "bogus"}, "must be one of real, noise, forgetting, herding, kcenter"),
        ({**BASE, "init": "me/set"}, "must be one of"),  # a reference is not a recipe
        ({**BASE, "init": 3}, "must be one of"),
        ({**BASE, "method": "kcenter", "init": "herding"}, "synthesis methods only"),
    ],
)
def test_condense_entry_init_is_validated(value, needle):
    from harness.sweep.spec import CondenseEntry, SweepSpecError

    with pytest.raises(SweepSpecError, match=needle) as info:
        CondenseEntry.from_json(value, "condense[0]")
    assert "condense[0].init" in str(info.value)


def test_init_lists_make_a_grid():
    from harness.sweep.spec import SweepSpec

    spec = SweepSpec.from_json(
        {
            "name": "g",
            "protocols": ["dsa"],
            "condense": [{**BASE, "init": ["real", "kcenter", "noise"]}],
        }
    )
    assert [c.init for c in spec.condense] == [None, "kcenter", "noise"]


def test_a_condense_cell_passes_its_init_to_the_run(tmp_path, dcreg_home):
    from dcregistry.store import open_ref
    from harness.sweep.condense import CondenseTask
    from harness.sweep.spec import CondenseEntry

    e = CondenseEntry.from_json(
        {
            "dataset": "digits",
            "method": "dm",
            "ipc": 1,
            "iterations": 1,
            "options": {"compile": False, "batch_real": 8},
            "init": "random",
        }
    )
    outcome = CondenseTask(e, "t/dm-init", None, str(tmp_path / "work")).run()
    assert outcome.ok, outcome.error
    init = open_ref(outcome.ref).metadata["method_config"]["init"]
    assert init["init"] == "selection" and init["method"] == "random"
