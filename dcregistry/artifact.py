"""The ``dcreg/1`` artifact: ``data.safetensors`` + ``README.md`` card + ``manifest.json``.

The version digest is the sha256 of the canonical manifest, and the manifest holds the sha256 and
size of every other file, so one digest pins every byte. Building writes into a temporary
directory and renames it into place, validating the written files through the same reader that
loading uses, so what is built is exactly what will load.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .canonical import canonical_json
from .card import render_card
from .errors import (
    JSONFormatError,
    MetadataError,
    OutputExistsError,
    SafetensorsFormatError,
    TensorError,
    UserError,
)
from .fsio import check_output_path, staged_dir
from .jsonsafe import loads_bounded
from .manifest import (
    CARD_FILE,
    DATA_FILE,
    Manifest,
    is_artifact_dir,
    make_manifest,
    manifest_bytes,
    verify_files,
)

# Also re-exported: callers imported these from here before dcregistry.manifest existed.
from .manifest import FORMAT as FORMAT
from .manifest import MANIFEST_FILE as MANIFEST_FILE
from .manifest import MAX_MANIFEST_BYTES as MAX_MANIFEST_BYTES
from .manifest import REQUIRED_FILES as REQUIRED_FILES
from .manifest import check_manifest_shape as check_manifest_shape
from .manifest import manifest_digest as manifest_digest
from .manifest import read_manifest as read_manifest
from .metadata import validate_metadata, with_defaults
from .safetensors_io import FLOAT_DTYPES, METADATA_KEY, SafetensorsReader, write_safetensors

IMAGE_DTYPES = {"F32", "F16", "BF16", "U8"}
_TENSOR_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")


class Artifact:
    """A dcreg/1 artifact directory, opened lazily (tensors are memory-mapped on first use)."""

    def __init__(self, path: str | Path, manifest: Manifest):
        self.path = Path(path)
        self.manifest: Manifest = {**manifest}
        self._reader: SafetensorsReader | None = None

    @property
    def metadata(self) -> dict[str, Any]:
        return self.manifest["metadata"]

    @property
    def digest(self) -> str:
        return manifest_digest(self.manifest)

    @property
    def reader(self) -> SafetensorsReader:
        if self._reader is None:
            self._reader = SafetensorsReader(self.path / DATA_FILE)
        return self._reader

    @property
    def tensor_names(self) -> list[str]:
        return sorted(self.reader.tensors)

    @property
    def num_images(self) -> int:
        return self.reader.tensors["images"].shape[0]

    @property
    def label_key(self) -> str:
        return "soft_labels" if self.metadata["label_kind"] == "soft" else "labels"

    def numpy(self, name: str) -> np.ndarray:
        """Tensor ``name`` as a read-only memory-mapped numpy array (bfloat16 widened)."""
        self._check_name(name)
        return self.reader.numpy(name)

    def torch(self, name: str) -> Any:  # a torch.Tensor (torch is optional: not imported to type it)
        """Tensor ``name`` as a torch tensor with its stored dtype (imports torch)."""
        self._check_name(name)
        from safetensors import safe_open

        with safe_open(str(self.path / DATA_FILE), framework="pt") as f:
            return f.get_tensor(name)

    def tensors(self) -> dict[str, np.ndarray]:
        """Every tensor as numpy (memory-mapped)."""
        return {n: self.reader.numpy(n) for n in self.tensor_names}

    def card_text(self) -> str:
        """The README.md card stored in this version."""
        return (self.path / CARD_FILE).read_text(encoding="utf-8")

    def _check_name(self, name: str) -> None:
        if name not in self.reader.tensors:
            raise UserError(f"artifact has no tensor {name!r} (it has {', '.join(self.tensor_names)})")

    def __repr__(self) -> str:
        md = self.metadata
        return f"Artifact({md['method']} {md['dataset']} ipc={md['ipc']} {self.digest[:19]} at {self.path})"


def validate_tensors(reader: SafetensorsReader, md: Mapping[str, Any]) -> None:
    """Check tensors against metadata: shapes, dtypes, label range/balance, finiteness."""
    t = reader.tensors
    c, h, w = md["image_shape"]
    n = md["ipc"] * md["num_classes"]
    k = md["num_classes"]
    meta = reader.header.metadata
    if set(meta) != {METADATA_KEY}:
        raise SafetensorsFormatError("data.safetensors", "__metadata__ must hold exactly one key, 'dcreg'")
    try:
        embedded = loads_bounded(meta[METADATA_KEY], "data.safetensors __metadata__.dcreg")
    except JSONFormatError as exc:
        raise SafetensorsFormatError("data.safetensors", f"__metadata__.dcreg {exc.problem}") from None
    if embedded != dict(md):
        raise MetadataError(
            "metadata",
            "differs between manifest.json and data.safetensors",
            "the artifact was edited by hand; rebuild it",
        )
    for name in t:
        if not _TENSOR_NAME_RE.fullmatch(name):
            raise TensorError(f"tensor {name!r}", "bad tensor name", "use lowercase [a-z0-9_]")
    if "images" not in t:
        raise TensorError("images", "tensor is missing")
    img = t["images"]
    if len(img.shape) != 4:
        raise TensorError("images", f"has rank {len(img.shape)}, expected [N, C, H, W]")
    if img.dtype not in IMAGE_DTYPES:
        raise TensorError(
            "images", f"dtype {img.dtype} not allowed", "use float32, float16, bfloat16 or uint8"
        )
    if list(img.shape[1:]) != [c, h, w]:
        raise TensorError("images", f"shape {list(img.shape)} does not match image_shape {[c, h, w]}")
    if img.shape[0] != n:
        raise TensorError(
            "images",
            f"has {img.shape[0]} images but ipc x num_classes = {n}",
            "fix ipc or the number of images",
        )
    if (img.dtype == "U8") != (md["pixel_space"]["kind"] == "uint8"):
        raise TensorError(
            "images",
            f"dtype {img.dtype} does not fit pixel_space {md['pixel_space']['kind']!r}",
            "uint8 images go with kind 'uint8'",
        )
    has_hard, has_soft = "labels" in t, "soft_labels" in t
    if has_hard == has_soft:
        raise TensorError("labels", "need exactly one of 'labels' [N] int64 or 'soft_labels' [N, K]")
    if has_hard != (md["label_kind"] == "hard"):
        raise MetadataError(
            "metadata.label_kind",
            f"is {md['label_kind']!r} but the tensors hold {'labels' if has_hard else 'soft_labels'}",
        )
    if has_hard:
        lab = t["labels"]
        if lab.dtype != "I64" or lab.shape != (n,):
            raise TensorError("labels", f"is {lab.dtype} {list(lab.shape)}, expected int64 [{n}]")
        values = reader.numpy("labels")
        if values.size and (values.min() < 0 or values.max() >= k):
            raise TensorError(
                "labels", f"values must lie in [0, {k}); found [{values.min()}, {values.max()}]"
            )
        counts = np.bincount(values, minlength=k)
        if not (counts == md["ipc"]).all():
            bad = int(np.flatnonzero(counts != md["ipc"])[0])
            raise TensorError(
                "labels",
                f"class {bad} has {counts[bad]} images, ipc says {md['ipc']}",
                "every class needs exactly ipc images",
            )
    else:
        soft = t["soft_labels"]
        if soft.dtype not in FLOAT_DTYPES or soft.shape != (n, k):
            raise TensorError("soft_labels", f"is {soft.dtype} {list(soft.shape)}, expected float [{n}, {k}]")
    if "lr" in t:
        lr = t["lr"]
        if lr.dtype not in FLOAT_DTYPES or lr.numel != 1:
            raise TensorError("lr", "must be one float (the learned learning rate)")
        val = float(reader.numpy("lr").reshape(-1)[0])
        if not np.isfinite(val) or val <= 0:
            raise TensorError("lr", f"must be a finite positive float, got {val}")
    ps = md["pixel_space"]
    if ps["kind"] == "zca" and ps["transform"]["source"] == "tensors":
        d = c * h * w
        want = {"zca_mean": (d,), "zca_matrix": (d, d), "zca_inverse": (d, d)}
        for name, shape in want.items():
            if name not in t or t[name].shape != shape or t[name].dtype not in FLOAT_DTYPES:
                raise TensorError(
                    name, f"ZCA pixel space with source 'tensors' needs float {name} of shape {list(shape)}"
                )
    for name in t:
        if not reader.all_finite(name):
            raise TensorError(name, "contains NaN or Inf", "the set diverged; do not publish it")


def open_artifact(path: str | Path, *, verify: bool = True) -> Artifact:
    """Open and validate the artifact at ``path``; ``verify`` also re-hashes every file."""
    path = Path(path)
    manifest = read_manifest(path)
    if verify:
        verify_files(path, manifest)
    validate_metadata(manifest["metadata"])
    art = Artifact(path, manifest)
    validate_tensors(art.reader, manifest["metadata"])
    return art


load_artifact = open_artifact


def build_artifact(
    out_dir: str | Path,
    tensors: Mapping[str, Any],
    metadata: Mapping[str, Any],
    *,
    overwrite: bool = False,
    results: Sequence[Mapping[str, Any]] = (),
    replace_ok: Callable[[Path], bool] = is_artifact_dir,
) -> Artifact:
    """Write a validated artifact to ``out_dir`` from tensors (numpy/torch) and metadata.

    With ``overwrite`` an existing ``out_dir`` is replaced only when ``replace_ok(out_dir)``
    (default: it is an artifact directory).
    Missing optional metadata (created_at, producer, lineage, ...) gets defaults. Nothing is
    left at ``out_dir`` if validation fails.
    """
    out_dir = Path(out_dir)
    md = with_defaults(metadata)
    validate_metadata(md)
    check_output_path(out_dir)
    taken = out_dir.is_symlink() or (
        out_dir.exists() and not (out_dir.is_dir() and not any(out_dir.iterdir()))
    )
    if taken and not overwrite:
        raise OutputExistsError(
            f"{out_dir} exists and is not empty; choose another output directory or allow overwriting"
        )
    # Staged: written and validated in a temp directory next to out_dir, then renamed into
    # place; with overwrite only what replace_ok accepts is ever replaced.
    with staged_dir(out_dir, overwrite=overwrite, replace_ok=replace_ok) as tmp:
        write_safetensors(tmp / DATA_FILE, tensors, canonical_json(md).decode("utf-8"))
        validate_tensors(SafetensorsReader(tmp / DATA_FILE), md)
        _write_text(tmp / CARD_FILE, render_card(md, results))
        manifest = make_manifest(md, tmp)
        _write_bytes(tmp / MANIFEST_FILE, manifest_bytes(manifest))
    return Artifact(out_dir, manifest)


def _write_text(path: Path, text: str) -> None:
    _write_bytes(path, text.encode("utf-8"))


def _write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
