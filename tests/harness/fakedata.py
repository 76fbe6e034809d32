"""Writers of tiny fake datasets in the REAL on-disk formats (idx, LIBSVM bz2, .mat, CIFAR pickles,
tiny-imagenet JPEG tree, Hugging Face save_to_disk / parquet), for the loader tests."""

from __future__ import annotations

import bz2
import gzip
import io
import pickle
import struct
from pathlib import Path

import numpy as np

CIFAR10_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    """Write a uint8 idx file (magic 0x0000080N, big-endian dims) optionally gzipped."""
    array = np.asarray(array, dtype=np.uint8)
    header = struct.pack(">I", (0x08 << 8) | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    blob = header + array.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as f:
            f.write(blob)
    else:
        path.write_bytes(blob)
    return path


def write_mnist(
    root: Path, folder: str = "MNIST", n_train: int = 6, n_test: int = 4, gz: bool = False, seed: int = 0
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = {}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        write_idx(root / folder / "raw" / f"{prefix}-images-idx3-ubyte", images, gz)
        write_idx(root / folder / "raw" / f"{prefix}-labels-idx1-ubyte", labels, gz)
        out[split] = (images, labels)
    return out


def write_usps(
    root: Path, n_train: int = 5, n_test: int = 3, seed: int = 0
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """LIBSVM lines ``<1..10> 1:v ... 256:v`` with v in [-1, 1], bzip2-compressed."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, name, n in (("train", "usps.bz2", n_train), ("test", "usps.t.bz2", n_test)):
        vals = np.round(rng.uniform(-1, 1, (n, 256)), 6)
        labels = np.arange(n) % 10 + 1
        lines = [
            f"{lab} " + " ".join(f"{j + 1}:{v:.6f}" for j, v in enumerate(row))
            for lab, row in zip(labels, vals, strict=True)
        ]
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(bz2.compress(("\n".join(lines) + "\n").encode()))
        out[split] = (vals, labels)
    return out


def write_svhn(
    root: Path, n_train: int = 5, n_test: int = 3, seed: int = 0
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``X`` uint8 [32, 32, 3, N] and ``y`` [N, 1] in 1..10 (10 = digit 0), via scipy.io.savemat."""
    import scipy.io

    rng = np.random.default_rng(seed)
    out = {}
    for split, name, n in (("train", "train_32x32.mat", n_train), ("test", "test_32x32.mat", n_test)):
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        y = (np.arange(n) % 10 + 1).reshape(n, 1).astype(np.uint8)
        root.mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(root / name, {"X": x, "y": y})
        out[split] = (x, y)
    return out


def cifar_batch_bytes(
    data: np.ndarray, labels: list[int], label_key: bytes = b"labels", protocol: int = 2
) -> bytes:
    """A CIFAR batch as the real files hold it: a pickled dict with bytes keys."""
    obj = {
        b"batch_label": b"fake batch",
        label_key: list(labels),
        b"data": data,
        b"filenames": [f"img_{i}.png".encode() for i in range(len(labels))],
    }
    if label_key == b"fine_labels":
        obj[b"coarse_labels"] = [lab // 5 for lab in labels]
    return pickle.dumps(obj, protocol=protocol)


def write_cifar10(root: Path, per_batch: int = 3, n_test: int = 4, seed: int = 0, protocol: int = 2):
    rng = np.random.default_rng(seed)
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True, exist_ok=True)
    train_x, train_y = [], []
    for i, name in enumerate(CIFAR10_BATCHES):
        x = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        y = [int(v) for v in (np.arange(per_batch) + i) % 10]
        (base / name).write_bytes(cifar_batch_bytes(x, y, protocol=protocol))
        train_x.append(x)
        train_y += y
    x = rng.integers(0, 256, (n_test, 3072), dtype=np.uint8)
    y = [int(v) for v in np.arange(n_test) % 10]
    (base / "test_batch").write_bytes(cifar_batch_bytes(x, y, protocol=protocol))
    return {"train": (np.concatenate(train_x), np.array(train_y)), "test": (x, np.array(y))}


def write_cifar100(root: Path, n_train: int = 5, n_test: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    base = root / "cifar-100-python"
    base.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        x = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        y = [int(v) for v in (np.arange(n) * 37 + 3) % 100]
        (base / split).write_bytes(cifar_batch_bytes(x, y, label_key=b"fine_labels"))
        out[split] = (x, np.array(y))
    return out


def fake_wnids(n: int = 200) -> list[str]:
    """WordNet-style ids, deliberately NOT in sorted order."""
    return [f"n{(i * 7919 * 31) % 99991:08d}" for i in range(1, n + 1)]


def _jpeg_bytes(color: tuple[int, int, int], mode: str = "RGB", size: int = 64) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    img = Image.new("RGB", (size, size), color)
    if mode != "RGB":
        img = img.convert(mode)
    img.save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def class_color(k: int) -> tuple[int, int, int]:
    return ((k * 37) % 256, (k * 91) % 256, (k * 53) % 256)


def write_tinyimagenet(root: Path, n_classes: int = 200, n_val: int = 5) -> dict:
    """One flat-colored 64x64 JPEG per class in train (two for the first listed wnid, one of them
    grayscale), ``n_val`` val images with annotations. Colors encode the class for checking."""
    base = root / "tiny-imagenet-200"
    wnids = fake_wnids(n_classes)
    base.mkdir(parents=True, exist_ok=True)
    (base / "wnids.txt").write_text("\n".join(wnids) + "\n")
    order = sorted(wnids)
    for w in wnids:
        d = base / "train" / w / "images"
        d.mkdir(parents=True, exist_ok=True)
        k = order.index(w)
        (d / f"{w}_0.JPEG").write_bytes(_jpeg_bytes(class_color(k)))
        (d / f"{w}_0.txt").write_text("box")  # the real tree has these non-image files too
    (base / "train" / wnids[0] / "images" / f"{wnids[0]}_1.JPEG").write_bytes(
        _jpeg_bytes((128, 128, 128), mode="L")
    )
    vdir = base / "val" / "images"
    vdir.mkdir(parents=True, exist_ok=True)
    ann = []
    val_labels = {}
    for i in range(n_val):
        w = wnids[(i * 13) % n_classes]
        name = f"val_{i}.JPEG"
        (vdir / name).write_bytes(_jpeg_bytes(class_color(order.index(w))))
        ann.append(f"{name}\t{w}\t0\t0\t63\t63")
        val_labels[name] = order.index(w)
    (base / "val" / "val_annotations.txt").write_text("\n".join(ann) + "\n")
    return {"wnids": wnids, "sorted": order, "val_labels": val_labels}


def hf_image_dataset(
    images: list, labels: list[int], names: list[str], image_col: str = "img", label_col: str = "label"
):
    """A ``datasets.Dataset`` with an Image column and a ClassLabel column."""
    import datasets

    feats = datasets.Features({image_col: datasets.Image(), label_col: datasets.ClassLabel(names=names)})
    return datasets.Dataset.from_dict({image_col: images, label_col: labels}, features=feats)
