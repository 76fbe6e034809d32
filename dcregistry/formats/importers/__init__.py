"""Importers: published condensed sets (DC/DSA/DM ``res_*.pt``, MTT/DATM, KIP ``.npz``, plain
``.npz``) -> validated dcreg/1 artifacts.

Nothing here unpickles arbitrary objects: ``.pt`` files go through
:func:`dcregistry.formats.safe_torch.safe_torch_load` (``torch.load(weights_only=True)``), ``.npz``
files through ``numpy.load(allow_pickle=False)``; object arrays and pickles are refused with
:class:`~dcregistry.errors.UnsafeFileError`. Torch is imported only when a ``.pt`` file is read.

Each reader turns a file into one or more :class:`ImportedSet` (tensors + metadata, not yet
written); :func:`import_file` validates and writes them, all or nothing.

Defaults, per format (``--pixel-space`` overrides):

* ``dc-pt``: ``normalized`` with the dataset's canonical mean/std (the DC/DSA/DM code stores its
  sets after ``Normalize(mean, std)``); method from ``res_{METHOD}_{DATASET}_{MODEL}_{IPC}ipc.pt``.
* ``mtt``: ``normalized`` (MTT without ``--zca``); ``zca-kornia`` is ZCA (kornia, eps 0.1) fitted
  on the *unit-range* train images, which is what MTT's code does (it drops ``Normalize`` when
  ``--zca`` is on), so its inner space defaults to ``unit``. Method ``mtt``, or ``datm`` when the
  labels are float logits.
* ``kip-npz``: ``zca-kip`` over ``normalized`` images (KIP's released ConvNet sets are ZCA'd after
  per-channel standardization); method ``kip``.
* ``npz``: ``unit`` for float images, ``uint8`` for uint8 images; ``--method`` is required unless
  the file carries dcreg metadata (an ``export --format npz`` of an artifact).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import ImportFormatError, OutputExistsError, UserError
from ...fsio import check_output_path, staged_dir
from ...manifest import is_artifact_dir
from ...pixelspace import SPACE_NAMES, ZCA_INNER_KINDS
from ...pixelspace import ZCA_TENSOR_NAMES as ZCA_TENSOR_NAMES  # re-exported
from ...registry import Registry
from ..paths import require_utf8

if TYPE_CHECKING:
    import numpy as np

    from ...artifact import Artifact

#: Format name -> module of this package that registers its reader (imported on first use).
#: A new format is one module here plus one line in this table.
IMPORT_MODULES = {"dc-pt": "dc_pt", "mtt": "mtt", "kip-npz": "kip_npz", "npz": "npz"}
#: Format name -> reader(path, options, notes) -> [ImportedSet].
IMPORTERS: Registry[Callable[[Path, ImportOptions, list[str]], list[ImportedSet]]] = Registry(
    "import format", lazy=IMPORT_MODULES, package=__name__
)
IMPORT_FORMATS = tuple(IMPORTERS.names())
PIXEL_SPACES = SPACE_NAMES
ZCA_INNER = ZCA_INNER_KINDS
LAYOUTS = ("nchw", "nhwc")
#: Key of the embedded dcreg metadata in files written by ``dcreg export`` (npz / pt).
EMBEDDED_NPZ_KEY = "metadata_json"
EMBEDDED_PT_KEY = "dcreg_metadata"
EMBEDDED_PT_TENSORS = "dcreg_tensors"
TENSOR_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")


class ImportOptionError(ImportFormatError):
    """The file needs, or contradicts, one of the :class:`ImportOptions`; ``option`` names the
    field, so that a front end can name its own flag (library messages never name CLI flags)."""

    def __init__(self, message: str, option: str):
        super().__init__(message)
        self.option = option


@dataclass
class ImportOptions:
    """What the user tells the importer (the file cannot say it); ``None`` = format default."""

    dataset: str
    pixel_space: str | None = None  # one of PIXEL_SPACES
    zca_over: str | None = None  # inner space of a zca-* pixel space: unit | normalized
    method: str | None = None
    ipc: int | None = None
    license: str | None = None  # default "other"
    url: str | None = None
    seed: int | None = None
    exp: int | None = None  # dc-pt: which experiment
    title: str | None = None
    layout: str | None = None  # npz / kip-npz: nchw | nhwc (default: detected)


@dataclass
class ImportedSet:
    """One artifact's worth of tensors + metadata read from a file (nothing written yet)."""

    tensors: dict[str, np.ndarray]
    metadata: dict[str, Any]
    suffix: str = ""  # appended to the output directory name ("-e1" for dc-pt experiment 1)


@dataclass
class ImportResult:
    """What :func:`import_file` wrote: one artifact per set, plus notes for the user."""

    artifacts: list[Artifact]
    notes: list[str] = field(default_factory=list)

    @property
    def paths(self) -> list[Path]:
        return [a.path for a in self.artifacts]


# --------------------------------------------------------------------------------------------
# public entry points


def read_sets(
    path: str | Path, fmt: str, options: ImportOptions, notes: list[str] | None = None
) -> list[ImportedSet]:
    """Parse ``path`` in format ``fmt`` into checked sets (nothing is written)."""
    if fmt not in IMPORTERS:
        raise UserError(f"unknown import format {fmt!r}; use one of {', '.join(IMPORT_FORMATS)}")
    if options.pixel_space is not None and options.pixel_space not in PIXEL_SPACES:
        raise UserError(f"unknown pixel space {options.pixel_space!r}; use one of {', '.join(PIXEL_SPACES)}")
    if options.zca_over is not None and options.zca_over not in ZCA_INNER:
        raise ImportOptionError(f"zca_over must be one of {', '.join(ZCA_INNER)}", "zca_over")
    if options.layout is not None and options.layout not in LAYOUTS:
        raise ImportOptionError(f"layout must be one of {', '.join(LAYOUTS)}", "layout")
    if options.ipc is not None and options.ipc < 1:
        raise ImportOptionError("ipc must be a positive integer", "ipc")
    path = Path(path)
    if not path.exists():
        raise ImportFormatError(f"{path}: no such file or directory")
    return IMPORTERS[fmt](path, options, notes if notes is not None else [])


def output_dirs(out_dir: str | Path, sets: list[ImportedSet]) -> list[Path]:
    """Where each set goes: ``out_dir`` + the set's suffix (``DIR-e0``, ``DIR-e1``, ...)."""
    out_dir = Path(out_dir)
    return [out_dir.with_name(out_dir.name + s.suffix) if s.suffix else out_dir for s in sets]


def check_import_target(target: Path, overwrite: bool) -> None:
    """Refuse, before reading anything, an output directory that cannot be written or replaced."""
    require_utf8(target, "output")
    check_output_path(target)
    try:
        st = target.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode) and not any(os.scandir(target)):
        return  # an empty directory is free to take
    if not overwrite:
        raise OutputExistsError(
            f"{target} exists and is not empty; choose another output or allow overwriting"
        )
    if not is_artifact_dir(target):
        kind = (
            "a symbolic link"
            if stat.S_ISLNK(st.st_mode)
            else "a directory that is not a dcreg artifact"
            if stat.S_ISDIR(st.st_mode)
            else "a regular file"
            if stat.S_ISREG(st.st_mode)
            else "a special file"
        )
        raise OutputExistsError(f"{target} is {kind}; overwriting replaces only an artifact directory")


def import_file(
    path: str | Path,
    fmt: str,
    out_dir: str | Path,
    options: ImportOptions | None = None,
    *,
    overwrite: bool = False,
    **option_kwargs: Any,
) -> ImportResult:
    """Import ``path`` (format ``fmt``) into artifact directories at ``out_dir`` (all or nothing).

    ``options`` or keyword arguments of :class:`ImportOptions` (``dataset=...`` is required).
    Several dc-pt experiments without ``exp`` give ``out_dir-e0``, ``out_dir-e1``, ...
    ``overwrite`` replaces only existing artifact directories.
    """
    from ...artifact import Artifact, build_artifact

    if options is None:
        options = ImportOptions(**option_kwargs)
    elif option_kwargs:
        raise TypeError("pass either options or keyword arguments, not both")
    require_utf8(path, "input")
    out_dir = Path(out_dir)
    check_import_target(out_dir, overwrite)
    notes: list[str] = []
    sets = read_sets(path, fmt, options, notes)
    targets = output_dirs(out_dir, sets)
    for t in targets:
        check_import_target(t, overwrite)
    # One staged directory per target, all entered before any is filled: a failure while
    # building any set removes every staged directory, so nothing is written.
    with ExitStack() as stack:
        staged = [
            stack.enter_context(staged_dir(t, overwrite=overwrite, replace_ok=is_artifact_dir))
            for t in targets
        ]
        manifests = [
            build_artifact(tmp, s.tensors, s.metadata).manifest for tmp, s in zip(staged, sets, strict=True)
        ]
    return ImportResult([Artifact(t, m) for t, m in zip(targets, manifests, strict=True)], notes)
