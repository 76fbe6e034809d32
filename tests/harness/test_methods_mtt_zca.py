"""MTT's ZCA option (`--option zca=true`): the context, the artifact, its evaluation, the experts'
digest, init from another artifact, and the refusals. Tiny budgets (8x8 digits, 2 experts x 2
epochs, 1-2 iterations): the file runs in seconds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dcregistry.artifact import build_artifact, open_artifact
from dcregistry.errors import UserError
from dcregistry.pixelspace import PixelSpace
from harness.data import fit_zca, load_dataset, random_real_indices, to_unit, validation_split
from harness.methods import get_method
from harness.methods.base import build_config, config_hash, config_record
from harness.methods.loop import CondenseSpec, condense, load_context

from .cli_helpers import run_harness
from .condense_helpers import kill_then_resume
from .conftest import digits_artifact

SMALL = {
    "num_experts": "2",
    "expert_train_epochs": "2",
    "max_start_epoch": "2",
    "expert_epochs": "1",
    "syn_steps": "4",
    "lr_img": "100",
    "lr_lr": "1e-7",
}
# A step that leaves the images where they started: iteration-0 pixels in the artifact.
FROZEN = dict(SMALL, lr_img="1e-12", lr_lr="1e-12")
ZCA_SPACE = {
    "kind": "zca",
    "variant": "kornia-eps0.1",
    "transform": {"source": "tensors"},
    "then": {"kind": "unit"},
}


@pytest.fixture(scope="module", autouse=True)
def experts_cache(tmp_path_factory):
    """One harness cache per module: the small experts are trained once and shared."""
    path = tmp_path_factory.mktemp("harness-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_CACHE", str(path))
        yield path


def _argv(out, opts, *extra):
    argv = [
        "condense",
        "digits",
        "--method",
        "mtt",
        "--ipc",
        "1",
        "--iterations",
        "2",
        "-o",
        str(out),
        "-q",
        *extra,
    ]
    for k, v in opts.items():
        argv += ["--option", f"{k}={v}"]
    return argv


def _unit_train():
    train = load_dataset("digits", "train")
    return train.images, train.labels


def _zca_spec(out, **kw):
    opts = dict(kw.pop("options", FROZEN), zca="true")
    return CondenseSpec("digits", "mtt", 1, out, iterations=kw.pop("iterations", 1), options=opts, **kw)


def test_zca_mtt_condenses_verifies_and_evaluates_from_the_cli(tmp_path, capsys):
    from dcregistry.cli import main as dmain
    from harness.engine.evaluate import prepare
    from harness.methods.experts import spec_for

    out = tmp_path / "zca"
    code, _, err = run_harness(_argv(out, dict(SMALL, zca="true")), capsys)
    assert code == 0, err
    art = open_artifact(out)
    md, mc = art.metadata, art.metadata["method_config"]
    assert md["pixel_space"] == ZCA_SPACE
    assert {"images", "labels", "lr", "zca_mean", "zca_matrix", "zca_inverse"} == set(art.tensor_names)
    assert mc["config"]["zca"] is True and float(art.torch("lr")) > 0
    # The ZCA is the one fitted on the training split's unit images (no held-out split here).
    unit, _ = _unit_train()
    zca = fit_zca(unit, "kornia-eps0.1")
    assert mc["data"]["zca"] == {"variant": "kornia-eps0.1", "fitted_on": "train", "digest": zca.digest()}
    assert torch.equal(art.torch("zca_matrix"), zca.matrix) and torch.equal(art.torch("zca_mean"), zca.mean)
    # ZCA experts were used: the digest of experts trained on the whitened images, not the normalized ones.
    kw = dict(num_experts=2, epochs=2, lr=0.01, augmentation="dsa", seed=0)
    z_ctx = load_context(
        CondenseSpec("digits", "mtt", 1, out, options={"zca": "true"}), torch.device("cpu")
    ).ctx
    n_ctx = load_context(CondenseSpec("digits", "mtt", 1, out), torch.device("cpu")).ctx
    assert mc["config"]["experts_digest"] == spec_for(z_ctx, **kw).digest != spec_for(n_ctx, **kw).digest
    with pytest.raises(SystemExit) as exc:
        dmain(["verify", str(out)])
    assert exc.value.code == 0
    # The evaluator whitens the test set with the artifact's own tensors.
    prep = prepare(art, torch.device("cpu"))
    test_unit = load_dataset("digits", "test").images
    assert torch.allclose(prep.test.images, zca.apply(test_unit), atol=1e-5)

    code, _, err = run_harness(
        [
            "eval",
            out,
            "--protocol",
            "mtt",
            "--epochs",
            "2",
            "--runs",
            "1",
            "--device",
            "cpu",
            "--strategy",
            "sequential",
            "-q",
            "--json",
            tmp_path / "mtt.json",
        ],
        capsys,
    )
    assert code == 0, err
    rec = json.loads((tmp_path / "mtt.json").read_text())
    assert rec["lr"] == pytest.approx(float(art.torch("lr")))  # the learned lr trains the student
    code, _, err = run_harness(
        [
            "eval",
            out,
            "--protocol",
            "dc-noaug",
            "--epochs",
            "2",
            "--runs",
            "1",
            "--device",
            "cpu",
            "--strategy",
            "sequential",
            "-q",
        ],
        capsys,
    )
    assert code == 0, err
    code, _, err = run_harness(
        [
            "eval",
            out,
            "--protocol",
            "dcbench-imagenet",
            "--epochs",
            "1",
            "--runs",
            "1",
            "--device",
            "cpu",
            "-q",
        ],
        capsys,
    )
    assert code == 1 and "ZCA" in err and len(err.strip().splitlines()) == 1


def test_zca_round_trip_gives_back_the_real_init_images(tmp_path):
    """Iteration-0 pixels mapped to unit range by the numpy PixelSpace are the real images drawn."""
    art = condense(_zca_spec(tmp_path / "z", seed=3)).artifact
    unit, labels = _unit_train()
    real = unit[random_real_indices(labels, 1, 3, 10)]
    zca = {n: art.torch(n).numpy() for n in ("zca_mean", "zca_matrix", "zca_inverse")}
    space = PixelSpace.parse(art.metadata["pixel_space"])
    back = space.to_unit(art.torch("images").numpy(), zca)
    assert abs(back - real.numpy()).max() < 1e-4
    assert back.min() > -1e-4 and back.max() < 1 + 1e-4
    assert abs(space.from_unit(real.numpy(), zca) - art.torch("images").numpy()).max() < 1e-4
    assert art.metadata["method_config"]["init"] == {"init": "real"}


def test_with_model_selection_the_zca_is_fitted_without_the_validation_images(tmp_path):
    unit, labels = _unit_train()
    tr, val = validation_split(labels, 10)
    zca = fit_zca(unit[tr], "kornia-eps0.1")
    data = load_context(
        CondenseSpec("digits", "mtt", 1, tmp_path, options={"zca": "true"}), torch.device("cpu"), holdout=True
    )
    assert data.ctx.space.to_dict() == ZCA_SPACE and data.ctx.space.zca.digest() == zca.digest()
    assert torch.allclose(data.ctx.images, zca.apply(unit[tr]), atol=1e-6)
    assert torch.allclose(data.val_images, zca.apply(unit[val]), atol=1e-6)  # the validator's images
    art = condense(
        _zca_spec(tmp_path / "v", eval_every=1, protocol="dc-noaug", eval_epochs=1, eval_runs=1)
    ).artifact
    mc = art.metadata["method_config"]
    assert mc["data"]["zca"] == {
        "variant": "kornia-eps0.1",
        "fitted_on": "train minus validation",
        "digest": zca.digest(),
    }
    assert torch.equal(art.torch("zca_inverse"), zca.inverse)
    assert mc["validation"]["best_iteration"] == 1 and 0 < mc["validation"]["best_accuracy"] <= 1


def test_zca_is_off_by_default_and_old_hashes_stay():
    """The default MTT config record has no zca key: hashes (checkpoints, artifacts) of runs made
    before the option existed are unchanged. Both pins were computed on main before it was added."""
    from harness.methods.experts import ExpertSpec

    m = get_method("mtt")
    off, on = build_config(m), build_config(m, {"zca": "true"})
    assert m.data_space(off) == "normalized" and m.data_space(on) == "zca"
    assert "zca" not in config_record(off) and config_record(on)["zca"] is True
    assert (
        config_hash("mtt", config_record(off))
        == "sha256:8ac9feb5395d9fe392b8ba602a2c4c415cbad467bf1384ca8b01c07591839eb6"
    )
    assert config_hash("mtt", config_record(build_config(m, {"zca": "false"}))) == config_hash(
        "mtt", config_record(off)
    )
    assert (
        ExpertSpec("digits", "convnet", (1, 8, 8), 10, "0" * 64).digest
        == "5690903296a9d9c7f31c522cb0a26109dc50fb7e4aa90dc3828dab5dc7a26d7d"
    )


def test_experts_cli_zca_trains_the_experts_a_zca_run_uses(tmp_path, capsys):
    from harness.methods.experts import spec_for

    argv = ["experts", "digits", "--num-experts", "1", "--epochs", "1", "--augmentation", "none", "-q"]
    code, out_z, err = run_harness([*argv, "--zca"], capsys)
    assert code == 0, err
    code, out_n, err = run_harness(argv, capsys)
    assert code == 0, err
    path, digest = out_z.split()
    assert out_n.split()[1] != digest
    assert json.loads((Path(path) / "config.json").read_text())["pixel_space"] == "zca:kornia-eps0.1:unit"
    assert "pixel_space" not in json.loads((Path(out_n.split()[0]) / "config.json").read_text())
    ctx = load_context(
        CondenseSpec("digits", "mtt", 1, tmp_path, options={"zca": "true"}), torch.device("cpu")
    ).ctx
    spec = spec_for(ctx, num_experts=1, epochs=1, lr=0.01, augmentation="none", seed=0)
    assert digest == f"sha256:{spec.digest}"


def test_init_from_artifacts_in_other_pixel_spaces(tmp_path):
    """A normalized set starts a ZCA run (whitened); a ZCA set starts a normalized run (unwhitened)."""
    from dcregistry.catalog import get_dataset_info
    from harness.data import normalized_space

    ref = digits_artifact(tmp_path / "ref", ipc=1, seed=5)
    art = condense(_zca_spec(tmp_path / "z", init=str(ref.path))).artifact
    md = art.metadata
    assert md["lineage"] == [ref.digest]
    assert md["method_config"]["init"]["converted_from"] == ref.metadata["pixel_space"]
    zca = fit_zca(_unit_train()[0], "kornia-eps0.1")
    want = zca.apply(to_unit(ref.torch("images"), ref.metadata["pixel_space"]))
    assert torch.allclose(art.torch("images"), want, atol=1e-4)

    back = condense(
        CondenseSpec("digits", "mtt", 1, tmp_path / "n", iterations=1, options=FROZEN, init=str(art.path))
    ).artifact
    assert back.metadata["pixel_space"] == normalized_space(get_dataset_info("digits"))
    assert back.metadata["method_config"]["init"]["converted_from"] == ZCA_SPACE
    assert torch.allclose(back.torch("images"), ref.torch("images"), atol=1e-3)  # whitened and back

    same = condense(_zca_spec(tmp_path / "s", init=str(art.path))).artifact  # same ZCA: taken as is
    assert "converted_from" not in same.metadata["method_config"]["init"]
    assert torch.allclose(same.torch("images"), art.torch("images"), atol=1e-5)


def test_bad_zca_combinations_exit_1_with_one_line(tmp_path, capsys):
    # A ZCA that must be refit (no tensors) cannot be mapped back exactly: refused.
    src = digits_artifact(tmp_path / "src", ipc=1, pixel="unit")
    md = {
        k: src.metadata[k]
        for k in (
            "dataset",
            "image_shape",
            "ipc",
            "method",
            "label_kind",
            "seed",
            "class_names",
            "method_config",
        )
    }
    md["pixel_space"] = dict(ZCA_SPACE, transform={"source": "fit", "split": "train"})
    fit_ref = build_artifact(
        tmp_path / "fitref", {"images": src.torch("images"), "labels": src.torch("labels")}, md
    )
    cases = [
        (["--option", "zca=maybe"], "must be true or false"),
        (["--init", str(fit_ref.path), "--option", "zca=true"], "cannot be mapped back"),
        (
            [
                "--option",
                "zca=true",
                "--eval-every",
                "1",
                "--protocol",
                "dcbench-imagenet",
                "--eval-epochs",
                "1",
                "--eval-runs",
                "1",
            ],
            "ZCA",
        ),
    ]
    for i, (extra, expect) in enumerate(cases):
        out = tmp_path / f"out{i}"
        code, _, err = run_harness(_argv(out, SMALL, *extra), capsys)
        assert code == 1 and expect in err and len(err.strip().splitlines()) == 1, (extra, err)
        assert not out.exists() or not any(p.name != ".checkpoint" for p in out.iterdir())
    with pytest.raises(UserError, match="cannot be mapped back"):
        condense(
            CondenseSpec(
                "digits", "mtt", 1, tmp_path / "api", iterations=1, options=FROZEN, init=str(fit_ref.path)
            )
        )


def test_a_killed_zca_run_resumes_to_the_same_artifact(tmp_path, monkeypatch):
    from harness.methods.mtt import MTT

    def spec(out, **kw):
        return _zca_spec(tmp_path / out, options=SMALL, iterations=3, checkpoint_every=1, seed=2, **kw)

    # killed at iteration 2, after the checkpoint at 2
    ref, res = kill_then_resume(monkeypatch, MTT, spec, kill_at=2)
    assert res.metadata["method_config"]["resumed"] is True
    for key in ref.tensor_names:  # the refitted ZCA included
        assert torch.equal(res.torch(key), ref.torch(key)), key
