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

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from ..artifact import Artifact, build_artifact
from ..canonical import sha256_file
from ..catalog import DatasetInfo, get_dataset_info
from ..errors import ImportFormatError, UnsafeFileError, UserError

IMPORT_FORMATS = ("dc-pt", "mtt", "kip-npz", "npz")
PIXEL_SPACES = ("normalized", "unit", "uint8", "zca-kornia", "zca-kip")
ZCA_INNER = ("unit", "normalized")
LAYOUTS = ("nchw", "nhwc")
ZCA_TENSOR_NAMES = ("zca_mean", "zca_matrix", "zca_inverse")
#: Key of the embedded dcreg metadata in files written by ``dcreg export`` (npz / pt).
EMBEDDED_NPZ_KEY = "metadata_json"
EMBEDDED_PT_KEY = "dcreg_metadata"
EMBEDDED_PT_TENSORS = "dcreg_tensors"

_TENSOR_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_DC_NAME_RE = re.compile(
    r"^res_(?P<method>[A-Za-z0-9]+)_(?P<dataset>[A-Za-z0-9]+)_(?P<model>.+)_(?P<ipc>\d+)ipc"
    r"(?:[._-].*)?\.pt$")
_MTT_NAME_RE = re.compile(r"^images_(?P<tag>.+)\.pt$")


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
    metadata: dict
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


def read_sets(path: str | Path, fmt: str, options: ImportOptions,
              notes: list[str] | None = None) -> list[ImportedSet]:
    """Parse ``path`` in format ``fmt`` into checked sets (nothing is written)."""
    if fmt not in IMPORTERS:
        raise UserError(f"unknown import format {fmt!r}; use one of {', '.join(IMPORT_FORMATS)}")
    if options.pixel_space is not None and options.pixel_space not in PIXEL_SPACES:
        raise UserError(f"unknown pixel space {options.pixel_space!r}; use one of "
                        f"{', '.join(PIXEL_SPACES)}")
    if options.zca_over is not None and options.zca_over not in ZCA_INNER:
        raise UserError(f"--zca-over must be one of {', '.join(ZCA_INNER)}")
    if options.layout is not None and options.layout not in LAYOUTS:
        raise UserError(f"--layout must be one of {', '.join(LAYOUTS)}")
    if options.ipc is not None and options.ipc < 1:
        raise UserError("--ipc must be a positive integer")
    path = Path(path)
    if not path.exists():
        raise ImportFormatError(f"{path}: no such file or directory")
    return IMPORTERS[fmt](path, options, notes if notes is not None else [])


def output_dirs(out_dir: str | Path, sets: list[ImportedSet]) -> list[Path]:
    """Where each set goes: ``out_dir`` + the set's suffix (``DIR-e0``, ``DIR-e1``, ...)."""
    out_dir = Path(out_dir)
    return [out_dir.with_name(out_dir.name + s.suffix) if s.suffix else out_dir for s in sets]


def import_file(path: str | Path, fmt: str, out_dir: str | Path,
                options: ImportOptions | None = None, *, overwrite: bool = False,
                **option_kwargs: Any) -> ImportResult:
    """Import ``path`` (format ``fmt``) into artifact directories at ``out_dir`` (all or nothing).

    ``options`` or keyword arguments of :class:`ImportOptions` (``dataset=...`` is required).
    Several dc-pt experiments without ``exp`` give ``out_dir-e0``, ``out_dir-e1``, ...
    """
    if options is None:
        options = ImportOptions(**option_kwargs)
    elif option_kwargs:
        raise TypeError("pass either options or keyword arguments, not both")
    out_dir = Path(out_dir)
    if not overwrite:
        _check_free(out_dir)
    notes: list[str] = []
    sets = read_sets(path, fmt, options, notes)
    targets = output_dirs(out_dir, sets)
    if not overwrite:
        for t in targets:
            _check_free(t)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".dcreg-import-", dir=out_dir.parent))
    try:
        built = [build_artifact(staging / f"set{i}", s.tensors, s.metadata)
                 for i, s in enumerate(sets)]
        artifacts = []
        for art, target in zip(built, targets):
            _move_into_place(art.path, target)
            artifacts.append(Artifact(target, art.manifest))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ImportResult(artifacts, notes)


def _check_free(target: Path) -> None:
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UserError(f"{target} exists and is not empty; choose another -o or pass --overwrite")


def _move_into_place(src: Path, dst: Path) -> None:
    if dst.exists():
        if dst.is_dir() and not any(dst.iterdir()):
            dst.rmdir()
        else:
            old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
            os.rename(dst, old)
            os.rename(src, dst)
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink()
            return
    os.rename(src, dst)


# --------------------------------------------------------------------------------------------
# shared conversion + checks


def _to_numpy(x: Any, what: str, notes: list[str]) -> np.ndarray:
    """A torch tensor (or number) from a weights-only load as a numpy array."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach") and hasattr(x, "dtype"):  # torch.Tensor (torch already imported)
        import torch

        t = x.detach().cpu()
        if t.dtype == torch.bfloat16:
            notes.append(f"{what}: bfloat16 widened to float32 (exact)")
            t = t.float()
        if t.is_complex() or t.dtype == torch.bool or t.is_quantized:
            raise ImportFormatError(f"{what}: unsupported tensor dtype {t.dtype}")
        return t.contiguous().numpy()
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return np.asarray(x)
    raise ImportFormatError(f"{what}: expected a tensor, found {type(x).__name__}")


def _resolve_pixel_space(name: str, info: DatasetInfo, zca_over: str | None,
                         has_zca_tensors: bool) -> dict:
    norm = {"kind": "normalized", "mean": list(info.mean), "std": list(info.std)}
    if name == "normalized":
        return norm
    if name in ("unit", "uint8"):
        return {"kind": name}
    kornia = name == "zca-kornia"
    over = zca_over or ("unit" if kornia else "normalized")
    return {"kind": "zca", "variant": "kornia-eps0.1" if kornia else "kip-reg0.1",
            "transform": {"source": "tensors"} if has_zca_tensors
            else {"source": "fit", "split": "train"},
            "then": norm if over == "normalized" else {"kind": "unit"}}


def _parse_embedded(text: Any, where: str, notes: list[str]) -> dict | None:
    """dcreg metadata embedded by ``dcreg export`` ({"format", "digest", "metadata"})."""
    if text is None:
        return None
    if isinstance(text, np.ndarray):
        if text.dtype.kind != "U" or text.size != 1:
            notes.append(f"{where}: ignored (not a string)")
            return None
        text = str(text.reshape(-1)[0])
    if not isinstance(text, str):
        notes.append(f"{where}: ignored (not a string)")
        return None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        notes.append(f"{where}: ignored (not JSON)")
        return None
    if isinstance(obj, dict) and isinstance(obj.get("metadata"), dict):
        out = dict(obj["metadata"])
        if isinstance(obj.get("digest"), str):
            out["__digest__"] = obj["digest"]
        return out
    if isinstance(obj, dict) and "dataset" in obj:
        return obj
    notes.append(f"{where}: ignored (not dcreg metadata)")
    return None


def _source(path: Path, fmt: str, options: ImportOptions, **extra: Any) -> dict:
    digest, _ = sha256_file(path)
    src: dict[str, Any] = {"file_name": path.name, "sha256": digest, "format": fmt}
    if options.url:
        src["url"] = options.url
    src.update({k: v for k, v in extra.items() if v is not None})
    return src


def _images_nchw(images: np.ndarray, info: DatasetInfo, layout: str | None, default: str,
                 where: str, notes: list[str]) -> np.ndarray:
    """Bring images to [N, C, H, W], detecting NCHW vs NHWC from the dataset's channel count."""
    c = info.channels
    if images.ndim == 3 and c == 1 and layout is None:
        notes.append(f"{where}: [N, H, W] images read as single-channel")
        return images[:, None, :, :]
    if images.ndim != 4:
        raise ImportFormatError(f"{where}: images have shape {list(images.shape)}; expected "
                                f"[N, C, H, W] or [N, H, W, C] with C = {c} for {info.name}")
    if layout is None:
        nchw, nhwc = images.shape[1] == c, images.shape[3] == c
        if nchw and nhwc:
            layout = default
        elif nchw or nhwc:
            layout = "nchw" if nchw else "nhwc"
        else:
            raise ImportFormatError(
                f"{where}: images have shape {list(images.shape)}, but {info.name} has {c} "
                "channel(s) in neither axis 1 (NCHW) nor axis 3 (NHWC); check --dataset")
    elif images.shape[1 if layout == "nchw" else 3] != c:
        raise ImportFormatError(f"{where}: with --layout {layout}, images {list(images.shape)} "
                                f"do not have {info.name}'s {c} channel(s)")
    if layout == "nhwc":
        images = np.ascontiguousarray(images.transpose(0, 3, 1, 2))
    return images


def _check_images(images: np.ndarray, where: str, notes: list[str]) -> np.ndarray:
    if images.dtype == np.uint8:
        return images
    if images.dtype.kind == "f":
        if images.dtype == np.float64:
            notes.append(f"{where}: float64 images stored as float32")
            images = images.astype(np.float32)
        if not np.isfinite(images).all():
            raise ImportFormatError(f"{where}: images contain NaN or Inf (the set diverged); "
                                    "refusing to import it")
        return images
    raise ImportFormatError(f"{where}: images have dtype {images.dtype}; expected float or uint8")


def _hard_labels(labels: np.ndarray, where: str, notes: list[str]) -> np.ndarray:
    if labels.ndim != 1:
        raise ImportFormatError(f"{where}: labels have shape {list(labels.shape)}; expected [N]")
    if labels.dtype.kind == "f":
        if not np.isfinite(labels).all() or not (labels == np.round(labels)).all():
            raise ImportFormatError(f"{where}: float labels [N] must be whole class ids")
        notes.append(f"{where}: float class ids cast to int64")
    elif labels.dtype.kind not in "iu":
        raise ImportFormatError(f"{where}: labels have dtype {labels.dtype}; expected integers")
    return labels.astype(np.int64)


def _assemble(*, images: np.ndarray, labels: np.ndarray | None, soft: np.ndarray | None,
              extras: Mapping[str, np.ndarray], info: DatasetInfo, options: ImportOptions,
              where: str, default_pixel_space: str, method: str | None,
              method_config: dict, source: dict, embedded: dict | None,
              notes: list[str], suffix: str = "") -> ImportedSet:
    """Check tensors against the dataset and build the metadata of one set."""
    k = info.num_classes
    images = _check_images(images, where, notes)
    n = images.shape[0]
    if n == 0:
        raise ImportFormatError(f"{where}: the file holds no images")
    tensors: dict[str, np.ndarray] = {"images": images}
    if soft is not None:
        if soft.ndim != 2 or soft.shape != (n, k) or soft.dtype.kind != "f":
            raise ImportFormatError(f"{where}: soft labels have shape {list(soft.shape)} "
                                    f"({soft.dtype}); expected float [{n}, {k}] for {info.name}")
        soft = soft.astype(np.float32) if soft.dtype == np.float64 else soft
        if not np.isfinite(soft).all():
            raise ImportFormatError(f"{where}: soft labels contain NaN or Inf")
        if n % k:
            raise ImportFormatError(f"{where}: {n} images are not a multiple of {info.name}'s "
                                    f"{k} classes, so they cannot be class-balanced")
        ipc = n // k
        tensors["soft_labels"] = soft
        label_kind = "soft"
    else:
        assert labels is not None
        if labels.shape[0] != n:
            raise ImportFormatError(f"{where}: {labels.shape[0]} labels for {n} images")
        if labels.min() < 0 or labels.max() >= k:
            raise ImportFormatError(f"{where}: labels span [{labels.min()}, {labels.max()}] but "
                                    f"{info.name} has classes 0..{k - 1}; check --dataset")
        counts = np.bincount(labels, minlength=k)
        if not (counts == counts[0]).all():
            lo, hi = int(np.argmin(counts)), int(np.argmax(counts))
            raise ImportFormatError(
                f"{where}: labels are not class-balanced (class {lo} has {counts[lo]} images, "
                f"class {hi} has {counts[hi]}); dcreg/1 needs the same number per class")
        ipc = int(counts[0])
        tensors["labels"] = labels
        label_kind = "hard"
    if options.ipc is not None and options.ipc != ipc:
        raise ImportFormatError(f"{where}: --ipc {options.ipc} but the file holds {ipc} images "
                                f"per class ({n} images, {k} classes)")
    for name, arr in extras.items():
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise ImportFormatError(f"{where}: tensor {name!r} contains NaN or Inf")
        tensors[name] = arr

    emb = dict(embedded or {})
    digest = emb.pop("__digest__", None)
    if emb and emb.get("dataset") != info.name:
        raise ImportFormatError(f"{where}: the file's dcreg metadata says dataset "
                                f"{emb.get('dataset')!r}, but --dataset is {info.name!r}")
    has_zca = all(z in tensors for z in ZCA_TENSOR_NAMES)
    if options.pixel_space is not None:
        pixel_space = _resolve_pixel_space(options.pixel_space, info, options.zca_over, has_zca)
    elif "pixel_space" in emb:
        pixel_space = emb["pixel_space"]
    else:
        pixel_space = _resolve_pixel_space(default_pixel_space, info, options.zca_over, has_zca)
    kind = pixel_space.get("kind") if isinstance(pixel_space, dict) else None
    if (images.dtype == np.uint8) != (kind == "uint8"):
        if images.dtype == np.uint8:
            raise ImportFormatError(f"{where}: images are uint8, so the pixel space must be "
                                    f"uint8, not {kind!r} (pass --pixel-space uint8)")
        raise ImportFormatError(f"{where}: pixel space uint8 needs uint8 images, but these are "
                                f"{images.dtype}; pick normalized, unit or a zca-* space")

    method = options.method or emb.get("method") or method
    if not method:
        raise ImportFormatError(f"{where}: cannot tell which method made this set; "
                                "pass --method (e.g. dc, dsa, dm, mtt, kip, random)")
    method = method.lower()
    # A file written by `dcreg export` carries the original method_config: it wins.
    mc = dict(emb["method_config"]) if isinstance(emb.get("method_config"), dict) \
        else dict(method_config)
    if label_kind == "hard":
        mc.pop("soft_labels", None)

    class_names = list(info.class_names_or_default())
    if isinstance(emb.get("class_names"), list) and len(emb["class_names"]) == k:
        class_names = emb["class_names"]
    md: dict[str, Any] = {
        "dataset": info.name, "num_classes": k, "class_names": class_names,
        "image_shape": [int(d) for d in images.shape[1:]], "ipc": ipc, "method": method,
        "method_config": mc, "pixel_space": pixel_space, "label_kind": label_kind,
        "seed": options.seed if options.seed is not None else emb.get("seed"),
        "license": options.license or emb.get("license") or "other",
        "source": dict(source, **({"dcreg_digest": digest} if digest else {})),
    }
    if options.title or emb.get("title"):
        md["title"] = options.title or emb["title"]
    for key in ("description", "citation", "extra", "lineage"):
        if key in emb:
            md[key] = emb[key]
    return ImportedSet(tensors, md, suffix)


def _dataset(options: ImportOptions) -> DatasetInfo:
    if not options.dataset:
        raise UserError("--dataset is required (e.g. cifar10); it sets classes and normalization")
    return get_dataset_info(options.dataset)


# --------------------------------------------------------------------------------------------
# dc-pt: DC / DSA / DM res_{METHOD}_{DATASET}_{MODEL}_{IPC}ipc.pt


def read_dc_pt(path: Path, options: ImportOptions, notes: list[str]) -> list[ImportedSet]:
    """``{'data': [[images, labels], ...], 'accs_all_exps': {...}}``, one set per experiment."""
    from .safe_torch import safe_torch_load

    info = _dataset(options)
    if path.is_dir():
        raise ImportFormatError(f"{path}: is a directory; dc-pt needs the res_*.pt file")
    obj = safe_torch_load(path)
    where = path.name
    if not isinstance(obj, dict) or "data" not in obj:
        found = (f"keys {sorted(map(str, obj))}" if isinstance(obj, dict)
                 else type(obj).__name__)
        raise ImportFormatError(f"{where}: expected the DC layout {{'data': [[images, labels], "
                                f"...], 'accs_all_exps': ...}}, found {found}")
    data = obj["data"]
    if not isinstance(data, (list, tuple)) or not data:
        raise ImportFormatError(f"{where}: 'data' must be a non-empty list of [images, labels]")
    for i, pair in enumerate(data):
        if not isinstance(pair, (list, tuple)) or len(pair) < 2:
            raise ImportFormatError(f"{where}: data[{i}] is not an [images, labels] pair")

    parsed = _DC_NAME_RE.match(path.name)
    method = model = None
    if parsed:
        method, model = parsed["method"].lower(), parsed["model"]
        try:
            named = get_dataset_info(parsed["dataset"]).name
        except UserError:
            named = None
        if named is not None and named != info.name:
            raise ImportFormatError(f"{where}: the file name says dataset {parsed['dataset']} "
                                    f"but --dataset is {info.name}")
    embedded = _parse_embedded(obj.get(EMBEDDED_PT_KEY), f"{where}: {EMBEDDED_PT_KEY}", notes)
    accs = _plain_accs(obj.get("accs_all_exps"))

    extras: dict[str, np.ndarray] = {}
    if obj.get("lr") is not None:
        extras["lr"] = _lr_tensor(_to_numpy(obj["lr"], f"{where}: lr", notes), where)
    dcreg_tensors = obj.get(EMBEDDED_PT_TENSORS)
    if isinstance(dcreg_tensors, dict):
        for name, t in dcreg_tensors.items():
            if isinstance(name, str) and _TENSOR_NAME_RE.match(name):
                extras[name] = _to_numpy(t, f"{where}: {name}", notes)

    if options.exp is not None:
        if not 0 <= options.exp < len(data):
            raise UserError(f"--exp {options.exp} is out of range: {where} holds "
                            f"{len(data)} experiment(s) (0..{len(data) - 1})")
        chosen = [options.exp]
    else:
        chosen = list(range(len(data)))
    multi = len(chosen) > 1
    if multi:
        notes.append(f"{where}: {len(data)} experiments -> one artifact each (-e0..-e"
                     f"{len(data) - 1}); pass --exp N for one")
    sets = []
    for i in chosen:
        w = f"{where} experiment {i}"
        images = _to_numpy(data[i][0], f"{w}: images", notes)
        raw_labels = _to_numpy(data[i][1], f"{w}: labels", notes)
        images = _images_nchw(images, info, options.layout, "nchw", w, notes)
        labels = soft = None
        if raw_labels.ndim == 2 and raw_labels.dtype.kind == "f":
            soft = raw_labels
        else:
            labels = _hard_labels(raw_labels, w, notes)
        mc: dict[str, Any] = {"experiment": i, "num_experiments": len(data)}
        if model:
            mc["model"] = model
        if accs:
            mc["reported_accs"] = accs
        if soft is not None:
            mc["soft_labels"] = "logits"
        if "lr" in extras:
            mc["learned_lr"] = True
        sets.append(_assemble(
            images=images, labels=labels, soft=soft, extras=extras, info=info, options=options,
            where=w, default_pixel_space="normalized", method=method,
            method_config=mc, source=_source(path, "dc-pt", options, experiment=i),
            embedded=embedded, notes=notes, suffix=f"-e{i}" if multi else ""))
        if parsed and int(parsed["ipc"]) != sets[-1].metadata["ipc"]:
            raise ImportFormatError(f"{w}: the file name says {parsed['ipc']} ipc but the data "
                                    f"holds {sets[-1].metadata['ipc']} images per class")
    return sets


def _plain_accs(accs: Any) -> dict | None:
    """``accs_all_exps`` as {model: [float, ...]} if it is that shape, else None."""
    if not isinstance(accs, dict):
        return None
    out = {}
    for key, values in accs.items():
        if not isinstance(key, str) or not isinstance(values, (list, tuple)):
            return None
        try:
            vals = [float(v) for v in values]
        except (TypeError, ValueError):
            return None
        if not all(np.isfinite(vals)):
            return None
        out[key] = vals
    return out or None


def _lr_tensor(lr: np.ndarray, where: str) -> np.ndarray:
    if lr.size != 1 or lr.dtype.kind != "f":
        raise ImportFormatError(f"{where}: the learned lr must be one float, found "
                                f"{lr.dtype} {list(lr.shape)}")
    value = np.asarray(lr, dtype=np.float32).reshape(())
    if not np.isfinite(value) or value <= 0:
        raise ImportFormatError(f"{where}: the learned lr must be finite and positive, "
                                f"got {float(value)}")
    return value


# --------------------------------------------------------------------------------------------
# mtt: MTT / DATM images_best.pt + labels_best.pt + lr_best.pt


def read_mtt(path: Path, options: ImportOptions, notes: list[str]) -> list[ImportedSet]:
    """A directory with ``images_best.pt`` (+ ``labels_best.pt``, ``lr_best.pt``) or the images
    file itself; siblings with the same tag (``images_5000.pt`` -> ``labels_5000.pt``) are used."""
    from .safe_torch import safe_torch_load

    info = _dataset(options)
    if path.is_dir():
        images_file = path / "images_best.pt"
        if not images_file.is_file():
            found = sorted(p.name for p in path.glob("images_*.pt"))
            raise ImportFormatError(
                f"{path}: no images_best.pt in this directory"
                + (f" (found {', '.join(found[:5])}; pass the one you want as FILE)" if found
                   else "; MTT saves images_best.pt, labels_best.pt and lr_best.pt"))
    else:
        images_file = path
    tag_match = _MTT_NAME_RE.match(images_file.name)
    folder = images_file.parent
    labels_file = folder / f"labels_{tag_match['tag']}.pt" if tag_match else None
    lr_file = folder / f"lr_{tag_match['tag']}.pt" if tag_match else None
    where = images_file.name

    images = _to_numpy(safe_torch_load(images_file), where, notes)
    images = _images_nchw(images, info, options.layout, "nchw", where, notes)
    n, k = images.shape[0], info.num_classes
    files = {images_file.name: sha256_file(images_file)[0]}
    mc: dict[str, Any] = {}
    labels = soft = None
    if labels_file is not None and labels_file.is_file():
        files[labels_file.name] = sha256_file(labels_file)[0]
        raw = _to_numpy(safe_torch_load(labels_file), labels_file.name, notes)
        if raw.ndim == 2 and raw.dtype.kind == "f":
            soft = raw
            mc["soft_labels"] = "logits"
            notes.append(f"{labels_file.name}: float [N, K] labels imported as soft labels "
                         "(DATM logits)")
        else:
            labels = _hard_labels(raw, labels_file.name, notes)
        mc["labels"] = labels_file.name
    else:
        if n % k:
            raise ImportFormatError(f"{where}: no labels file and {n} images are not a multiple "
                                    f"of {k} classes")
        labels = np.repeat(np.arange(k, dtype=np.int64), n // k)
        mc["labels"] = "class-major (MTT layout: arange(K).repeat_interleave(ipc)); no labels file"
        notes.append(f"{where}: no labels file; assumed MTT's class-major order "
                     f"({n // k} images per class)")
    extras: dict[str, np.ndarray] = {}
    if lr_file is not None and lr_file.is_file():
        files[lr_file.name] = sha256_file(lr_file)[0]
        extras["lr"] = _lr_tensor(_to_numpy(safe_torch_load(lr_file), lr_file.name, notes),
                                  lr_file.name)
        mc["learned_lr"] = True
    else:
        mc["learned_lr"] = False
        notes.append(f"{where}: no lr file; the set carries no learned learning rate")
    if (options.pixel_space or "normalized") == "normalized":
        notes.append("MTT sets distilled with --zca are ZCA-whitened: import them with "
                     "--pixel-space zca-kornia")
    return [_assemble(
        images=images, labels=labels, soft=soft, extras=extras, info=info, options=options,
        where=where, default_pixel_space="normalized",
        method="datm" if soft is not None else "mtt", method_config=mc,
        source=_source(images_file, "mtt", options, files=files), embedded=None, notes=notes)]


# --------------------------------------------------------------------------------------------
# npz files (KIP and plain)


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, with pickles and object arrays refused."""
    if path.is_dir():
        raise ImportFormatError(f"{path}: is a directory; expected an .npz file")
    try:
        with np.load(path, allow_pickle=False) as z:
            if not hasattr(z, "files"):
                raise ImportFormatError(f"{path.name}: is a single .npy array; save images and "
                                        "labels together with numpy.savez")
            out = {}
            for key in z.files:
                try:
                    out[key] = z[key]
                except ValueError as exc:
                    if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
                        raise UnsafeFileError(
                            f"{path.name}: array {key!r} is an object array (pickled Python "
                            "objects) and will not be unpickled; save plain numeric arrays "
                            "(numpy.savez with float/int arrays) and import again") from None
                    raise ImportFormatError(f"{path.name}: array {key!r} is unreadable "
                                            f"({exc})") from None
            return out
    except (ImportFormatError, UnsafeFileError):
        raise
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "pickled" in str(exc):
            raise UnsafeFileError(
                f"{path.name}: is a pickle, not an .npz archive, and will not be unpickled "
                "(unpickling can run code); in a trusted environment load it and save its "
                "arrays with numpy.savez, then import the .npz") from None
        raise ImportFormatError(f"{path.name}: not a readable .npz file ({exc})") from None
    except (OSError, EOFError) as exc:
        raise ImportFormatError(f"{path.name}: not a readable .npz file ({exc})") from None
    except Exception as exc:  # zipfile.BadZipFile and friends
        raise ImportFormatError(f"{path.name}: not a readable .npz file "
                                f"({type(exc).__name__}: {exc})") from None


def _require(arrays: Mapping[str, np.ndarray], key: str, where: str, fmt: str) -> np.ndarray:
    if key not in arrays:
        raise ImportFormatError(f"{where}: has no {key!r} array (found: "
                                f"{', '.join(sorted(arrays)) or 'nothing'}); {fmt} needs "
                                "'images' and 'labels'")
    return arrays[key]


def _one_hot_rows(y: np.ndarray) -> tuple[np.ndarray, float, float] | None:
    """If every row of ``y`` is one-hot (one max, all others equal, the same on/off values in
    every row, e.g. KIP's centered -0.1/0.9), return (argmax, on, off); else None."""
    if y.ndim != 2 or y.shape[1] < 2 or y.shape[0] == 0 or not np.isfinite(y).all():
        return None
    arg = y.argmax(axis=1)
    rows = np.arange(y.shape[0])
    on = y[rows, arg]
    if not (on == on[0]).all():
        return None
    mask = np.ones_like(y, dtype=bool)
    mask[rows, arg] = False
    off = y[mask]
    if not (off == off[0]).all() or off[0] >= on[0]:
        return None
    return arg.astype(np.int64), float(on[0]), float(off[0])


def read_kip_npz(path: Path, options: ImportOptions, notes: list[str]) -> list[ImportedSet]:
    """KIP ``.npz``: ``images`` NHWC float, ``labels`` one-hot (maybe centered) or learned."""
    info = _dataset(options)
    arrays = _load_npz(path)
    where = path.name
    images = _require(arrays, "images", where, "kip-npz")
    raw = _require(arrays, "labels", where, "kip-npz")
    images = _images_nchw(images, info, options.layout, "nhwc", where, notes)
    mc: dict[str, Any] = {}
    labels = soft = None
    if raw.ndim == 2 and raw.dtype.kind == "f":
        hot = _one_hot_rows(raw)
        if hot is not None:
            labels, on, off = hot
            mc["label_encoding"] = {"on": on, "off": off}
            if (on, off) != (1.0, 0.0):
                notes.append(f"{where}: one-hot labels with centering on={on:g} off={off:g} "
                             "-> hard labels (the encoding is kept in method_config)")
        else:
            soft = raw
            mc["soft_labels"] = "kip-regression-targets"
            notes.append(f"{where}: labels are learned (not one-hot) -> soft labels")
    else:
        labels = _hard_labels(raw, where, notes)
    extras = {}
    if "lr" in arrays:
        extras["lr"] = _lr_tensor(arrays["lr"], where)
    ignored = sorted(set(arrays) - {"images", "labels", "lr"})
    if ignored:
        notes.append(f"{where}: ignored arrays {', '.join(ignored)}")
    return [_assemble(
        images=images, labels=labels, soft=soft, extras=extras, info=info, options=options,
        where=where, default_pixel_space="zca-kip", method="kip",
        method_config=mc, source=_source(path, "kip-npz", options), embedded=None, notes=notes)]


def read_npz(path: Path, options: ImportOptions, notes: list[str]) -> list[ImportedSet]:
    """Plain ``.npz``: ``images`` NCHW/NHWC, ``labels`` int [N] or ``soft_labels``/float [N, K];
    optional ``lr``; ``metadata_json`` from ``dcreg export`` restores the metadata."""
    info = _dataset(options)
    arrays = _load_npz(path)
    where = path.name
    embedded = _parse_embedded(arrays.get(EMBEDDED_NPZ_KEY), f"{where}: {EMBEDDED_NPZ_KEY}",
                               notes)
    images = _require(arrays, "images", where, "npz")
    images = _images_nchw(images, info, options.layout, "nchw", where, notes)
    if "labels" in arrays and "soft_labels" in arrays:
        raise ImportFormatError(f"{where}: has both 'labels' and 'soft_labels'; keep one")
    labels = soft = None
    mc: dict[str, Any] = {}
    if "soft_labels" in arrays:
        soft = arrays["soft_labels"]
    else:
        raw = _require(arrays, "labels", where, "npz")
        if raw.ndim == 2 and raw.dtype.kind == "f":
            soft = raw
        else:
            labels = _hard_labels(raw, where, notes)
    if soft is not None and not (embedded or {}).get("method_config", {}).get("soft_labels"):
        mc["soft_labels"] = "logits"
    extras: dict[str, np.ndarray] = {}
    known = {"images", "labels", "soft_labels", EMBEDDED_NPZ_KEY}
    for name in sorted(set(arrays) - known):
        arr = arrays[name]
        if name == "lr":
            extras["lr"] = _lr_tensor(arr, where)
            mc["learned_lr"] = True
        elif (name in ZCA_TENSOR_NAMES or embedded is not None) and _TENSOR_NAME_RE.match(name) \
                and arr.dtype.kind in "fiub":
            extras[name] = arr
        else:
            notes.append(f"{where}: ignored array {name!r}")
    return [_assemble(
        images=images, labels=labels, soft=soft, extras=extras, info=info, options=options,
        where=where, default_pixel_space="uint8" if images.dtype == np.uint8
        else "unit", method=None, method_config=mc, source=_source(path, "npz", options),
        embedded=embedded, notes=notes)]


#: Format name -> reader(path, options, notes) -> [ImportedSet].
IMPORTERS: dict[str, Callable[[Path, ImportOptions, list[str]], list[ImportedSet]]] = {
    "dc-pt": read_dc_pt,
    "mtt": read_mtt,
    "kip-npz": read_kip_npz,
    "npz": read_npz,
}
