"""`dcreg export`: pt / npz round-trip through `dcreg import`; png grid; hf-datasets copy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dcregistry.artifact import build_artifact, open_artifact
from dcregistry.formats import export_artifact, import_file, to_unit_images
from dcregistry.formats.safe_torch import safe_torch_load

from .io_helpers import assert_one_line_error, dcreg  # noqa: F401  (dcreg is a fixture)

ROUND_TRIP_FIELDS = (
    "dataset",
    "num_classes",
    "class_names",
    "image_shape",
    "ipc",
    "method",
    "method_config",
    "pixel_space",
    "label_kind",
    "seed",
    "license",
    "lineage",
)


def lr_artifact(tmp_path: Path, soft: bool = True):
    """An MTT/DATM-like artifact: soft labels (or hard) + a learned lr scalar."""
    rng = np.random.default_rng(1)
    tensors = {"images": rng.standard_normal((20, 1, 8, 8)).astype(np.float32), "lr": np.float32(0.02)}
    md = {
        "dataset": "digits",
        "image_shape": [1, 8, 8],
        "ipc": 2,
        "method": "datm",
        "method_config": {"learned_lr": True},
        "label_kind": "soft" if soft else "hard",
        "pixel_space": {"kind": "normalized", "mean": [0.3052], "std": [0.3760]},
        "seed": 4,
        "license": "cc-by-4.0",
        "title": "DATM digits",
    }
    if soft:
        tensors["soft_labels"] = rng.standard_normal((20, 10)).astype(np.float32)
        md["method_config"]["soft_labels"] = "logits"
    else:
        tensors["labels"] = np.repeat(np.arange(10), 2)
    return build_artifact(tmp_path / f"lr-art-{soft}", tensors, md)


def assert_same(a, b) -> None:
    assert a.tensor_names == b.tensor_names
    for name in a.tensor_names:
        x, y = a.numpy(name), b.numpy(name)
        assert x.dtype == y.dtype, name
        assert np.array_equal(x, y), name
    for key in ROUND_TRIP_FIELDS:
        assert a.metadata[key] == b.metadata[key], key
    assert b.metadata["source"]["dcreg_digest"] == a.digest
    assert a.metadata.get("title") == b.metadata.get("title")


@pytest.mark.parametrize("fmt,import_fmt", [("npz", "npz"), ("pt", "dc-pt")])
@pytest.mark.parametrize("kind", ["hard", "soft", "lr-hard"])
def test_round_trip(dcreg, make_artifact, tmp_path, fmt, import_fmt, kind):
    if kind == "hard":
        art = make_artifact(ipc=3, seed=2)
    elif kind == "soft":
        art = make_artifact(ipc=2, soft=True, method="datm")
    else:
        art = lr_artifact(tmp_path, soft=False)
    out = tmp_path / f"set.{fmt}"
    r = dcreg("export", art.path, "--format", fmt, "-o", out)
    assert r.code == 0, r.err
    assert r.out.strip() == str(out)
    r = dcreg("import", out, "--format", import_fmt, "--dataset", "digits", "-o", tmp_path / "back")
    assert r.code == 0, r.err
    assert_same(art, open_artifact(tmp_path / "back"))


def test_round_trip_soft_labels_with_lr_python_api(tmp_path):
    art = lr_artifact(tmp_path, soft=True)
    for fmt, import_fmt in (("npz", "npz"), ("pt", "dc-pt")):
        res = export_artifact(art, fmt, tmp_path / f"x.{fmt}")
        back = import_file(res.path, import_fmt, tmp_path / f"back-{fmt}", dataset="digits")
        assert_same(art, back.artifacts[0])
        assert back.artifacts[0].metadata["method"] == "datm"


def test_pt_is_the_dc_list_format(make_artifact, tmp_path):
    torch = pytest.importorskip("torch")
    art = make_artifact(ipc=2)
    out = export_artifact(art, "pt", tmp_path / "res_RANDOM_digits_ConvNet_2ipc.pt").path
    obj = torch.load(out, map_location="cpu", weights_only=True)  # loads like any DC file
    assert set(obj) >= {"data", "accs_all_exps"} and obj["accs_all_exps"] == {}
    ((images, labels),) = obj["data"]
    assert images.dtype == torch.float32 and list(images.shape) == [20, 1, 8, 8]
    assert labels.dtype == torch.int64 and np.array_equal(labels.numpy(), art.numpy("labels"))
    assert json.loads(obj["dcreg_metadata"])["digest"] == art.digest
    assert isinstance(safe_torch_load(out), dict)


def test_npz_loads_without_pickle(make_artifact, tmp_path):
    art = make_artifact(ipc=1, soft=True)
    out = export_artifact(art, "npz", tmp_path / "a.npz").path
    with np.load(out, allow_pickle=False) as z:
        assert set(z.files) == {"images", "soft_labels", "metadata_json"}
        assert z["images"].shape == (10, 1, 8, 8)
        assert json.loads(str(z["metadata_json"]))["metadata"]["label_kind"] == "soft"


def test_npz_keeps_tensors_named_like_savez_arguments(dcreg, make_artifact, tmp_path):
    """numpy.savez takes arrays as keyword arguments: tensors named file/allow_pickle are kept."""
    base = make_artifact(ipc=1)
    extra = {"file": np.arange(3, dtype=np.float32), "allow_pickle": np.ones((2, 2), dtype=np.int64)}
    tensors = {n: base.numpy(n) for n in base.tensor_names} | extra
    art = build_artifact(tmp_path / "odd", tensors, base.metadata)
    out = export_artifact(art, "npz", tmp_path / "odd.npz").path
    with np.load(out, allow_pickle=False) as z:
        assert set(z.files) == {*base.tensor_names, "file", "allow_pickle", "metadata_json"}
        assert np.array_equal(z["file"], extra["file"]) and z["allow_pickle"].dtype == np.int64
        assert np.array_equal(z["images"], base.numpy("images"))
    # The metadata member's name is taken: such a tensor is refused, in one line, writing nothing.
    clash = build_artifact(
        tmp_path / "clash", tensors | {"metadata_json": np.zeros(1, np.float32)}, base.metadata
    )
    r = dcreg("export", clash.path, "--format", "npz", "-o", tmp_path / "clash.npz")
    assert_one_line_error(r, "metadata_json")
    assert not (tmp_path / "clash.npz").exists()


def test_png_grid(dcreg, make_artifact, tmp_path):
    from PIL import Image

    art = make_artifact(ipc=3)
    sizes = {}
    for per_class in (1, 3, 10):
        out = tmp_path / f"grid{per_class}.png"
        r = dcreg("export", art.path, "--format", "png", "--max-per-class", per_class, "-o", out)
        assert r.code == 0, r.err
        with Image.open(out) as im:
            assert im.format == "PNG" and im.mode == "RGB"
            sizes[per_class] = im.size
    (w1, h1), (w3, h3), (w10, h10) = sizes[1], sizes[3], sizes[10]
    tile = 32 + 2  # 8 px digits upscaled x4 to 32 px, plus padding
    assert h1 == h3 == h10 == 10 * tile + 2  # one row per class
    assert w3 - w1 == 2 * tile and w10 == w3  # only 3 images per class exist
    three = make_artifact(ipc=2, dataset="toyset", class_names=["a", "b", "c"])
    out = tmp_path / "toy.png"
    assert dcreg("export", three.path, "--format", "png", "-o", out).code == 0
    with Image.open(out) as im:
        assert im.size[1] == 3 * tile + 2


def test_png_grid_rgb_and_soft(dcreg, tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    art = build_artifact(
        tmp_path / "rgb",
        {
            "images": rng.random((10, 3, 16, 16), dtype=np.float32),
            "soft_labels": np.eye(10, dtype=np.float32),
        },
        {
            "dataset": "cifar10",
            "image_shape": [3, 16, 16],
            "ipc": 1,
            "method": "datm",
            "pixel_space": {"kind": "unit"},
            "label_kind": "soft",
        },
    )
    r = dcreg("export", art.path, "--format", "png", "-o", tmp_path / "rgb.png")
    assert r.code == 0, r.err
    assert "argmax" in r.err
    with Image.open(tmp_path / "rgb.png") as im:
        assert im.size[1] == 10 * (32 + 2) + 2
        px = np.asarray(im)
    # class 0's only tile (rightmost column, top row) is image 0 upscaled x2 with nearest
    width = px.shape[1]
    tile = px[2:34, width - 36 : width - 4]
    want = np.rint(art.numpy("images")[0] * 255).astype(np.uint8).transpose(1, 2, 0)
    assert np.array_equal(tile, want.repeat(2, axis=0).repeat(2, axis=1))


def test_to_unit_images_per_pixel_space():
    x = np.full((1, 3, 2, 2), 0.5, dtype=np.float32)
    norm = {"kind": "normalized", "mean": [0.1, 0.2, 0.3], "std": [1.0, 2.0, 0.5]}
    out, _ = to_unit_images(x, norm)
    assert np.allclose(out[0, :, 0, 0], [0.6, 1.2, 0.55])
    out, _ = to_unit_images(np.full((1, 1, 2, 2), 255, np.uint8), {"kind": "uint8"})
    assert np.allclose(out, 1.0)
    # ZCA with stored tensors: inverse applied, then the inner space
    d = 12
    rng = np.random.default_rng(0)
    a = rng.standard_normal((d, d)).astype(np.float32)
    w = (a @ a.T + d * np.eye(d)).astype(np.float32)
    mean = rng.random(d).astype(np.float32)
    orig = rng.random((2, d)).astype(np.float32)
    white = (orig - mean) @ w
    zca_ps = {
        "kind": "zca",
        "variant": "kornia-eps0.1",
        "transform": {"source": "tensors"},
        "then": {"kind": "unit"},
    }
    out, notes = to_unit_images(
        white.reshape(2, 3, 2, 2), zca_ps, {"zca_mean": mean, "zca_inverse": np.linalg.inv(w)}
    )
    assert np.allclose(out.reshape(2, d), orig, atol=1e-4) and "inverted" in notes[0]
    fit_ps = dict(zca_ps, transform={"source": "fit", "split": "train"})
    out, notes = to_unit_images(white.reshape(2, 3, 2, 2), fit_ps)
    assert out.min() == 0 and out.max() == 1 and "min-max" in notes[0]


def test_png_zca_without_tensors_says_so(dcreg, make_artifact, tmp_path):
    ps = {
        "kind": "zca",
        "variant": "kip-reg0.1",
        "transform": {"source": "fit", "split": "train"},
        "then": {"kind": "normalized", "mean": [0.3052], "std": [0.376]},
    }
    art = make_artifact(ipc=1, pixel_space=ps, method="kip")
    r = dcreg("export", art.path, "--format", "png", "-o", tmp_path / "z.png")
    assert r.code == 0 and "min-max" in r.err


@pytest.mark.parametrize("soft", [False, True])
def test_hf_datasets_export_loads_back(dcreg, make_artifact, tmp_path, soft):
    datasets = pytest.importorskip("datasets")
    art = make_artifact(ipc=2, soft=soft)
    out = tmp_path / "hf"
    r = dcreg("export", art.path, "--format", "hf-datasets", "-o", out, "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["digest"] == art.digest
    ds = datasets.load_from_disk(str(out))
    assert ds.num_rows == 20
    assert {"image", "label"} <= set(ds.column_names)
    assert ds.features["label"].names == art.metadata["class_names"]
    row = ds[5]
    assert row["image"].size == (8, 8) and row["image"].mode == "L"
    if soft:
        assert "soft_label" in ds.column_names
        soft_labels = np.asarray(ds["soft_label"], dtype=np.float32)
        assert np.array_equal(soft_labels, art.numpy("soft_labels"))
        assert ds["label"] == list(art.numpy("soft_labels").argmax(1))
    else:
        assert ds["label"] == list(art.numpy("labels"))
    meta = json.loads((out / "dcreg_metadata.json").read_text())
    assert meta["digest"] == art.digest and meta["metadata"] == art.metadata
    assert json.loads(ds.info.description)["digest"] == art.digest


def test_export_refusals(dcreg, make_artifact, tmp_path):
    art = make_artifact(ipc=1)
    out = tmp_path / "a.npz"
    assert dcreg("export", art.path, "--format", "npz", "-o", out).code == 0
    before = out.read_bytes()
    assert_one_line_error(dcreg("export", art.path, "--format", "npz", "-o", out), "--overwrite")
    assert out.read_bytes() == before
    assert dcreg("export", art.path, "--format", "npz", "-o", out, "--overwrite").code == 0
    r = dcreg("export", tmp_path / "not-an-artifact", "--format", "npz", "-o", tmp_path / "b.npz")
    assert r.code == 1 and not (tmp_path / "b.npz").exists()
    (tmp_path / "empty").mkdir()
    r = dcreg("export", tmp_path / "empty", "--format", "png", "-o", tmp_path / "c.png")
    assert_one_line_error(r)
    r = dcreg("export", art.path, "--format", "gif", "-o", tmp_path / "d.gif")
    assert r.code == 1
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_export_refuses_tampered_artifact(dcreg, make_artifact, tmp_path):
    art = make_artifact(ipc=1)
    data = art.path / "data.safetensors"
    raw = bytearray(data.read_bytes())
    raw[-1] ^= 0xFF
    data.write_bytes(bytes(raw))
    r = dcreg("export", art.path, "--format", "npz", "-o", tmp_path / "t.npz")
    assert_one_line_error(r, "sha256")
    assert not (tmp_path / "t.npz").exists()


def test_export_by_store_reference(dcreg, dcreg_home, make_artifact, tmp_path):
    """REF may name a version in the local store (resolved by dcregistry.store.open_ref)."""
    import importlib.util

    if importlib.util.find_spec("dcregistry.cli.store_cmds") is None:
        pytest.skip("store commands not available")
    from dcregistry.cli import _register_commands

    _register_commands()
    art = make_artifact(ipc=1)
    r = dcreg("push", art.path, "--name", "test/grid")
    if r.code != 0:
        pytest.skip(f"push unavailable: {r.err.strip()}")
    out = tmp_path / "by-ref.npz"
    r = dcreg("export", "test/grid@v1", "--format", "npz", "-o", out)
    assert r.code == 0, r.err
    with np.load(out, allow_pickle=False) as z:
        assert json.loads(str(z["metadata_json"]))["digest"] == art.digest
    assert_one_line_error(dcreg("export", "test/missing", "--format", "npz", "-o", tmp_path / "m.npz"))


def test_zca_tensors_round_trip_and_view(dcreg, tmp_path):
    """A ZCA artifact carrying its whitening survives npz/pt round trips; png inverts it."""
    rng = np.random.default_rng(2)
    d = 64
    a = rng.standard_normal((d, d)).astype(np.float32)
    w = (a @ a.T / d + np.eye(d)).astype(np.float32)
    zmean = rng.random(d).astype(np.float32)
    unit = rng.random((10, d)).astype(np.float32)
    ps = {
        "kind": "zca",
        "variant": "kornia-eps0.1",
        "transform": {"source": "tensors"},
        "then": {"kind": "unit"},
    }
    art = build_artifact(
        tmp_path / "zca",
        {
            "images": ((unit - zmean) @ w).reshape(10, 1, 8, 8).astype(np.float32),
            "labels": np.arange(10),
            "zca_mean": zmean,
            "zca_matrix": w,
            "zca_inverse": np.linalg.inv(w).astype(np.float32),
        },
        {
            "dataset": "digits",
            "image_shape": [1, 8, 8],
            "ipc": 1,
            "method": "mtt",
            "pixel_space": ps,
            "label_kind": "hard",
        },
    )
    for fmt, import_fmt in (("npz", "npz"), ("pt", "dc-pt")):
        out = tmp_path / f"z.{fmt}"
        assert dcreg("export", art.path, "--format", fmt, "-o", out).code == 0
        r = dcreg(
            "import", out, "--format", import_fmt, "--dataset", "digits", "-o", tmp_path / f"back-{fmt}"
        )
        assert r.code == 0, r.err
        assert_same(art, open_artifact(tmp_path / f"back-{fmt}"))
    r = dcreg("export", art.path, "--format", "png", "-o", tmp_path / "z.png")
    assert r.code == 0 and "min-max" not in r.err
    from dcregistry.formats.grid import artifact_unit_images

    shown, notes = artifact_unit_images(art)
    assert np.allclose(shown.reshape(10, d), unit, atol=1e-4) and "inverted" in notes[0]
