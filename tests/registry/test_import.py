"""`dcreg import`: published formats in the wild -> dcreg/1 artifacts, never unpickling objects."""

from __future__ import annotations

import hashlib
import importlib.util
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dcregistry.artifact import open_artifact
from dcregistry.catalog import get_dataset_info
from dcregistry.errors import ImportFormatError, UnsafeFileError
from dcregistry.formats import ImportOptions, import_file, read_sets

from .io_helpers import (  # noqa: F401  (dcreg is a fixture)
    Payload,
    assert_one_line_error,
    balanced_labels,
    cifar_stats,
    dcreg,
    normalized_images,
    nothing_written,
    write_dc_pt,
    write_mtt_dir,
)

torch = pytest.importorskip("torch")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------- dc-pt


@pytest.fixture
def dsa_file(tmp_path: Path) -> tuple[Path, list]:
    exps = [(normalized_images(10, seed=s), balanced_labels(10, 1)) for s in (1, 2)]
    path = write_dc_pt(tmp_path / "res_DSA_cifar10_ConvNet_1ipc.pt", exps)
    return path, exps


def test_dc_pt_every_experiment_becomes_an_artifact(dcreg, dsa_file, tmp_path):
    path, exps = dsa_file
    r = dcreg(
        "import",
        path,
        "--format",
        "dc-pt",
        "--dataset",
        "cifar10",
        "-o",
        tmp_path / "dsa",
        "--url",
        "https://example.org/res.pt",
        "--license",
        "mit",
    )
    assert r.code == 0, r.err
    lines = r.out.strip().splitlines()
    assert [ln.split()[0] for ln in lines] == [str(tmp_path / "dsa-e0"), str(tmp_path / "dsa-e1")]
    mean, std = cifar_stats()
    for i, line in enumerate(lines):
        art = open_artifact(tmp_path / f"dsa-e{i}")
        assert line.split()[1] == art.digest
        assert np.array_equal(art.numpy("images"), exps[i][0])
        assert np.array_equal(art.numpy("labels"), exps[i][1])
        md = art.metadata
        assert md["method"] == "dsa" and md["ipc"] == 1 and md["label_kind"] == "hard"
        assert md["pixel_space"] == {"kind": "normalized", "mean": mean, "std": std}
        assert md["class_names"][0] == "airplane" and md["num_classes"] == 10
        assert md["method_config"]["model"] == "ConvNet"
        assert md["method_config"]["experiment"] == i
        assert md["method_config"]["reported_accs"] == {"ConvNet": [0.3, 0.31]}
        assert md["license"] == "mit"
        assert md["source"] == {
            "file_name": path.name,
            "sha256": sha256(path),
            "url": "https://example.org/res.pt",
            "format": "dc-pt",
            "experiment": i,
        }
    assert not (tmp_path / "dsa").exists()


def test_dc_pt_exp_selects_one(dcreg, dsa_file, tmp_path):
    path, exps = dsa_file
    r = dcreg(
        "import",
        path,
        "--format",
        "dc-pt",
        "--dataset",
        "cifar10",
        "--exp",
        "1",
        "-o",
        tmp_path / "one",
        "--json",
    )
    assert r.code == 0, r.err
    art = open_artifact(tmp_path / "one")
    assert np.array_equal(art.numpy("images"), exps[1][0])
    assert art.metadata["source"]["experiment"] == 1
    assert not (tmp_path / "one-e0").exists() and not (tmp_path / "one-e1").exists()
    import json

    payload = json.loads(r.out)
    assert payload["artifacts"][0]["digest"] == art.digest
    assert payload["artifacts"][0]["experiment"] == 1


def test_dc_pt_casts_int_labels_and_checks_file_name(tmp_path):
    images = normalized_images(20, shape=(1, 28, 28))
    path = write_dc_pt(
        tmp_path / "res_DC_MNIST_ConvNet_2ipc.pt", [(images, balanced_labels(10, 2))], label_dtype=torch.int32
    )
    res = import_file(path, "dc-pt", tmp_path / "dc", dataset="mnist", seed=7)
    (art,) = res.artifacts
    assert art.path == tmp_path / "dc"  # one experiment: no suffix
    assert art.numpy("labels").dtype == np.int64
    assert art.metadata["method"] == "dc" and art.metadata["seed"] == 7
    with pytest.raises(ImportFormatError, match="file name says dataset MNIST"):
        read_sets(path, "dc-pt", ImportOptions(dataset="fashionmnist"))
    wrong = write_dc_pt(tmp_path / "res_DC_MNIST_ConvNet_10ipc.pt", [(images, balanced_labels(10, 2))])
    with pytest.raises(ImportFormatError, match="says 10 ipc"):
        read_sets(wrong, "dc-pt", ImportOptions(dataset="mnist"))


def test_dc_pt_method_needed_when_name_is_not_dc_style(dcreg, tmp_path):
    path = write_dc_pt(tmp_path / "synset.pt", [(normalized_images(10), balanced_labels(10, 1))])
    r = dcreg("import", path, "--format", "dc-pt", "--dataset", "cifar10", "-o", tmp_path / "x")
    assert_one_line_error(r, "--method")
    assert nothing_written(tmp_path, "x")
    r = dcreg(
        "import",
        path,
        "--format",
        "dc-pt",
        "--dataset",
        "cifar10",
        "--method",
        "dm",
        "--ipc",
        "1",
        "-o",
        tmp_path / "x",
    )
    assert r.code == 0, r.err
    assert open_artifact(tmp_path / "x").metadata["method"] == "dm"


# ------------------------------------------------------------------------------- mtt / datm


def test_mtt_dir_with_hard_labels_and_lr(dcreg, tmp_path):
    images = normalized_images(20)
    labels = balanced_labels(10, 2)
    folder = write_mtt_dir(tmp_path / "mtt_run", images, labels, lr=0.0123)
    for i, given in enumerate([folder, folder / "images_best.pt"]):
        r = dcreg("import", given, "--format", "mtt", "--dataset", "cifar10", "-o", tmp_path / f"m{i}")
        assert r.code == 0, r.err
        art = open_artifact(tmp_path / f"m{i}")
        assert np.array_equal(art.numpy("images"), images)
        assert np.array_equal(art.numpy("labels"), labels)
        lr = art.numpy("lr")
        # One float32 (the writer may store the 0-d scalar as [1]; both are valid dcreg/1).
        assert lr.size == 1 and lr.dtype == np.float32
        assert lr.reshape(-1)[0] == np.float32(0.0123)
        md = art.metadata
        assert md["method"] == "mtt" and md["method_config"]["learned_lr"] is True
        assert md["pixel_space"]["kind"] == "normalized"
        assert set(md["source"]["files"]) == {"images_best.pt", "labels_best.pt", "lr_best.pt"}
        assert md["source"]["sha256"] == sha256(folder / "images_best.pt")
    assert "zca-kornia" in r.err  # the hint about ZCA'd MTT sets


def test_datm_soft_labels_and_zca_kornia(dcreg, tmp_path):
    images = normalized_images(10)
    logits = np.random.default_rng(3).standard_normal((10, 10)).astype(np.float32)
    folder = write_mtt_dir(tmp_path / "datm", images, logits, lr=0.01)
    r = dcreg(
        "import",
        folder,
        "--format",
        "mtt",
        "--dataset",
        "cifar10",
        "--pixel-space",
        "zca-kornia",
        "-o",
        tmp_path / "d",
    )
    assert r.code == 0, r.err
    art = open_artifact(tmp_path / "d")
    assert art.metadata["label_kind"] == "soft" and art.label_key == "soft_labels"
    assert np.array_equal(art.numpy("soft_labels"), logits)
    assert art.metadata["method"] == "datm"
    assert art.metadata["pixel_space"] == {
        "kind": "zca",
        "variant": "kornia-eps0.1",
        "transform": {"source": "fit", "split": "train"},
        "then": {"kind": "unit"},
    }


def test_mtt_without_labels_file_uses_class_major_order(tmp_path):
    images = normalized_images(30)
    folder = write_mtt_dir(tmp_path / "m", images, None, lr=None, tag="5000")
    res = import_file(
        folder / "images_5000.pt",
        "mtt",
        tmp_path / "out",
        dataset="cifar10",
        zca_over="normalized",
        pixel_space="zca-kornia",
    )
    art = res.artifacts[0]
    assert np.array_equal(art.numpy("labels"), np.repeat(np.arange(10), 3))
    assert "class-major" in art.metadata["method_config"]["labels"]
    assert art.metadata["method_config"]["learned_lr"] is False and "lr" not in art.tensor_names
    assert art.metadata["pixel_space"]["then"]["kind"] == "normalized"
    assert any("class-major" in n for n in res.notes)


# ------------------------------------------------------------------------------- npz formats


def test_kip_npz_nhwc_centered_one_hot(dcreg, tmp_path):
    nchw = normalized_images(20)
    labels = balanced_labels(10, 2)
    onehot = np.full((20, 10), -0.1, dtype=np.float32)
    onehot[np.arange(20), labels] = 0.9
    path = tmp_path / "kip_cifar10_zca_2ipc.npz"
    np.savez(path, images=nchw.transpose(0, 2, 3, 1), labels=onehot)
    r = dcreg("import", path, "--format", "kip-npz", "--dataset", "cifar10", "-o", tmp_path / "k")
    assert r.code == 0, r.err
    art = open_artifact(tmp_path / "k")
    assert np.array_equal(art.numpy("images"), nchw)
    assert np.array_equal(art.numpy("labels"), labels)
    md = art.metadata
    mean, std = cifar_stats()
    assert md["method"] == "kip" and md["label_kind"] == "hard"
    assert md["method_config"]["label_encoding"] == {"on": pytest.approx(0.9), "off": pytest.approx(-0.1)}
    assert md["pixel_space"] == {
        "kind": "zca",
        "variant": "kip-reg0.1",
        "transform": {"source": "fit", "split": "train"},
        "then": {"kind": "normalized", "mean": mean, "std": std},
    }


def test_kip_npz_learned_labels_are_soft(tmp_path):
    learned = np.random.default_rng(0).standard_normal((10, 10)).astype(np.float32)
    path = tmp_path / "kip.npz"
    np.savez(path, images=normalized_images(10).transpose(0, 2, 3, 1), labels=learned)
    art = import_file(path, "kip-npz", tmp_path / "k", dataset="cifar10", pixel_space="normalized").artifacts[
        0
    ]
    assert art.metadata["label_kind"] == "soft"
    assert np.array_equal(art.numpy("soft_labels"), learned)
    assert art.metadata["pixel_space"]["kind"] == "normalized"


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_plain_npz_layouts(dcreg, tmp_path, layout):
    nchw = np.random.default_rng(0).random((20, 3, 32, 32), dtype=np.float32)
    labels = balanced_labels(10, 2)
    stored = nchw if layout == "nchw" else nchw.transpose(0, 2, 3, 1)
    path = tmp_path / "set.npz"
    np.savez(path, images=stored, labels=labels.astype(np.int32))
    r = dcreg(
        "import",
        path,
        "--format",
        "npz",
        "--dataset",
        "svhn",
        "--method",
        "random",
        "--seed",
        "3",
        "--title",
        "Random SVHN",
        "-o",
        tmp_path / "n",
    )
    assert r.code == 0, r.err
    art = open_artifact(tmp_path / "n")
    assert np.array_equal(art.numpy("images"), nchw)
    assert np.array_equal(art.numpy("labels"), labels)
    md = art.metadata
    assert md["pixel_space"] == {"kind": "unit"} and md["method"] == "random"
    assert md["seed"] == 3 and md["title"] == "Random SVHN" and md["license"] == "other"


def test_plain_npz_uint8_and_gray_nhw(tmp_path):
    imgs = np.random.default_rng(0).integers(0, 256, (10, 28, 28), dtype=np.uint8)
    path = tmp_path / "u8.npz"
    np.savez(path, images=imgs, labels=np.arange(10))
    art = import_file(path, "npz", tmp_path / "u", dataset="mnist", method="random").artifacts[0]
    assert art.metadata["pixel_space"] == {"kind": "uint8"}
    assert np.array_equal(art.numpy("images"), imgs[:, None])
    with pytest.raises(ImportFormatError, match="pixel space must be uint8"):
        read_sets(path, "npz", ImportOptions(dataset="mnist", method="x", pixel_space="unit"))


# ------------------------------------------------------------------------------- never unpickle


def _assert_refused(r, marker: Path, out: Path) -> None:
    assert_one_line_error(r, "will not be unpickled")
    assert not marker.exists(), "the pickle payload ran"
    assert nothing_written(out.parent, out.name)


@pytest.mark.parametrize("kind", ["zip", "legacy", "raw-pickle"])
def test_malicious_pt_does_not_execute(dcreg, tmp_path, kind):
    marker = tmp_path / "pwned"
    path = tmp_path / "res_DC_cifar10_ConvNet_1ipc.pt"
    obj = {
        "data": [[torch.zeros(10, 3, 32, 32), torch.arange(10)]],
        "accs_all_exps": {},
        "x": Payload(marker),
    }
    if kind == "zip":
        torch.save(obj, path)
    elif kind == "legacy":
        torch.save(obj, path, _use_new_zipfile_serialization=False)
    else:
        path.write_bytes(pickle.dumps(Payload(marker)))
    out = tmp_path / "out" / "evil"
    r = dcreg("import", path, "--format", "dc-pt", "--dataset", "cifar10", "-o", out)
    _assert_refused(r, marker, out)
    assert "system" in r.err and "npz" in r.err  # names the global, says how to convert
    with pytest.raises(UnsafeFileError):
        read_sets(path, "dc-pt", ImportOptions(dataset="cifar10"))
    assert not marker.exists()


def test_malicious_mtt_files_do_not_execute(dcreg, tmp_path):
    marker = tmp_path / "pwned"
    folder = write_mtt_dir(tmp_path / "run", normalized_images(10), balanced_labels(10, 1), None)
    torch.save(Payload(marker), folder / "lr_best.pt")
    out = tmp_path / "m"
    r = dcreg("import", folder, "--format", "mtt", "--dataset", "cifar10", "-o", out)
    _assert_refused(r, marker, out)


def test_npz_object_array_and_pickle_refused(dcreg, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    obj = np.empty(1, dtype=object)
    obj[0] = Payload(marker)
    np.savez(path, images=obj, labels=np.arange(10))
    for fmt in ("npz", "kip-npz"):
        out = tmp_path / f"o-{fmt}"
        r = dcreg("import", path, "--format", fmt, "--dataset", "cifar10", "--method", "x", "-o", out)
        _assert_refused(r, marker, out)
    fake = tmp_path / "fake.npz"
    fake.write_bytes(pickle.dumps(Payload(marker)))
    r = dcreg(
        "import", fake, "--format", "npz", "--dataset", "cifar10", "--method", "x", "-o", tmp_path / "f"
    )
    _assert_refused(r, marker, tmp_path / "f")


def test_console_script_refuses_malicious_pickle(tmp_path):
    """End to end through the installed entry point, in a fresh process."""
    marker = tmp_path / "pwned"
    path = tmp_path / "res_DC_cifar10_ConvNet_1ipc.pt"
    torch.save({"data": Payload(marker)}, path)
    script = Path(sys.executable).with_name("dcreg")
    if script.exists() and importlib.util.find_spec("dcregistry.cli.store_cmds"):
        cmd = [str(script)]
    else:  # the store commands are not there yet: run the same entry code with io_cmds only
        cmd = [
            sys.executable,
            "-c",
            "import sys; from dcregistry.cli import cli, io_cmds; "
            "from dcregistry.cli.common import run_cli; "
            "sys.exit(run_cli(cli, 'dcreg', sys.argv[1:]))",
        ]
    proc = subprocess.run(
        [*cmd, "import", str(path), "--format", "dc-pt", "--dataset", "cifar10", "-o", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("\n") == 1 and "will not be unpickled" in proc.stderr
    assert not marker.exists() and not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------- bad input


def _npz(tmp_path: Path, name: str, **arrays) -> Path:
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    "case,needle",
    [
        ("nan", "NaN"),
        ("missing-labels", "has no 'labels'"),
        ("wrong-channels", "channel"),
        ("unbalanced", "not class-balanced"),
        ("out-of-range", "classes 0..9"),
        ("ipc-mismatch", "ipc 3 was given"),
        ("label-count", "labels for"),
        ("rank", "expected [N, C, H, W]"),
    ],
)
def test_bad_npz_inputs(dcreg, tmp_path, case, needle):
    images = normalized_images(20)
    labels = balanced_labels(10, 2)
    extra = []
    if case == "nan":
        images[3, 0, 0, 0] = np.nan
        arrays = dict(images=images, labels=labels)
    elif case == "missing-labels":
        arrays = dict(images=images)
    elif case == "wrong-channels":
        arrays = dict(images=normalized_images(20, shape=(2, 32, 32)), labels=labels)
    elif case == "unbalanced":
        labels[0] = 1
        arrays = dict(images=images, labels=labels)
    elif case == "out-of-range":
        labels[0] = 10
        arrays = dict(images=images, labels=labels)
    elif case == "ipc-mismatch":
        arrays = dict(images=images, labels=labels)
        extra = ["--ipc", "3"]
    elif case == "label-count":
        arrays = dict(images=images, labels=labels[:10])
    else:
        arrays = dict(images=images[:, 0, 0], labels=labels)
    path = _npz(tmp_path, "bad.npz", **arrays)
    out = tmp_path / "out"
    r = dcreg(
        "import", path, "--format", "npz", "--dataset", "cifar10", "--method", "random", *extra, "-o", out
    )
    assert_one_line_error(r, needle)
    assert nothing_written(tmp_path, "out")


def test_bad_dc_pt_and_options(dcreg, tmp_path):
    mtt_like = tmp_path / "res_DC_cifar10_ConvNet_1ipc.pt"
    torch.save(torch.zeros(10, 3, 32, 32), mtt_like)
    r = dcreg("import", mtt_like, "--format", "dc-pt", "--dataset", "cifar10", "-o", tmp_path / "a")
    assert_one_line_error(r, "expected the DC layout")
    two = write_dc_pt(
        tmp_path / "res_DM_cifar10_ConvNet_1ipc.pt", [(normalized_images(10), balanced_labels(10, 1))] * 2
    )
    r = dcreg("import", two, "--format", "dc-pt", "--dataset", "cifar10", "--exp", "5", "-o", tmp_path / "b")
    assert_one_line_error(r, "experiment 5 is out of range", "(--exp)")
    r = dcreg("import", two, "--format", "dc-pt", "--dataset", "imagenet-x", "-o", tmp_path / "c")
    assert_one_line_error(r, "unknown dataset")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file at all")
    r = dcreg(
        "import", garbage, "--format", "dc-pt", "--dataset", "cifar10", "--method", "dc", "-o", tmp_path / "d"
    )
    assert_one_line_error(r, "not a PyTorch file")
    r = dcreg(
        "import", tmp_path / "missing.pt", "--format", "dc-pt", "--dataset", "cifar10", "-o", tmp_path / "e"
    )
    assert r.code == 1
    for name in "abcde":
        assert nothing_written(tmp_path, name)


def test_nan_in_second_experiment_writes_nothing(dcreg, tmp_path):
    bad = normalized_images(10, seed=5)
    bad[0, 0, 0, 0] = np.inf
    good = (normalized_images(10), balanced_labels(10, 1))
    path = write_dc_pt(tmp_path / "res_DSA_cifar10_ConvNet_1ipc.pt", [good, (bad, balanced_labels(10, 1))])
    r = dcreg("import", path, "--format", "dc-pt", "--dataset", "cifar10", "-o", tmp_path / "o")
    assert_one_line_error(r, "experiment 1", "NaN or Inf")
    assert nothing_written(tmp_path, "o")


def test_existing_output_needs_overwrite(dcreg, tmp_path):
    path = _npz(tmp_path, "s.npz", images=normalized_images(10), labels=balanced_labels(10, 1))
    args = [
        "import",
        path,
        "--format",
        "npz",
        "--dataset",
        "cifar10",
        "--method",
        "random",
        "-o",
        tmp_path / "o",
    ]
    assert dcreg(*args).code == 0
    first = open_artifact(tmp_path / "o").digest
    assert_one_line_error(dcreg(*args), "--overwrite")
    r = dcreg(*args, "--overwrite", "--seed", "1")
    assert r.code == 0, r.err
    art = open_artifact(tmp_path / "o")
    assert art.digest != first and art.metadata["seed"] == 1
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_dataset_info_fills_class_names(tmp_path):
    path = _npz(tmp_path, "f.npz", images=normalized_images(10, shape=(1, 28, 28)), labels=np.arange(10))
    art = import_file(
        path, "npz", tmp_path / "f", dataset="FashionMNIST", method="random", pixel_space="normalized"
    ).artifacts[0]
    info = get_dataset_info("fashionmnist")
    assert art.metadata["class_names"] == list(info.class_names)
    assert art.metadata["pixel_space"]["mean"] == list(info.mean)
