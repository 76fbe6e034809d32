"""Hostile dataset files: every reader checks declared sizes before allocating, and a malformed
file is a one-line DatasetFormatError (a UserError), never another exception.

Cases that would allocate gigabytes on a reader that trusts a header run in a subprocess with a
capped address space, so a regression fails the test (MemoryError) instead of the machine."""

from __future__ import annotations

import bz2
import gzip
import json
import os
import pickle
import resource
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.data import DatasetFormatError, load_dataset

from . import fakedata

ROOT = Path(__file__).resolve().parents[2]
_SCRIPT = """
import sys
from dcregistry.errors import UserError
from harness.data import load_dataset
try:
    load_dataset(sys.argv[1], sys.argv[2], sys.argv[3])
except UserError as exc:
    print(type(exc).__name__, exc, file=sys.stderr)
    sys.exit(1)
"""


def load_limited(name: str, split: str, root: Path, limit: int = 3 << 30) -> subprocess.CompletedProcess:
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-c", _SCRIPT, name, split, str(root)],
        env=env,
        capture_output=True,
        text=True,
        preexec_fn=cap,
        timeout=120,
    )


def assert_refused(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("DatasetFormatError"), proc.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])


def test_cifar_shared_nested_label_lists_are_refused_before_expanding(tmp_path):
    """9 KB on disk; np.asarray of the labels would be 10^9 int64s (8 GB)."""
    fakedata.write_cifar10(tmp_path)
    inner = [0] * 1000
    middle = [inner] * 1000
    labels = [middle] * 1000
    obj = {b"data": np.zeros((3, 3072), np.uint8), b"labels": labels, b"batch_label": b"x"}
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(pickle.dumps(obj, protocol=2))
    assert path.stat().st_size < 20_000
    assert_refused(load_limited("cifar10", "test", tmp_path), "test_batch")


def test_cifar_deep_tuple_key_is_refused_without_crashing(tmp_path):
    """Hashing a 200,000-deep tuple key overflows CPython's C stack (a segfault, exit -11)."""
    fakedata.write_cifar10(tmp_path)
    deep_key = b"K\x01" + b"\x85" * 200_000
    pk = b"\x80\x02}" + deep_key + b"K\x01s."
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(pk)
    assert_refused(load_limited("cifar10", "test", tmp_path), "nested")


def test_mnist_idx_dimensions_are_exact_and_checked_against_the_file(tmp_path):
    fakedata.write_mnist(tmp_path)
    path = tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    # (2^31)^3 wraps to 0 in int64: a header-only file "matched" its dimensions.
    path.write_bytes(struct.pack(">I", 0x0803) + struct.pack(">3I", 2**31, 2**31, 2**31))
    with pytest.raises(DatasetFormatError, match="idx header"):
        load_dataset("mnist", "test", tmp_path)


def test_mnist_gzip_bomb_is_refused(tmp_path):
    fakedata.write_mnist(tmp_path, gz=True)
    n = 100_000  # 78 MB of zeros, ~80 KB gzipped
    header = struct.pack(">I", 0x0803) + struct.pack(">3I", n, 28, 28)
    path = tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz"
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(header)
        chunk = bytes(28 * 28 * 1000)
        for _ in range(n // 1000):
            f.write(chunk)
    assert_refused(load_limited("mnist", "test", tmp_path, limit=3 << 30), "expands")


def test_usps_rows_are_capped(tmp_path, monkeypatch):
    fakedata.write_usps(tmp_path)
    (tmp_path / "usps.t.bz2").write_bytes(bz2.compress(b"1 1:0.5\n" * 2000))
    monkeypatch.setenv("DCREG_MAX_INPUT_BYTES", str(1 << 20))  # 2000 rows x 1 KB > 1 MB
    with pytest.raises(DatasetFormatError, match="cap"):
        load_dataset("usps", "test", tmp_path)


def test_usps_endless_line_is_refused(tmp_path):
    fakedata.write_usps(tmp_path)
    (tmp_path / "usps.t.bz2").write_bytes(bz2.compress(b"1" + b" " * 200_000 + b"\n"))
    with pytest.raises(DatasetFormatError, match="longer than"):
        load_dataset("usps", "test", tmp_path)


def test_svhn_compressed_variable_bomb_is_refused(tmp_path):
    import scipy.io

    fakedata.write_svhn(tmp_path)
    n = 20_000  # X is 61 MB of zeros, ~60 KB compressed
    scipy.io.savemat(
        tmp_path / "test_32x32.mat",
        {"X": np.zeros((32, 32, 3, n), np.uint8), "y": np.ones((n, 1), np.uint8)},
        do_compression=True,
    )
    assert (tmp_path / "test_32x32.mat").stat().st_size < 2 << 20
    with pytest.raises(DatasetFormatError, match="expands"):
        load_dataset("svhn", "test", tmp_path)


@pytest.mark.parametrize("garbage", [b"not parquet at all" * 100, b"PAR1garbagePAR1"])
def test_garbage_parquet_is_one_user_error(tmp_path, garbage, capfd):
    d = tmp_path / "mnist"
    d.mkdir()
    (d / "test-00000-of-00001.parquet").write_bytes(garbage)
    with pytest.raises(DatasetFormatError, match="parquet"):
        load_dataset("mnist", "test", tmp_path)
    assert capfd.readouterr().err == ""  # no second line logged by `datasets`


def test_deep_dataset_dict_json_is_a_user_error(tmp_path):
    d = tmp_path / "mnist"
    d.mkdir()
    (d / "dataset_dict.json").write_text('{"splits": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(DatasetFormatError, match="nests"):
        load_dataset("mnist", "test", tmp_path)


def test_hf_image_larger_than_the_dataset_is_refused_before_decoding(tmp_path):
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (4000, 4000)).save(buf, format="PNG")
    import datasets

    ds = datasets.Dataset.from_dict(
        {"image": [{"bytes": buf.getvalue(), "path": None}], "label": [0]},
        features=datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64")}),
    )
    datasets.DatasetDict({"test": ds, "train": ds}).save_to_disk(str(tmp_path / "mnist"))
    with pytest.raises(DatasetFormatError, match="4000x4000"):
        load_dataset("mnist", "test", tmp_path)
    json.loads((tmp_path / "mnist" / "dataset_dict.json").read_text())  # layout was valid


def test_hostile_dataset_cache_is_rebuilt_without_allocating(tmp_path):
    """A cache .npz whose member expands 1000x is ignored (and rebuilt), never inflated."""
    from harness.data.raw import CACHE_DIRNAME, RawSplit, cached_split

    cache = tmp_path / CACHE_DIRNAME
    cache.mkdir()
    np.savez_compressed(
        cache / "x-k.npz",
        images=np.zeros((20_000, 1, 32, 32), np.uint8),
        labels=np.zeros(20_000, np.int64),
        source=np.array("s"),
    )
    built = []

    def build() -> RawSplit:
        built.append(1)
        return RawSplit(np.zeros((2, 1, 8, 8), np.uint8), np.zeros(2, np.int64), None, "fresh")

    with pytest.warns(UserWarning, match="expands"):
        raw = cached_split(tmp_path, "x", "k", build)
    assert built and raw.source == "fresh"


def test_dataset_cache_write_on_a_full_disk_warns_and_leaves_nothing(tmp_path, monkeypatch):
    """The cache is written through fsio's staged write: a full disk costs only the cache."""
    import errno

    import dcregistry.fsio as fsio
    from harness.data.raw import CACHE_DIRNAME, RawSplit, cached_split

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fsio.os, "fsync", full)
    raw = RawSplit(np.zeros((2, 1, 8, 8), np.uint8), np.zeros(2, np.int64), None, "fresh")
    with pytest.warns(UserWarning, match="could not write dataset cache.*out of space|no space"):
        got = cached_split(tmp_path, "x", "k", lambda: raw)
    assert got is raw
    assert list((tmp_path / CACHE_DIRNAME).iterdir()) == []  # no cache, no temp file
