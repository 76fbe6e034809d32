"""dcreg/1 artifact format: build, load, digest, and every validation rule."""

from __future__ import annotations

import json
import struct
import subprocess
import sys

import numpy as np
import pytest

from dcregistry.artifact import DATA_FILE, MANIFEST_FILE, build_artifact, manifest_digest, open_artifact
from dcregistry.errors import IntegrityError, MetadataError, SafetensorsFormatError, TensorError, UserError
from dcregistry.safetensors_io import MAX_HEADER_BYTES, read_header
from tests.conftest import artifact_metadata, artifact_tensors


def test_build_then_open_round_trips(make_artifact):
    art = make_artifact(ipc=3, seed=4)
    again = open_artifact(art.path)
    assert again.digest == art.digest
    assert again.digest == manifest_digest(json.loads((art.path / MANIFEST_FILE).read_text()))
    np.testing.assert_array_equal(again.numpy("images"), artifact_tensors(ipc=3, seed=4)["images"])
    assert again.numpy("labels").dtype == np.int64
    assert sorted(p.name for p in art.path.iterdir()) == ["README.md", DATA_FILE, MANIFEST_FILE]


def test_artifact_files_get_the_umask_mode_not_safetensors_0600(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        a = build_artifact(tmp_path / "a", artifact_tensors(), artifact_metadata())
        os.umask(0o077)
        b = build_artifact(tmp_path / "b", artifact_tensors(), artifact_metadata())
    finally:
        os.umask(old)
    assert stat.S_IMODE(a.path.stat().st_mode) == 0o755 and stat.S_IMODE(b.path.stat().st_mode) == 0o700
    for name in (DATA_FILE, MANIFEST_FILE, "README.md"):
        assert stat.S_IMODE((a.path / name).stat().st_mode) == 0o644, name
        assert stat.S_IMODE((b.path / name).stat().st_mode) == 0o600, name


def test_same_content_gives_same_digest(tmp_path):
    a = build_artifact(tmp_path / "a", artifact_tensors(), artifact_metadata())
    b = build_artifact(tmp_path / "b", artifact_tensors(), artifact_metadata())
    c = build_artifact(tmp_path / "c", artifact_tensors(seed=1), artifact_metadata())
    assert a.digest == b.digest != c.digest
    assert (a.path / DATA_FILE).read_bytes() == (b.path / DATA_FILE).read_bytes()


def test_safetensors_metadata_has_one_key(make_artifact):
    header = read_header(make_artifact().path / DATA_FILE)
    assert list(header.metadata) == ["dcreg"]


def test_registry_paths_do_not_import_torch(tmp_path):
    code = (
        "import sys, numpy as np; from dcregistry.artifact import build_artifact, open_artifact;"
        "from tests.conftest import artifact_tensors, artifact_metadata;"
        f"a = build_artifact(r'{tmp_path / 'x'}', artifact_tensors(), artifact_metadata());"
        "open_artifact(a.path).numpy('images'); assert 'torch' not in sys.modules, 'torch'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_soft_labels_and_lr(tmp_path):
    t = artifact_tensors(soft=True)
    t["lr"] = np.array(0.02, dtype=np.float32)
    art = build_artifact(
        tmp_path / "s", t, artifact_metadata(label_kind="soft", method_config={"learned_lr": True})
    )
    assert open_artifact(art.path).label_key == "soft_labels"


def test_bfloat16_images_via_torch(tmp_path):
    torch = pytest.importorskip("torch")
    t = artifact_tensors()
    t["images"] = torch.from_numpy(t["images"]).to(torch.bfloat16)
    t["labels"] = torch.from_numpy(t["labels"])
    art = build_artifact(tmp_path / "bf", t, artifact_metadata())
    again = open_artifact(art.path)
    assert again.reader.tensors["images"].dtype == "BF16"
    assert again.torch("images").dtype == torch.bfloat16
    np.testing.assert_array_equal(again.numpy("images"), t["images"].float().numpy())


@pytest.mark.parametrize(
    "change, error, field",
    [
        (lambda t, m: m.pop("dataset"), MetadataError, "metadata.dataset"),
        (lambda t, m: m.update(ipc="ten"), MetadataError, "metadata.ipc"),
        (lambda t, m: m.update(class_names=["a"] * 10), MetadataError, "metadata.class_names"),
        (lambda t, m: m.update(num_classes=7), MetadataError, "metadata.class_names"),
        (
            lambda t, m: m.update(pixel_space={"kind": "normalized", "mean": [0.1, 0.2], "std": [1, 1]}),
            MetadataError,
            "metadata.pixel_space.mean",
        ),
        (lambda t, m: m.update(pixel_space={"kind": "weird"}), MetadataError, "metadata.pixel_space"),
        (lambda t, m: m.update(lineage=["not-a-digest"]), MetadataError, "metadata.lineage"),
        (lambda t, m: m.update(created_at="yesterday"), MetadataError, "metadata.created_at"),
        (lambda t, m: m.update(dataset="CIFAR 10"), MetadataError, "metadata.dataset"),
        (lambda t, m: t.update(images=t["images"][:, :, :4]), TensorError, "images"),
        (lambda t, m: t.update(images=t["images"][0]), TensorError, "images"),
        (lambda t, m: t.update(images=t["images"].astype(np.float64)), TensorError, "images"),
        (lambda t, m: t["images"].__setitem__((0, 0, 0, 0), np.nan), TensorError, "images"),
        (lambda t, m: t["images"].__setitem__((1, 0, 2, 2), np.inf), TensorError, "images"),
        (lambda t, m: t["labels"].__setitem__(0, 10), TensorError, "labels"),
        (lambda t, m: t["labels"].__setitem__(0, -1), TensorError, "labels"),
        (lambda t, m: t["labels"].__setitem__(0, 5), TensorError, "labels"),  # unbalanced
        (lambda t, m: t.update(labels=t["labels"].astype(np.int32)), TensorError, "labels"),
        (lambda t, m: t.pop("labels"), TensorError, "labels"),
        (lambda t, m: t.update(soft_labels=np.zeros((20, 10), np.float32)), TensorError, "labels"),
        (lambda t, m: m.update(label_kind="soft"), MetadataError, "metadata.label_kind"),
        (lambda t, m: t.update(lr=np.array([1.0, 2.0], np.float32)), TensorError, "lr"),
        (lambda t, m: t.update(lr=np.array(-1.0, np.float32)), TensorError, "lr"),
        (lambda t, m: t.update(images=(t["images"] * 0).astype(np.uint8)), TensorError, "images"),
        (lambda t, m: m.update(ipc=3), TensorError, "images"),
        (lambda t, m: t.update(BadName=t["labels"]), TensorError, "tensor 'BadName'"),
    ],
)
def test_invalid_artifacts_are_refused_with_named_field(tmp_path, change, error, field):
    t, m = artifact_tensors(), artifact_metadata()
    change(t, m)
    with pytest.raises(error) as info:
        build_artifact(tmp_path / "bad", t, m)
    assert str(info.value).startswith(field), str(info.value)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "bad").exists()
    assert not any(p.name.startswith(".dcreg-build") for p in tmp_path.iterdir())


def test_build_refuses_non_empty_target(make_artifact, tmp_path):
    art = make_artifact()
    with pytest.raises(UserError):
        build_artifact(art.path, artifact_tensors(seed=9), artifact_metadata())
    assert open_artifact(art.path).digest == art.digest


def test_tampered_file_is_detected(make_artifact):
    art = make_artifact()
    data = bytearray((art.path / DATA_FILE).read_bytes())
    data[-1] ^= 0xFF
    (art.path / DATA_FILE).write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="data.safetensors"):
        open_artifact(art.path)


def test_edited_manifest_metadata_is_detected(make_artifact):
    art = make_artifact()
    manifest = json.loads((art.path / MANIFEST_FILE).read_text())
    manifest["metadata"]["license"] = "mit"
    (art.path / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(MetadataError, match="differs"):
        open_artifact(art.path)


def _rewrite_header(path, header: dict, data: bytes) -> None:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)


def test_hostile_safetensors_headers(tmp_path):
    p = tmp_path / "x.safetensors"
    p.write_bytes(struct.pack("<Q", MAX_HEADER_BYTES + 1) + b"{}")
    with pytest.raises(SafetensorsFormatError, match="cap"):
        read_header(p)
    p.write_bytes(struct.pack("<Q", 100) + b"{}")
    with pytest.raises(SafetensorsFormatError, match="past the end"):
        read_header(p)
    _rewrite_header(
        p,
        {
            "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
            "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
        },
        b"\0" * 12,
    )
    with pytest.raises(SafetensorsFormatError, match="overlap"):
        read_header(p)
    _rewrite_header(p, {"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 12)
    with pytest.raises(SafetensorsFormatError, match="byte span"):
        read_header(p)
    _rewrite_header(p, {"a": {"dtype": "OBJ", "shape": [1], "data_offsets": [0, 1]}}, b"\0")
    with pytest.raises(SafetensorsFormatError, match="dtype"):
        read_header(p)
    _rewrite_header(p, {"a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}}, b"\0" * 5)
    with pytest.raises(SafetensorsFormatError, match="trailing"):
        read_header(p)
    p.write_bytes(struct.pack("<Q", 4) + b"nope")
    with pytest.raises(SafetensorsFormatError, match="JSON"):
        read_header(p)


def test_scalar_lr_stays_scalar_and_dir_is_ordinary(tmp_path):
    t = artifact_tensors()
    t["lr"] = np.array(0.01, dtype=np.float32)
    art = build_artifact(tmp_path / "lr", t, artifact_metadata())
    assert art.reader.tensors["lr"].shape == ()
    assert (art.path.stat().st_mode & 0o755) == 0o755
