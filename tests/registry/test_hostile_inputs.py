"""Hostile files and paths given to `dcreg import` / `dcreg export`: each is refused with exit 1,
one line on stderr, nothing written or replaced, and no large allocation before the refusal."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from .io_helpers import (  # noqa: F401  (dcreg is a fixture)
    assert_one_line_error,
    balanced_labels,
    dcreg,
    normalized_images,
    nothing_written,
    write_dc_pt,
)

torch = pytest.importorskip("torch")
ROOT = Path(__file__).resolve().parents[2]


def run_limited(args: list[str], limit_bytes: int, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run ``dcreg ARGS`` in a process whose address space is capped at ``limit_bytes``: a reader
    that trusts a declared size dies with MemoryError (exit 2) instead of exhausting the machine."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": "1",
        "DCREG_HOME": str(tmp_path / "home"),
    }
    return subprocess.run(
        [sys.executable, "-c", "from dcregistry.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=limit,
        timeout=120,
    )


def assert_subprocess_refused(proc: subprocess.CompletedProcess, *needles: str) -> None:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("dcreg: error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def imp(dcreg, path, out, *extra, fmt="npz"):
    return dcreg("import", path, "--format", fmt, "--dataset", "cifar10", "--method", "dc", "-o", out, *extra)


# ------------------------------------------------------------------------------ .npz bombs


def test_npz_decompression_bomb_is_refused_before_decompressing(dcreg, tmp_path):
    n = 21_850  # 21,850 x 3x32x32 uint8 = 64 MB of zeros, ~65 KB compressed
    path = tmp_path / "bomb.npz"
    np.savez_compressed(
        path, images=np.zeros((n, 3, 32, 32), np.uint8), labels=np.repeat(np.arange(10), n // 10)
    )
    assert path.stat().st_size < 1 << 20
    out = tmp_path / "o"
    assert_one_line_error(imp(dcreg, path, out), "bomb.npz", "images", "expands")
    assert nothing_written(tmp_path, "o")


def test_npz_total_size_is_capped(dcreg, tmp_path, monkeypatch):
    path = tmp_path / "set.npz"
    np.savez(path, images=normalized_images(10) * 0 + 0.5, labels=balanced_labels(10, 1))
    monkeypatch.setenv("DCREG_MAX_INPUT_BYTES", "100000")  # images alone are 122,880 bytes
    assert_one_line_error(imp(dcreg, path, tmp_path / "o"), "cap", "DCREG_MAX_INPUT_BYTES")
    assert nothing_written(tmp_path, "o")


def test_npz_unused_arrays_are_never_decompressed(dcreg, tmp_path):
    """An array the importer ignores is not even inflated (here it is a corrupt deflate stream)."""
    path = tmp_path / "set.npz"
    np.savez_compressed(
        path, images=normalized_images(10) * 0 + 0.5, labels=balanced_labels(10, 1), junk=np.zeros(1 << 16)
    )
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("junk.npy")
    # Corrupt the compressed bytes well past the .npy header (local header + name + 30).
    start = info.header_offset + 30 + len(info.filename) + 200
    raw[start : start + 64] = b"\xff" * 64
    path.write_bytes(bytes(raw))
    r = imp(dcreg, path, tmp_path / "o")
    assert r.code == 0, r.err
    assert "ignored array 'junk'" in r.err


def test_npz_header_larger_than_member_is_refused(dcreg, tmp_path):
    import io

    from numpy.lib import format as npy

    buf = io.BytesIO()
    npy.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": (100_000, 3, 32, 32)})
    path = tmp_path / "lie.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("images.npy", buf.getvalue() + b"\0" * 64)
        zf.writestr("labels.npy", b"")
    assert_one_line_error(imp(dcreg, path, tmp_path / "o"), "images", "declares")


def test_single_npy_says_what_is_expected(dcreg, tmp_path):
    path = tmp_path / "images.npy"
    np.save(path, normalized_images(10))
    assert_one_line_error(
        imp(dcreg, path, tmp_path / "o"), "single NumPy array", "images", "labels", "numpy.savez"
    )
    assert nothing_written(tmp_path, "o")


# ------------------------------------------------------------------------------ .pt bombs


def test_pt_zero_stride_bomb_is_refused_without_allocating(tmp_path):
    """1.7 KB on disk, 5 GB once made contiguous: refused inside a 3 GB address space."""
    path = tmp_path / "res_DC_cifar10_ConvNet_1ipc.pt"
    images = torch.zeros(1).expand(10 * 3 * 32 * 32 * 41_000 // 10)  # > 5e9 bytes as float32
    torch.save({"data": [[images.reshape(-1, 3, 32, 32), torch.arange(10)]], "accs_all_exps": {}}, path)
    assert path.stat().st_size < 4096
    proc = run_limited(
        ["import", str(path), "--format", "dc-pt", "--dataset", "cifar10", "-o", str(tmp_path / "o")],
        3 << 30,
        tmp_path,
    )
    assert_subprocess_refused(proc, "strides")
    assert nothing_written(tmp_path, "o")


def test_pt_zero_stride_bomb_in_datadam_layout_is_refused_too(tmp_path):
    """DataDAM's single-pair {'data': [images, labels]} goes through the same tensor checks."""
    path = tmp_path / "syn_data_cifar10_ipc_1.pt"
    images = torch.zeros(1).expand(10 * 3 * 32 * 32 * 41_000 // 10)
    torch.save({"data": [images.reshape(-1, 3, 32, 32), torch.arange(10)]}, path)
    proc = run_limited(
        [
            "import",
            str(path),
            "--format",
            "dc-pt",
            "--dataset",
            "cifar10",
            "--method",
            "datadam",
            "-o",
            str(tmp_path / "o"),
        ],
        3 << 30,
        tmp_path,
    )
    assert_subprocess_refused(proc, "strides")
    assert nothing_written(tmp_path, "o")


@pytest.mark.parametrize("kind", ["sparse", "meta"])
def test_pt_sparse_or_meta_tensors_are_exit_1(dcreg, tmp_path, kind):
    path = tmp_path / "res_DC_cifar10_ConvNet_1ipc.pt"
    images = torch.from_numpy(normalized_images(10))
    images = images.to_sparse() if kind == "sparse" else torch.empty(10, 3, 32, 32, device="meta")
    torch.save({"data": [[images, torch.arange(10)]], "accs_all_exps": {}}, path)
    r = dcreg("import", path, "--format", "dc-pt", "--dataset", "cifar10", "-o", tmp_path / "o")
    assert_one_line_error(r, "dense" if kind == "sparse" else "device")
    assert nothing_written(tmp_path, "o")


def test_pt_legacy_format_is_refused_with_a_way_out(dcreg, tmp_path):
    path = tmp_path / "res_DC_cifar10_ConvNet_1ipc.pt"
    torch.save(
        {"data": [[torch.from_numpy(normalized_images(10)), torch.arange(10)]], "accs_all_exps": {}},
        path,
        _use_new_zipfile_serialization=False,
    )
    r = dcreg("import", path, "--format", "dc-pt", "--dataset", "cifar10", "-o", tmp_path / "o")
    assert_one_line_error(r, "legacy", "torch.save")


def test_pt_records_are_capped_before_torch_load(dcreg, tmp_path, monkeypatch):
    path = write_dc_pt(
        tmp_path / "res_DC_cifar10_ConvNet_1ipc.pt", [(normalized_images(10), balanced_labels(10, 1))]
    )
    monkeypatch.setenv("DCREG_MAX_INPUT_BYTES", "50000")
    r = dcreg("import", path, "--format", "dc-pt", "--dataset", "cifar10", "-o", tmp_path / "o")
    assert_one_line_error(r, "record", "cap")


def _torch_zip_with_pickle(path: Path, pickle_bytes: bytes) -> Path:
    """A torch.save zip whose data.pkl is replaced by hand-written pickle opcodes."""
    torch.save({"data": 1}, path)
    with zipfile.ZipFile(path) as zin:
        items = [(info, zin.read(info.filename)) for info in zin.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zout:
        for info, data in items:
            zout.writestr(info, pickle_bytes if info.filename.endswith("data.pkl") else data)
    return path


@pytest.mark.parametrize("kind", ["deep-key", "shared-key"])
def test_pt_pickle_shape_bombs_are_refused_before_unpickling(tmp_path, kind):
    """A dict key that is a tuple nested 200,000 deep crashes CPython while hashing (segfault);
    one of 2^60 shared tuples hashes forever. Both are refused by parsing the opcodes first."""
    if kind == "deep-key":
        key = b"K\x01" + b"\x85" * 200_000  # TUPLE1 applied 200,000 times
    else:
        key = b"K\x01\x85q\x00" + b"".join(  # t_i = (t_{i-1}, t_{i-1}), memoized
            b"h" + bytes([i]) + b"h" + bytes([i]) + b"\x86q" + bytes([i + 1]) for i in range(60)
        )
    pk = b"\x80\x02}X\x01\x00\x00\x00kK\x01s" + key + b"K\x01s."
    path = _torch_zip_with_pickle(tmp_path / "res_DC_cifar10_ConvNet_1ipc.pt", pk)
    proc = run_limited(
        ["import", str(path), "--format", "dc-pt", "--dataset", "cifar10", "-o", str(tmp_path / "o")],
        3 << 30,
        tmp_path,
    )
    assert_subprocess_refused(proc, "pickle")
    assert nothing_written(tmp_path, "o")


# ------------------------------------------------------------------------------ layout


@pytest.mark.parametrize("shape", [(10, 3, 3, 3), (10, 3, 16, 16), (10, 16, 16, 3)])
def test_ambiguous_or_contradicting_layout_asks_for_layout(dcreg, tmp_path, shape):
    path = tmp_path / "set.npz"
    np.savez(path, images=np.full(shape, 0.5, np.float32), labels=balanced_labels(10, 1))
    assert_one_line_error(imp(dcreg, path, tmp_path / "o"), "--layout")
    assert nothing_written(tmp_path, "o")


def test_explicit_layout_imports_what_detection_refuses(dcreg, tmp_path):
    path = tmp_path / "set.npz"
    images = np.random.default_rng(0).random((10, 3, 3, 3), dtype=np.float32)
    np.savez(path, images=images, labels=balanced_labels(10, 1))
    r = imp(dcreg, path, tmp_path / "hwc", "--layout", "nhwc")
    assert r.code == 0, r.err
    from dcregistry.artifact import open_artifact

    got = open_artifact(tmp_path / "hwc").numpy("images")
    np.testing.assert_array_equal(got, images.transpose(0, 3, 1, 2))


# ------------------------------------------------------------------------------ paths


def test_non_utf8_input_name_is_exit_1(dcreg, tmp_path):
    name = os.fsdecode(b"set-\xff.npz")
    path = tmp_path / name
    np.savez(path, images=normalized_images(10) * 0 + 0.5, labels=balanced_labels(10, 1))
    assert_one_line_error(imp(dcreg, path, tmp_path / "o"), "UTF-8")
    assert nothing_written(tmp_path, "o")


@pytest.fixture
def art(make_artifact):
    return make_artifact(ipc=1)


def test_export_overwrite_never_replaces_special_files(dcreg, art, tmp_path):
    fifo = tmp_path / "fifo.npz"
    os.mkfifo(fifo)
    r = dcreg("export", art.path, "--format", "npz", "-o", fifo, "--overwrite")
    assert_one_line_error(r, "special file")
    assert fifo.is_fifo()
    target = tmp_path / "precious.txt"
    target.write_text("keep")
    link = tmp_path / "link.npz"
    link.symlink_to(target)
    assert_one_line_error(
        dcreg("export", art.path, "--format", "npz", "-o", link, "--overwrite"), "symbolic link"
    )
    assert link.is_symlink() and target.read_text() == "keep"
    folder = tmp_path / "dir.npz"
    folder.mkdir()
    (folder / "mine").write_text("keep")
    assert_one_line_error(
        dcreg("export", art.path, "--format", "npz", "-o", folder, "--overwrite"), "directory"
    )
    assert (folder / "mine").read_text() == "keep"
    other = tmp_path / "hf"
    other.mkdir()
    (other / "mine").write_text("keep")
    assert_one_line_error(
        dcreg("export", art.path, "--format", "hf-datasets", "-o", other, "--overwrite"), "hf-datasets"
    )
    assert (other / "mine").read_text() == "keep"


def test_import_overwrite_replaces_only_artifact_dirs(dcreg, tmp_path):
    path = tmp_path / "set.npz"
    np.savez(path, images=normalized_images(10) * 0 + 0.5, labels=balanced_labels(10, 1))
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep")
    assert_one_line_error(imp(dcreg, path, folder, "--overwrite"), "not a dcreg artifact")
    assert (folder / "notes.txt").read_text() == "keep"
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere")
    assert_one_line_error(imp(dcreg, path, link, "--overwrite"))
    assert link.is_symlink() and not (tmp_path / "elsewhere").exists()
    assert imp(dcreg, path, tmp_path / "a").code == 0
    assert imp(dcreg, path, tmp_path / "a", "--overwrite").code == 0  # an artifact: replaced


@pytest.mark.parametrize("case", ["too-long", "under-file", "dangling", "parent-is-file"])
def test_bad_export_paths_are_exit_1(dcreg, art, tmp_path, case):
    (tmp_path / "file").write_text("x")
    if case == "too-long":
        out = tmp_path / ("n" * 300 + ".npz")
    elif case == "under-file":
        out = tmp_path / "file" / "x.npz"
    elif case == "dangling":
        out = tmp_path / "dangling.npz"
        out.symlink_to(tmp_path / "missing" / "x")
    else:
        out = tmp_path / "file" / "sub" / "x.npz"
    r = dcreg("export", art.path, "--format", "npz", "-o", out)
    assert_one_line_error(r)
    assert (tmp_path / "file").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("a")) == sorted(
        ["file"] + (["dangling.npz"] if case == "dangling" else [])
    )


def test_non_utf8_output_name_is_exit_1(dcreg, art, tmp_path):
    out = tmp_path / os.fsdecode(b"out-\xff.npz")
    assert_one_line_error(dcreg("export", art.path, "--format", "npz", "-o", out), "UTF-8")
    assert not out.exists()


# ------------------------------------------------------------------------------ registries


def test_format_registries_list_names_without_heavy_imports():
    code = (
        "import sys; from dcregistry.cli import io_cmds; "
        "from dcregistry.formats import IMPORT_FORMATS, EXPORT_FORMATS; "
        "print(sorted(m for m in ('numpy', 'torch', 'PIL', 'datasets', 'safetensors') "
        "if m in sys.modules), IMPORT_FORMATS, EXPORT_FORMATS)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
    ).stdout
    assert out.startswith("[] ('dc-pt', 'mtt', 'kip-npz', 'npz') ('pt', 'npz', 'png', 'hf-datasets')"), out


def test_every_listed_format_registers_itself():
    from dcregistry.errors import UnknownNameError
    from dcregistry.formats import EXPORTERS, IMPORTERS

    for registry in (IMPORTERS, EXPORTERS):
        for name in registry:
            assert callable(registry[name])
        with pytest.raises(UnknownNameError, match="known"):
            registry["nope"]


def test_library_messages_name_options_not_flags(tmp_path):
    """The importer names the option (for any front end); only the CLI adds its flag."""
    from dcregistry.formats import ImportOptions, read_sets
    from dcregistry.formats.importers import ImportOptionError

    path = tmp_path / "set.npz"
    np.savez(path, images=np.full((10, 3, 3, 3), 0.5, np.float32), labels=balanced_labels(10, 1))
    with pytest.raises(ImportOptionError) as info:
        read_sets(path, "npz", ImportOptions(dataset="cifar10", method="dc"))
    assert info.value.option == "layout" and "--" not in str(info.value)
    np.savez(path, images=normalized_images(10) * 0 + 0.5, labels=balanced_labels(10, 1))
    with pytest.raises(ImportOptionError) as info:
        read_sets(path, "npz", ImportOptions(dataset="cifar10"))
    assert info.value.option == "method" and "--" not in str(info.value)


# ------------------------------------------------------------ manifests and embedded metadata


def _rewrite_manifest(art_dir: Path, change) -> None:
    import json

    p = art_dir / "manifest.json"
    m = json.loads(p.read_text())
    change(m)
    p.write_text(json.dumps(m))


@pytest.mark.parametrize(
    "case",
    ["long-name", "nul-name", "bool-size", "negative-size", "huge-size", "short-sha", "too-many-files"],
)
def test_a_hostile_manifest_is_exit_1_for_every_command(dcreg, make_artifact, tmp_path, case):
    import shutil

    src = make_artifact(ipc=1)
    d = tmp_path / "hostile"
    shutil.copytree(src.path, d)

    def change(m):
        files = m["files"]
        entry = dict(files["README.md"])
        if case == "long-name":
            files["x" * 300] = entry
        elif case == "nul-name":
            files["a\x00b"] = entry
        elif case == "bool-size":
            files["README.md"]["size"] = True
        elif case == "negative-size":
            files["README.md"]["size"] = -1
        elif case == "huge-size":
            files["README.md"]["size"] = 1 << 62
        elif case == "short-sha":
            files["README.md"]["sha256"] = "abc"
        else:
            for i in range(100):
                files[f"f{i}"] = entry

    _rewrite_manifest(d, change)
    for args in (
        ["verify", d],
        ["push", d, "--name", "lab/hostile"],
        ["show", d],
        ["export", d, "--format", "npz", "-o", tmp_path / "x.npz"],
    ):
        r = dcreg(*args)
        assert_one_line_error(r, "manifest.files")
    assert not (tmp_path / "x.npz").exists()


@pytest.mark.parametrize(
    "field,value",
    [
        ("method_config", [1, 2]),
        ("pixel_space", "unit"),
        ("class_names", {"a": 1}),
        ("seed", "zero"),
        ("seed", True),
        ("lineage", [1]),
        ("dataset", 10),
    ],
)
def test_embedded_metadata_of_the_wrong_type_is_exit_1(dcreg, art, tmp_path, field, value):
    import json

    out = tmp_path / "set.npz"
    assert dcreg("export", art.path, "--format", "npz", "-o", out).code == 0
    with np.load(out) as z:
        arrays = {k: z[k] for k in z.files}
    doc = json.loads(str(arrays["metadata_json"]))
    doc["metadata"][field] = value
    arrays["metadata_json"] = np.array(json.dumps(doc))
    np.savez(out, **arrays)
    r = dcreg("import", out, "--format", "npz", "--dataset", art.metadata["dataset"], "-o", tmp_path / "o")
    assert_one_line_error(r, field)
    assert nothing_written(tmp_path, "o")
