"""harness.data: loaders for every catalog dataset on tiny fake files in the real formats."""

from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from dcregistry.catalog import get_dataset_info, list_datasets
from dcregistry.errors import DatasetNotFoundError, UnknownNameError, UnsafeFileError, ValidationError
from harness.data import (
    LOADERS,
    DatasetFormatError,
    ImageSet,
    class_balanced_indices,
    load_dataset,
    resize_images,
)
from harness.data.raw import CACHE_DIRNAME

from . import fakedata

# ------------------------------------------------------------------------------------ registry


def test_every_catalog_dataset_has_a_loader():
    assert LOADERS.names() == list_datasets()


def test_unknown_dataset_and_split():
    with pytest.raises(UnknownNameError):
        load_dataset("imagenet", "train")
    with pytest.raises(UnknownNameError, match="split"):
        load_dataset("digits", "val")


# ------------------------------------------------------------------------------------ digits


def test_digits_split_sizes_values_and_determinism():
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert isinstance(train, ImageSet) and train.split == "train"
    assert train.images.shape == (1347, 1, 8, 8) and test.images.shape == (450, 1, 8, 8)
    assert train.images.dtype == torch.float32 and train.labels.dtype == torch.int64
    assert torch.equal(train.images * 16, (train.images * 16).round())  # pixels are k/16
    assert train.images.min() == 0 and train.images.max() == 1
    total = torch.bincount(train.labels) + torch.bincount(test.labels)
    assert ((torch.bincount(test.labels) - 0.25 * total).abs() <= 1).all()  # stratified
    assert train.class_names == [str(i) for i in range(10)]
    # the catalog's stats were computed on exactly this train split
    info = get_dataset_info("digits")
    assert train.images.mean().item() == pytest.approx(info.mean[0], abs=1e-4)
    assert train.images.std().item() == pytest.approx(info.std[0], abs=1e-4)
    again = load_dataset("digits", "train")
    assert torch.equal(again.images, train.images) and torch.equal(again.labels, train.labels)


def test_resize_digits_to_32():
    small, big = load_dataset("digits", "test"), load_dataset("digits", "test", image_size=32)
    assert big.images.shape == (450, 1, 32, 32) and big.image_shape == (1, 32, 32)
    assert big.info.image_shape == (1, 8, 8)  # the catalog keeps the on-disk shape
    assert 0.0 <= big.images.min() and big.images.max() <= 1.0
    assert torch.equal(big.labels, small.labels)
    ref = torch.nn.functional.interpolate(small.images, size=(32, 32), mode="bilinear", antialias=True)
    assert torch.allclose(big.images, ref.clamp(0, 1))
    assert abs(big.images.mean() - small.images.mean()) < 0.01
    down = resize_images(big.images, 8)  # antialiased downsampling back is close to the original
    assert (down - small.images).abs().mean() < 0.1


# ------------------------------------------------------------------------------------ MNIST idx


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashionmnist", "FashionMNIST")])
def test_mnist_idx(tmp_path, gz, name, folder):
    written = fakedata.write_mnist(tmp_path, folder, gz=gz)
    for split in ("train", "test"):
        s = load_dataset(name, split, tmp_path)
        images, labels = written[split]
        assert s.images.shape == (len(labels), 1, 28, 28)
        assert torch.allclose(s.images[:, 0], torch.from_numpy(images).float() / 255)
        assert s.labels.tolist() == labels.tolist()
    assert s.class_names == list(get_dataset_info(name).class_names)


def test_idx_bad_magic_and_truncation_name_the_file(tmp_path):
    fakedata.write_mnist(tmp_path)
    raw = tmp_path / "MNIST" / "raw"
    labels = raw / "train-labels-idx1-ubyte"
    labels.write_bytes(b"\x00\x00\x08\x03" + labels.read_bytes()[4:])  # idx3 magic on a label file
    with pytest.raises(DatasetFormatError, match="train-labels-idx1-ubyte.*magic number 0x00000803"):
        load_dataset("mnist", "train", tmp_path)
    images = raw / "t10k-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-5])
    with pytest.raises(DatasetFormatError, match="t10k-images-idx3-ubyte.*bytes") as info:
        load_dataset("mnist", "test", tmp_path)
    assert "\n" not in str(info.value)
    gz = raw / "t10k-labels-idx1-ubyte.gz"
    (raw / "t10k-images-idx3-ubyte").unlink()
    fakedata.write_idx(raw / "t10k-images-idx3-ubyte", np.zeros((4, 28, 28), np.uint8), gz=True)
    (raw / "t10k-labels-idx1-ubyte").unlink()
    gz.write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x04abcd")[:-10])  # truncated gzip
    with pytest.raises(DatasetFormatError, match="t10k-labels-idx1-ubyte.gz"):
        load_dataset("mnist", "test", tmp_path)


# ------------------------------------------------------------------------------------ USPS, SVHN


def test_usps_libsvm_bz2(tmp_path):
    written = fakedata.write_usps(tmp_path)
    for split in ("train", "test"):
        s = load_dataset("usps", split, tmp_path)
        vals, labels = written[split]
        assert s.images.shape == (len(labels), 1, 16, 16)
        expected = torch.from_numpy((vals + 1) / 2).float().reshape(-1, 1, 16, 16)
        assert torch.allclose(s.images, expected, atol=1e-6)
        assert s.labels.tolist() == (labels - 1).tolist()


def test_svhn_mat(tmp_path):
    written = fakedata.write_svhn(tmp_path)
    s = load_dataset("svhn", "train", tmp_path)
    x, y = written["train"]
    assert s.images.shape == (5, 3, 32, 32)
    assert s.labels.tolist() == [1, 2, 3, 4, 5]
    assert (s.labels == 0).sum() == 0
    # pixel (row 3, col 5, channel 2) of image 4
    assert s.images[4, 2, 3, 5].item() == pytest.approx(x[3, 5, 2, 4] / 255)
    t = load_dataset("svhn", "test", tmp_path)
    assert t.labels.tolist() == [1, 2, 3]
    y10 = fakedata.write_svhn(tmp_path / "ten", n_train=10)["train"][1]
    s10 = load_dataset("svhn", "train", tmp_path / "ten")
    assert int(y10[9, 0]) == 10 and s10.labels[9].item() == 0  # label 10 is digit 0


# ------------------------------------------------------------------------------------ CIFAR


@pytest.mark.parametrize("protocol", [2, 5])
def test_cifar10_batches(tmp_path, protocol):
    written = fakedata.write_cifar10(tmp_path, protocol=protocol)
    train = load_dataset("cifar10", "train", tmp_path)
    x, y = written["train"]
    assert train.images.shape == (15, 3, 32, 32)
    assert torch.equal(train.labels, torch.from_numpy(y))
    assert torch.allclose(train.images, torch.from_numpy(x.reshape(-1, 3, 32, 32)).float() / 255)
    assert train.images[4, 1, 2, 3].item() == pytest.approx(
        x[4, 1024 + 2 * 32 + 3] / 255
    )  # channel-major rows
    test = load_dataset("cifar10", "test", tmp_path)
    assert test.labels.tolist() == written["test"][1].tolist()
    assert test.class_names[0] == "airplane" and test.class_names[9] == "truck"


def test_cifar_pickle_with_legacy_numpy_module_names(tmp_path):
    """The real files name numpy.core.multiarray (numpy 1.x), which numpy 2 moved to numpy._core."""
    written = fakedata.write_cifar10(tmp_path, protocol=2)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    blob = path.read_bytes()
    assert b"numpy._core.multiarray" in blob
    path.write_bytes(blob.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    s = load_dataset("cifar10", "test", tmp_path)
    assert torch.allclose(s.images, torch.from_numpy(written["test"][0].reshape(-1, 3, 32, 32)).float() / 255)


def test_cifar100_uses_fine_labels(tmp_path):
    written = fakedata.write_cifar100(tmp_path)
    s = load_dataset("cifar100", "train", tmp_path)
    assert s.labels.tolist() == written["train"][1].tolist()
    assert max(s.labels.tolist()) > 19  # fine (100) not coarse (20) labels
    assert len(s.class_names) == 100 and s.class_names[0] == "apple"


class _Evil:
    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


class _EvalEvil:
    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (eval, (f"open({str(self.target)!r}, 'w').close()",))


@pytest.mark.parametrize("evil_cls", [_Evil, _EvalEvil])
def test_malicious_cifar_pickle_is_refused_and_not_run(tmp_path, evil_cls):
    fakedata.write_cifar10(tmp_path)
    target = tmp_path / "pwned"
    payload = {b"data": evil_cls(target), b"labels": [0, 1, 2]}
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(UnsafeFileError, match="data_batch_3.*refused to unpickle") as info:
        load_dataset("cifar10", "train", tmp_path)
    assert "\n" not in str(info.value)
    assert not target.exists()


def test_cifar_garbage_and_wrong_keys(tmp_path):
    fakedata.write_cifar10(tmp_path)
    base = tmp_path / "cifar-10-batches-py"
    (base / "test_batch").write_bytes(b"not a pickle at all")
    with pytest.raises(DatasetFormatError, match="test_batch.*not a readable pickle"):
        load_dataset("cifar10", "test", tmp_path)
    (base / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}, protocol=2))
    with pytest.raises(DatasetFormatError, match="test_batch.*'labels'"):
        load_dataset("cifar10", "test", tmp_path)


# ------------------------------------------------------------------------------------ Tiny ImageNet


def test_tinyimagenet_tree_class_order_and_cache(tmp_path):
    meta = fakedata.write_tinyimagenet(tmp_path)
    train = load_dataset("tinyimagenet", "train", tmp_path)
    assert train.class_names == meta["sorted"] != meta["wnids"]
    assert train.images.shape == (201, 3, 64, 64)
    k0 = meta["sorted"].index(meta["wnids"][0])  # the class with an extra, grayscale JPEG
    counts = torch.bincount(train.labels, minlength=200)
    assert counts[k0] == 2 and counts.sum() == 201 and counts.min() == 1
    # every image is a flat color that encodes its class in sorted-wnid order
    colors = (train.images[:, :, 32, 32] * 255).round()
    gray = [i for i in range(len(train)) if train.labels[i] == k0 and (colors[i] - 128).abs().max() <= 2]
    assert len(gray) == 1, "the grayscale JPEG must be converted to RGB"
    for i in range(len(train)):
        if i not in gray:
            expected = torch.tensor(fakedata.class_color(train.labels[i].item()), dtype=torch.float32)
            assert (colors[i] - expected).abs().max() <= 3  # JPEG error on a flat color
    cache = list((tmp_path / CACHE_DIRNAME).glob("tinyimagenet-train-*.npz"))
    assert len(cache) == 1
    again = load_dataset("tinyimagenet", "train", tmp_path)
    assert torch.equal(again.images, train.images) and again.class_names == train.class_names

    test = load_dataset("tinyimagenet", "test", tmp_path)
    names = sorted(meta["val_labels"])
    assert test.labels.tolist() == [meta["val_labels"][n] for n in names]
    # changing a file invalidates the cache (new key, old file removed)
    first = (
        tmp_path / "tiny-imagenet-200" / "train" / meta["wnids"][5] / "images" / f"{meta['wnids'][5]}_0.JPEG"
    )
    first.write_bytes(fakedata._jpeg_bytes((0, 0, 0)))
    changed = load_dataset("tinyimagenet", "train", tmp_path)
    k = meta["sorted"].index(meta["wnids"][5])
    assert (changed.images[changed.labels == k] * 255).max() <= 3
    assert len(list((tmp_path / CACHE_DIRNAME).glob("tinyimagenet-train-*.npz"))) == 1


# ------------------------------------------------------------------------------------ Hugging Face


def _pil(arr: np.ndarray):
    from PIL import Image

    return Image.fromarray(arr)


def test_hf_save_to_disk_cifar10(tmp_path):
    import datasets

    rng = np.random.default_rng(1)
    names = list(get_dataset_info("cifar10").class_names)
    arrays = {s: rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8) for s, n in (("train", 6), ("test", 3))}
    labels = {"train": [0, 1, 2, 9, 8, 7], "test": [5, 4, 3]}
    dd = datasets.DatasetDict(
        {s: fakedata.hf_image_dataset([_pil(a) for a in arrays[s]], labels[s], names) for s in arrays}
    )
    dd.save_to_disk(str(tmp_path / "cifar10"))
    s = load_dataset("cifar10", "train", tmp_path)
    assert s.labels.tolist() == labels["train"]
    assert torch.allclose(s.images, torch.from_numpy(arrays["train"]).permute(0, 3, 1, 2).float() / 255)
    assert load_dataset("cifar10", "test", tmp_path).labels.tolist() == labels["test"]
    assert s.source.startswith("hf-dict:")


def test_hf_parquet_mnist_hub_layout(tmp_path):
    rng = np.random.default_rng(2)
    names = [str(i) for i in range(10)]
    expected = {}
    for split, n in (("train", 5), ("test", 3)):
        arr = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        ds = fakedata.hf_image_dataset([_pil(a) for a in arr], list(range(n)), names, image_col="image")
        ds.to_parquet(str(tmp_path / "mnist" / "mnist" / f"{split}-00000-of-00001.parquet"))
        expected[split] = arr
    s = load_dataset("mnist", "train", tmp_path, image_size=32)
    assert s.images.shape == (5, 1, 32, 32)
    t = load_dataset("mnist", "test", tmp_path)
    assert t.images.shape == (3, 1, 28, 28) and t.labels.tolist() == [0, 1, 2]
    assert torch.allclose(t.images[:, 0], torch.from_numpy(expected["test"]).float() / 255)
    assert t.source.startswith("hf-parquet:")


def test_hf_classlabel_names_are_mapped_to_catalog_order(tmp_path):
    import datasets

    catalog = list(get_dataset_info("fashionmnist").class_names)
    hf_names = [n.replace("-", " - ").replace("/", " / ") for n in reversed(catalog)]  # 'T - shirt / top'
    arr = np.zeros((3, 28, 28), np.uint8)
    ds = fakedata.hf_image_dataset([_pil(a) for a in arr], [0, 1, 9], hf_names, image_col="image")
    datasets.DatasetDict({"train": ds, "test": ds}).save_to_disk(str(tmp_path / "fashionmnist"))
    s = load_dataset("fashionmnist", "train", tmp_path)
    assert s.labels.tolist() == [9, 8, 0]
    assert s.class_names == catalog


def test_hf_tinyimagenet_valid_split_sorted_wnids(tmp_path):
    from PIL import Image

    wnids = fakedata.fake_wnids()
    imgs = [Image.new("RGB", (64, 64), (10, 20, 30)), Image.new("L", (64, 64), 200)]
    ds = fakedata.hf_image_dataset(imgs, [0, 1], wnids, image_col="image")
    ds.to_parquet(str(tmp_path / "tinyimagenet" / "data" / "valid-00000-of-00001-abc.parquet"))
    s = load_dataset("tinyimagenet", "test", tmp_path)
    order = sorted(wnids)
    assert s.class_names == order
    assert s.labels.tolist() == [order.index(wnids[0]), order.index(wnids[1])]
    assert s.images.shape == (2, 3, 64, 64)
    with pytest.raises(DatasetFormatError, match="no train split"):
        load_dataset("tinyimagenet", "train", tmp_path)


# ------------------------------------------------------------------------------------ not found


@pytest.mark.parametrize(
    "name,expect",
    [
        ("mnist", "MNIST/raw/"),
        ("fashionmnist", "FashionMNIST/raw/"),
        ("usps", "usps.bz2"),
        ("svhn", "train_32x32.mat"),
        ("cifar10", "cifar-10-batches-py/ (data_batch_1..5, test_batch)"),
        ("cifar100", "cifar-100-python/"),
        ("tinyimagenet", "tiny-imagenet-200/"),
    ],
)
def test_missing_dataset_message(tmp_path, name, expect):
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset(name, "train", tmp_path)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{name} not found under {tmp_path}: put ")
    assert expect in msg and f"Hugging Face datasets directory at {tmp_path / name}" in msg


def test_partial_layout_names_missing_file(tmp_path):
    fakedata.write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(DatasetNotFoundError, match="missing .*data_batch_4"):
        load_dataset("cifar10", "train", tmp_path)
    assert len(load_dataset("cifar10", "test", tmp_path)) == 4  # the test split is complete


def test_default_root_from_env(tmp_path, monkeypatch):
    fakedata.write_usps(tmp_path / "envroot")
    monkeypatch.setenv("HARNESS_DATA", str(tmp_path / "envroot"))
    assert len(load_dataset("usps", "test")) == 3
    monkeypatch.setenv("HARNESS_DATA", str(tmp_path / "elsewhere"))
    with pytest.raises(DatasetNotFoundError, match="elsewhere"):
        load_dataset("usps", "test")


# ------------------------------------------------------------------------------------ sampling


def test_class_balanced_indices():
    labels = torch.tensor([0, 1, 2] * 10 + [1, 1])
    g = torch.Generator().manual_seed(0)
    idx = class_balanced_indices(labels, 4, g)
    assert idx.dtype == torch.int64 and idx.shape == (12,)
    assert labels[idx].tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert len(set(idx.tolist())) == 12
    same = class_balanced_indices(labels, 4, torch.Generator().manual_seed(0))
    other = class_balanced_indices(labels, 4, torch.Generator().manual_seed(1))
    assert torch.equal(idx, same) and not torch.equal(idx, other)
    with pytest.raises(ValidationError, match="class 0 has 10 images, fewer than the 11"):
        class_balanced_indices(labels, 11, g)
    with pytest.raises(ValidationError, match="class 3 has 0 images"):
        class_balanced_indices(labels, 1, g, num_classes=4)


def test_resize_refuses_a_huge_size_before_allocating():
    import torch

    from dcregistry.errors import UserError
    from harness.data.base import MAX_IMAGE_SIZE, resize_images

    with pytest.raises(UserError, match="larger than the harness supports"):
        resize_images(torch.zeros(2, 1, 8, 8), MAX_IMAGE_SIZE + 1)
