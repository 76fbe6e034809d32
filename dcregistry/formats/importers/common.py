"""Checks and conversions shared by the importers: tensors to numpy, image layout, labels,
pixel spaces, embedded dcreg metadata, and the assembly of one set's tensors + metadata."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...canonical import sha256_file
from ...catalog import DatasetInfo, get_dataset_info
from ...errors import ImportFormatError, UserError
from ...jsonsafe import loads_bounded
from ...pixelspace import PixelSpace
from ..limits import ByteBudget
from . import ZCA_TENSOR_NAMES, ImportedSet, ImportOptionError, ImportOptions


def to_numpy(x: Any, what: str, notes: list[str], budget: ByteBudget | None = None) -> np.ndarray:
    """A torch tensor (or number) from a weights-only load as a numpy array.

    The tensor is checked (dense, CPU, size within ``budget`` and proportionate to its storage)
    before it is copied out, so zero-stride views cannot make the copy huge."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach") and hasattr(x, "dtype"):  # torch.Tensor (torch already imported)
        import torch

        from ..safe_torch import tensor_bytes

        tensor_bytes(x, what, budget if budget is not None else ByteBudget(what))
        t = x.detach()
        if t.dtype == torch.bfloat16:
            notes.append(f"{what}: bfloat16 widened to float32 (exact)")
            t = t.float()
        if t.is_complex() or t.dtype == torch.bool or t.is_quantized:
            raise ImportFormatError(f"{what}: unsupported tensor dtype {t.dtype}")
        arr: np.ndarray = t.contiguous().numpy()
        return arr
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return np.asarray(x)
    raise ImportFormatError(f"{what}: expected a tensor, found {type(x).__name__}")


def resolve_pixel_space(
    name: str, info: DatasetInfo, zca_over: str | None, has_zca_tensors: bool
) -> dict[str, Any]:
    """The descriptor a ``--pixel-space`` name means (see :meth:`PixelSpace.named`)."""
    return PixelSpace.named(name, info, zca_over=zca_over, zca_stored=has_zca_tensors).to_dict()


def parse_embedded(text: Any, where: str, notes: list[str]) -> dict[str, Any] | None:
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
        obj = loads_bounded(text, where)
    except UserError:
        notes.append(f"{where}: ignored (not JSON)")
        return None
    if isinstance(obj, dict) and isinstance(obj.get("metadata"), dict):
        out = dict(obj["metadata"])
        if isinstance(obj.get("digest"), str):
            out["__digest__"] = obj["digest"]
        return _typed_embedded(out, where)
    if isinstance(obj, dict) and "dataset" in obj:
        return _typed_embedded(dict(obj), where)
    notes.append(f"{where}: ignored (not dcreg metadata)")
    return None


#: The embedded fields an import uses, and the JSON types they must have.
EMBEDDED_FIELDS: dict[str, tuple[type, ...]] = {
    "dataset": (str,),
    "method": (str,),
    "method_config": (dict,),
    "pixel_space": (dict,),
    "class_names": (list,),
    "seed": (int, type(None)),
    "license": (str,),
    "title": (str,),
    "description": (str,),
    "citation": (str,),
    "extra": (dict,),
    "lineage": (list,),
    "__digest__": (str,),
}
_JSON_TYPE = {str: "a string", dict: "an object", list: "an array", int: "an integer", type(None): "null"}


def _typed_embedded(meta: dict[str, Any], where: str) -> dict[str, Any]:
    """``meta`` if every field an import reads has its JSON type; ImportFormatError naming the
    first that does not (a list where an object belongs must not reach the code as one)."""
    for key, types in EMBEDDED_FIELDS.items():
        if key in meta and (not isinstance(meta[key], types) or isinstance(meta[key], bool)):
            want = " or ".join(_JSON_TYPE[t] for t in types)
            raise ImportFormatError(
                f"{where}: field {key!r} must be {want}, got "
                f"{type(meta[key]).__name__}; the embedded dcreg metadata is damaged"
            )
    for key in ("class_names", "lineage"):
        if key in meta and not all(isinstance(v, str) for v in meta[key]):
            raise ImportFormatError(f"{where}: field {key!r} must be an array of strings")
    return meta


def source_record(path: Path, fmt: str, options: ImportOptions, **extra: Any) -> dict[str, Any]:
    digest, _ = sha256_file(path)
    src: dict[str, Any] = {"file_name": path.name, "sha256": digest, "format": fmt}
    if options.url:
        src["url"] = options.url
    src.update({k: v for k, v in extra.items() if v is not None})
    return src


def _shape_hint(info: DatasetInfo, hw: tuple[int, int]) -> str:
    c = info.channels
    return (
        f"{info.name} images are [C, H, W] = [{c}, {hw[0]}, {hw[1]}], i.e. [N, {c}, {hw[0]}, "
        f"{hw[1]}] (nchw) or [N, {hw[0]}, {hw[1]}, {c}] (nhwc)"
    )


def images_nchw(
    images: np.ndarray,
    info: DatasetInfo,
    layout: str | None,
    where: str,
    notes: list[str],
    image_shape: Any = None,
) -> np.ndarray:
    """Bring images to [N, C, H, W]. Without ``layout``, the one reading (NCHW or NHWC) whose
    channels and size match the dataset's image shape (or ``image_shape`` [C, H, W], e.g. from
    embedded dcreg metadata) is used; an ambiguous or contradicting shape is refused, never guessed."""
    c = info.channels
    want = (
        image_shape
        if (
            isinstance(image_shape, list)
            and len(image_shape) == 3
            and all(type(d) is int for d in image_shape)
            and image_shape[0] == c
        )
        else list(info.image_shape)
    )
    hw = (want[1], want[2])
    shape = list(images.shape)
    if images.ndim == 3 and c == 1:
        if tuple(shape[1:]) != hw and layout is None:
            raise ImportOptionError(
                f"{where}: images have shape {shape}, which contradicts the dataset: "
                f"{_shape_hint(info, hw)}; check the dataset, or give the layout (nchw) "
                "to import [N, H, W] images of another size",
                "layout",
            )
        notes.append(f"{where}: [N, H, W] images read as single-channel")
        return images[:, None, :, :]
    if images.ndim != 4:
        raise ImportFormatError(
            f"{where}: images have shape {shape}; expected "
            f"[N, C, H, W] or [N, H, W, C] with C = {c} for {info.name}"
        )
    readings = {"nchw": (shape[1], (shape[2], shape[3])), "nhwc": (shape[3], (shape[1], shape[2]))}
    if layout is None:
        fits = [name for name, (ch, size) in readings.items() if ch == c and size == hw]
        plausible = [name for name, (ch, _) in readings.items() if ch == c]
        if len(fits) == 1:
            layout = fits[0]
        elif len(plausible) == 2:
            raise ImportOptionError(
                f"{where}: images have shape {shape}, which reads as both [N, C, H, W] and "
                f"[N, H, W, C]; {_shape_hint(info, hw)}; give the layout (nchw or nhwc)",
                "layout",
            )
        elif plausible:
            raise ImportOptionError(
                f"{where}: images have shape {shape}, which contradicts the dataset: "
                f"{_shape_hint(info, hw)}; check the dataset, or give the layout "
                f"({plausible[0]}) to import images of another size",
                "layout",
            )
        else:
            raise ImportFormatError(
                f"{where}: images have shape {shape}, but {info.name} has {c} channel(s) in "
                "neither axis 1 (NCHW) nor axis 3 (NHWC); check the dataset"
            )
    elif readings[layout][0] != c:
        raise ImportFormatError(
            f"{where}: read as {layout}, images {shape} do not have {info.name}'s {c} channel(s)"
        )
    elif readings[layout][1] != hw:
        size = readings[layout][1]
        notes.append(
            f"{where}: images are {size[0]}x{size[1]}, {info.name}'s are "
            f"{hw[0]}x{hw[1]} (imported as given, {layout})"
        )
    if layout == "nhwc":
        images = np.ascontiguousarray(images.transpose(0, 3, 1, 2))
    return images


def check_images(images: np.ndarray, where: str, notes: list[str]) -> np.ndarray:
    if images.dtype == np.uint8:
        return images
    if images.dtype.kind == "f":
        if images.dtype == np.float64:
            notes.append(f"{where}: float64 images stored as float32")
            images = images.astype(np.float32)
        if not np.isfinite(images).all():
            raise ImportFormatError(
                f"{where}: images contain NaN or Inf (the set diverged); refusing to import it"
            )
        return images
    raise ImportFormatError(f"{where}: images have dtype {images.dtype}; expected float or uint8")


def hard_labels(labels: np.ndarray, where: str, notes: list[str]) -> np.ndarray:
    if labels.ndim != 1:
        raise ImportFormatError(f"{where}: labels have shape {list(labels.shape)}; expected [N]")
    if labels.dtype.kind == "f":
        if not np.isfinite(labels).all() or not (labels == np.round(labels)).all():
            raise ImportFormatError(f"{where}: float labels [N] must be whole class ids")
        notes.append(f"{where}: float class ids cast to int64")
    elif labels.dtype.kind not in "iu":
        raise ImportFormatError(f"{where}: labels have dtype {labels.dtype}; expected integers")
    return labels.astype(np.int64)


@dataclass
class DecodedSet:
    """What a reader decoded from a file for one set, before :func:`assemble` checks it against the
    dataset and builds its metadata (the per-file context, ``info``/``options``/``notes``, is
    passed beside it)."""

    images: np.ndarray
    labels: np.ndarray | None  # hard labels [N], or None with ``soft``
    soft: np.ndarray | None  # soft labels [N, K]
    where: str  # how messages name the set (file name, experiment)
    default_pixel_space: str  # the format's default (see :data:`PIXEL_SPACES`)
    source: dict[str, Any]  # :func:`source_record`
    method: str | None = None  # None: from the options or the embedded metadata
    method_config: dict[str, Any] = field(default_factory=dict)  # what the file says about the run
    extras: Mapping[str, np.ndarray] = field(default_factory=dict)  # lr, zca_* ...
    embedded: dict[str, Any] | None = None  # dcreg metadata written by ``dcreg export``
    suffix: str = ""  # output-name suffix of one of several sets in a file (``-e0``)


def assemble(decoded: DecodedSet, info: DatasetInfo, options: ImportOptions, notes: list[str]) -> ImportedSet:
    """Check tensors against the dataset and build the metadata of one set."""
    images, labels, soft, extras = decoded.images, decoded.labels, decoded.soft, decoded.extras
    where, method, suffix = decoded.where, decoded.method, decoded.suffix
    k = info.num_classes
    images = check_images(images, where, notes)
    n = images.shape[0]
    if n == 0:
        raise ImportFormatError(f"{where}: the file holds no images")
    tensors: dict[str, np.ndarray] = {"images": images}
    if soft is not None:
        if soft.ndim != 2 or soft.shape != (n, k) or soft.dtype.kind != "f":
            raise ImportFormatError(
                f"{where}: soft labels have shape {list(soft.shape)} "
                f"({soft.dtype}); expected float [{n}, {k}] for {info.name}"
            )
        soft = soft.astype(np.float32) if soft.dtype == np.float64 else soft
        if not np.isfinite(soft).all():
            raise ImportFormatError(f"{where}: soft labels contain NaN or Inf")
        if n % k:
            raise ImportFormatError(
                f"{where}: {n} images are not a multiple of {info.name}'s "
                f"{k} classes, so they cannot be class-balanced"
            )
        ipc = n // k
        tensors["soft_labels"] = soft
        label_kind = "soft"
    else:
        assert labels is not None
        if labels.shape[0] != n:
            raise ImportFormatError(f"{where}: {labels.shape[0]} labels for {n} images")
        if labels.min() < 0 or labels.max() >= k:
            raise ImportOptionError(
                f"{where}: labels span [{labels.min()}, {labels.max()}] but "
                f"{info.name} has classes 0..{k - 1}; check the dataset",
                "dataset",
            )
        counts = np.bincount(labels, minlength=k)
        if not (counts == counts[0]).all():
            lo, hi = int(np.argmin(counts)), int(np.argmax(counts))
            raise ImportFormatError(
                f"{where}: labels are not class-balanced (class {lo} has {counts[lo]} images, "
                f"class {hi} has {counts[hi]}); dcreg/1 needs the same number per class"
            )
        ipc = int(counts[0])
        tensors["labels"] = labels
        label_kind = "hard"
    if options.ipc is not None and options.ipc != ipc:
        raise ImportOptionError(
            f"{where}: ipc {options.ipc} was given but the file holds {ipc} "
            f"images per class ({n} images, {k} classes)",
            "ipc",
        )
    for name, arr in extras.items():
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise ImportFormatError(f"{where}: tensor {name!r} contains NaN or Inf")
        tensors[name] = arr

    emb = dict(decoded.embedded or {})
    digest = emb.pop("__digest__", None)
    if emb and emb.get("dataset") != info.name:
        raise ImportOptionError(
            f"{where}: the file's dcreg metadata says dataset "
            f"{emb.get('dataset')!r}, but the dataset given is "
            f"{info.name!r}",
            "dataset",
        )
    has_zca = all(z in tensors for z in ZCA_TENSOR_NAMES)
    if options.pixel_space is not None:
        pixel_space = resolve_pixel_space(options.pixel_space, info, options.zca_over, has_zca)
    elif "pixel_space" in emb:
        pixel_space = emb["pixel_space"]
    else:
        pixel_space = resolve_pixel_space(decoded.default_pixel_space, info, options.zca_over, has_zca)
    kind = pixel_space.get("kind") if isinstance(pixel_space, dict) else None
    if (images.dtype == np.uint8) != (kind == "uint8"):
        if images.dtype == np.uint8:
            raise ImportOptionError(
                f"{where}: images are uint8, so the pixel space must be uint8, not {kind!r}", "pixel_space"
            )
        raise ImportOptionError(
            f"{where}: pixel space uint8 needs uint8 images, but these are "
            f"{images.dtype}; pick normalized, unit or a zca-* space",
            "pixel_space",
        )

    method = options.method or emb.get("method") or method
    if not method:
        raise ImportOptionError(
            f"{where}: cannot tell which method made this set; give the "
            "method (e.g. dc, dsa, dm, mtt, kip, random)",
            "method",
        )
    method = method.lower()
    # A file written by `dcreg export` carries the original method_config: it wins.
    mc = (
        dict(emb["method_config"])
        if isinstance(emb.get("method_config"), dict)
        else dict(decoded.method_config)
    )
    if label_kind == "hard":
        mc.pop("soft_labels", None)

    class_names = list(info.class_names_or_default())
    if isinstance(emb.get("class_names"), list) and len(emb["class_names"]) == k:
        class_names = emb["class_names"]
    md: dict[str, Any] = {
        "dataset": info.name,
        "num_classes": k,
        "class_names": class_names,
        "image_shape": [int(d) for d in images.shape[1:]],
        "ipc": ipc,
        "method": method,
        "method_config": mc,
        "pixel_space": pixel_space,
        "label_kind": label_kind,
        "seed": options.seed if options.seed is not None else emb.get("seed"),
        "license": options.license or emb.get("license") or "other",
        "source": dict(decoded.source, **({"dcreg_digest": digest} if digest else {})),
    }
    if options.title or emb.get("title"):
        md["title"] = options.title or emb["title"]
    for key in ("description", "citation", "extra", "lineage"):
        if key in emb:
            md[key] = emb[key]
    return ImportedSet(tensors, md, suffix)


def dataset_info(options: ImportOptions) -> DatasetInfo:
    if not options.dataset:
        raise ImportOptionError(
            "the dataset is required (e.g. cifar10); it sets classes and normalization", "dataset"
        )
    return get_dataset_info(options.dataset)


def lr_tensor(lr: np.ndarray, where: str) -> np.ndarray:
    if lr.size != 1 or lr.dtype.kind != "f":
        raise ImportFormatError(
            f"{where}: the learned lr must be one float, found {lr.dtype} {list(lr.shape)}"
        )
    value = np.asarray(lr, dtype=np.float32).reshape(())
    if not np.isfinite(value) or value <= 0:
        raise ImportFormatError(f"{where}: the learned lr must be finite and positive, got {float(value)}")
    return value
