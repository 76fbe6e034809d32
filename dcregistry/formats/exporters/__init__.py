"""Exporters: a dcreg/1 artifact -> ``pt`` (the DC list format), ``npz``, ``png`` (labelled
grid) or ``hf-datasets`` (a ``datasets.Dataset`` saved to disk).

``pt`` and ``npz`` keep the stored tensors exactly and embed the dcreg metadata (``dcreg_metadata``
/ ``metadata_json``, a JSON string ``{"format", "digest", "metadata"}``) so that
``dcreg import --format dc-pt`` / ``--format npz`` gives back the same tensors and metadata.
Every output is written to a temporary path next to ``OUT`` and renamed into place.
Torch (``pt``), PIL (``png``) and ``datasets`` (``hf-datasets``) are imported on use.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import OutputExistsError, UserError
from ...fsio import check_output_path, staged_dir, staged_file
from ...registry import Registry
from ..paths import require_utf8

if TYPE_CHECKING:
    from ...artifact import Artifact

#: Format name -> module of this package that registers its writer (imported on first use).
EXPORT_MODULES = {"pt": "pt", "npz": "npz", "png": "png", "hf-datasets": "hf_datasets"}
#: Format name -> writer(artifact, out_path, **options) -> notes (the options differ by format).
EXPORTERS: Registry[Callable[..., list[str]]] = Registry(
    "export format", lazy=EXPORT_MODULES, package=__name__
)
EXPORT_FORMATS = tuple(EXPORTERS.names())
#: Formats whose output is a directory (the others write one file).
DIRECTORY_FORMATS = ("hf-datasets",)
HF_METADATA_FILE = "dcreg_metadata.json"
LABEL_KEYS = ("images", "labels", "soft_labels")


@dataclass
class ExportResult:
    """Where an export went and what the user should know about it."""

    path: Path
    format: str
    notes: list[str] = field(default_factory=list)


def embedded_metadata(art: Artifact) -> dict[str, Any]:
    """The metadata block embedded in exports: format, version digest, metadata."""
    from ...manifest import FORMAT

    return {"format": FORMAT, "digest": art.digest, "metadata": art.metadata}


def embedded_json(art: Artifact) -> str:
    """The embedded metadata block as a JSON string (sorted keys)."""
    return json.dumps(embedded_metadata(art), sort_keys=True, ensure_ascii=False)


def is_export_dir(path: Path) -> bool:
    """Whether ``path`` is a real directory written by the ``hf-datasets`` exporter (ours to replace)."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return True
    return stat.S_ISDIR(st.st_mode) and (path / HF_METADATA_FILE).is_file()


def check_export_target(out: Path, fmt: str, overwrite: bool) -> None:
    """Refuse, before any work, an output that cannot be written or may not be replaced."""
    require_utf8(out, "output")
    check_output_path(out)
    try:
        st = out.lstat()
    except FileNotFoundError:
        return
    kind = (
        "symbolic link"
        if stat.S_ISLNK(st.st_mode)
        else "directory"
        if stat.S_ISDIR(st.st_mode)
        else "regular file"
        if stat.S_ISREG(st.st_mode)
        else "special file (device, socket or fifo)"
    )
    if not overwrite:
        raise OutputExistsError(f"{out} already exists ({kind}); choose another output or allow overwriting")
    wants_dir = fmt in DIRECTORY_FORMATS
    ok = is_export_dir(out) if wants_dir else stat.S_ISREG(st.st_mode)
    if not ok:
        want = "a directory an earlier hf-datasets export wrote" if wants_dir else "a regular file"
        raise OutputExistsError(f"{out} is a {kind}; overwriting replaces only {want}")


def export_artifact(
    art: Artifact,
    fmt: str,
    out: str | Path,
    *,
    overwrite: bool = False,
    max_per_class: int = 10,
    progress: bool = False,
) -> ExportResult:
    """Export ``art`` as ``fmt`` to ``out`` (a file, or a directory for hf-datasets).

    Refuses an existing ``out`` unless ``overwrite``, and even then replaces only a regular file
    (or an earlier hf-datasets export directory); nothing is left at ``out`` on failure.
    """
    writer = EXPORTERS[fmt]  # UnknownNameError for a bad name
    if max_per_class < 1:
        raise UserError(f"max_per_class must be at least 1, got {max_per_class}")
    out = Path(out)
    check_export_target(out, fmt, overwrite)
    kwargs: dict[str, Any] = (
        {"max_per_class": max_per_class}
        if fmt == "png"
        else {"progress": progress}
        if fmt == "hf-datasets"
        else {}
    )
    if fmt in DIRECTORY_FORMATS:
        with staged_dir(out, overwrite=overwrite, replace_ok=is_export_dir) as tmp:
            tmp.rmdir()  # the writer creates its own directory
            notes = writer(art, tmp, **kwargs)
    else:
        with staged_file(out, overwrite=overwrite) as tmp:
            notes = writer(art, tmp, **kwargs)
    return ExportResult(out, fmt, notes)
