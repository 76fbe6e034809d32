"""Artifact metadata: the JSON schema (shipped in ``cards/``) plus the checks a schema can't say."""

from __future__ import annotations

import datetime as _dt
import functools
import json
import subprocess
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .catalog import DATASETS
from .errors import MetadataError
from .pixelspace import PixelSpace

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

REQUIRED_FIELDS = (
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
    "created_at",
    "producer",
    "source",
    "lineage",
    "license",
)


@functools.lru_cache(maxsize=1)
def metadata_schema() -> dict[str, Any]:
    """The dcreg/1 metadata JSON schema shipped in ``cards/metadata.schema.json``."""
    text = resources.files("dcregistry.cards").joinpath("metadata.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)  # the shipped file holds one JSON object
    return schema


@functools.lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    import jsonschema

    return jsonschema.Draft202012Validator(metadata_schema())


def _path(error: ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    return "metadata." + ".".join(parts) if parts else "metadata"


def validate_metadata(md: Any) -> None:
    """Raise MetadataError naming the first bad field if ``md`` breaks the dcreg/1 contract."""
    if not isinstance(md, Mapping):
        raise MetadataError("metadata", "must be a JSON object")
    # Wrong values first (a bad dataset name explains a missing num_classes), then missing fields.
    errors = sorted(
        (e for e in _validator().iter_errors(dict(md)) if e.validator != "required" or e.absolute_path),
        key=lambda e: list(e.absolute_path),
    )
    missing = [f for f in REQUIRED_FIELDS if f not in md]
    if missing and not errors:
        raise MetadataError(
            f"metadata.{missing[0]}",
            "is required but missing",
            f"add it; required fields: {', '.join(REQUIRED_FIELDS)}",
        )
    if errors:
        err = errors[0]
        # oneOf failures are unreadable; point at the field and say what it must be instead.
        msg = err.message if err.validator != "oneOf" else "does not match any allowed form"
        if len(msg) > 200:
            msg = msg[:200] + "..."
        raise MetadataError(
            _path(err), msg, _SCHEMA_HINTS.get(_path(err).split(".")[1] if "." in _path(err) else "", None)
        )
    _check_semantics(md)


_SCHEMA_HINTS = {
    "pixel_space": 'use {"kind":"normalized","mean":[..],"std":[..]}, {"kind":"unit"}, '
    '{"kind":"uint8"} or {"kind":"zca","variant":..,"transform":..,"then":..}',
    "created_at": "use UTC ISO 8601 like 2026-01-31T12:00:00Z",
    "lineage": 'list parent digests as "sha256:<64 hex>"',
    "dataset": "lowercase letters, digits, '.', '_' or '-'",
    "method": "lowercase letters, digits, '.', '_' or '-'",
}


def _check_semantics(md: Mapping[str, Any]) -> None:
    c = md["image_shape"][0]
    if len(md["class_names"]) != md["num_classes"]:
        raise MetadataError(
            "metadata.class_names",
            f"has {len(md['class_names'])} names for {md['num_classes']} classes",
            "give exactly one name per class, in label order",
        )
    known = DATASETS.get(md["dataset"])
    if known is not None:
        if known.num_classes != md["num_classes"]:
            raise MetadataError(
                "metadata.num_classes",
                f"{md['dataset']} has {known.num_classes} classes, not {md['num_classes']}",
            )
        if known.channels != c:
            raise MetadataError(
                "metadata.image_shape", f"{md['dataset']} images have {known.channels} channel(s), not {c}"
            )
    if md["label_kind"] == "hard" and md["method_config"].get("soft_labels"):
        raise MetadataError("metadata.label_kind", "is hard but method_config says soft_labels")
    # The one pixel-space type: one mean/std per channel, ZCA only over normalized/unit.
    PixelSpace.parse(md["pixel_space"], c, "metadata.pixel_space", MetadataError)


def utc_now() -> str:
    """Current UTC time in the metadata's ISO 8601 form (second precision)."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


@functools.lru_cache(maxsize=1)
def _git_revision() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def default_producer(package: str = "dcregistry", version: str = __version__) -> dict[str, Any]:
    """The ``producer`` block for artifacts made by this installation."""
    return {"package": package, "version": version, "git_revision": _git_revision()}


def with_defaults(md: Mapping[str, Any]) -> dict[str, Any]:
    """Fill the fields that have a sensible default (created_at, producer, source, lineage...)."""
    out = dict(md)
    out.setdefault("method_config", {})
    out.setdefault("seed", None)
    out.setdefault("created_at", utc_now())
    out.setdefault("producer", default_producer())
    out.setdefault("source", None)
    out.setdefault("lineage", [])
    out.setdefault("license", "other")
    if "class_names" not in out and out.get("dataset") in DATASETS:
        out["class_names"] = DATASETS[out["dataset"]].class_names_or_default()
    if "num_classes" not in out and "class_names" in out:
        out["num_classes"] = len(out["class_names"])
    return out
