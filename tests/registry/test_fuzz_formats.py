"""Fuzz the file-format checks: safetensors headers and JSON nesting.

The property that matters for the store: every ``data.safetensors`` our checker accepts is read by
the real ``safetensors`` library (``safe_open`` + ``get_tensor`` for every tensor). Bounded
(``max_examples``, no deadline) so the file runs in seconds.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dcregistry.artifact import DATA_FILE, MANIFEST_FILE, build_artifact, open_artifact
from dcregistry.canonical import sha256_file
from dcregistry.errors import JSONFormatError, SafetensorsFormatError, UserError
from dcregistry.jsonsafe import MAX_DEPTH, loads_bounded
from dcregistry.safetensors_io import DTYPES, SafetensorsReader, read_header
from tests.conftest import artifact_metadata, artifact_tensors
from tests.registry.io_helpers import assert_one_line_error, dcreg  # noqa: F401  (fixture)

#: FUZZ_EXAMPLES=2000 for a longer local hunt; CI runs the default.
FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def write_raw(path: Path, header: bytes | dict, data: bytes) -> Path:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def real_library_reads(path: Path) -> None:
    """Open with the real safetensors library and materialise every tensor (raises if it can't)."""
    from safetensors import safe_open

    header = read_header(path)
    with safe_open(str(path), framework="pt") as f:
        assert set(f.keys()) == set(header.tensors)
        for name, info in header.tensors.items():
            t = f.get_tensor(name)
            assert tuple(t.shape) == info.shape


def check_property(path: Path) -> bool:
    """Our checker accepts => the real library reads it, and so does our reader. Returns accepted."""
    try:
        header = read_header(path)
    except SafetensorsFormatError:
        return False
    real_library_reads(path)
    reader = SafetensorsReader(path)
    for name, info in header.tensors.items():
        assert reader.raw(name).shape == info.shape
    return True


# ------------------------------------------------------------------------------ strategies

DTYPE_NAMES = sorted(DTYPES)


@st.composite
def valid_files(draw, min_dim: int = 1):
    """A well-formed header + data: tensors tiling the data section in a random order."""
    n = draw(st.integers(1, 4))
    names = draw(
        st.lists(
            st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=6).filter(
                lambda s: s != "__metadata__"
            ),
            min_size=n,
            max_size=n,
            unique=True,
        )
    )
    entries = []
    for name in names:
        dtype = draw(st.sampled_from(DTYPE_NAMES))
        shape = draw(st.lists(st.integers(min_dim, 4), max_size=3))
        entries.append((name, dtype, shape))
    order = draw(st.permutations(range(n)))
    header: dict = {}
    cursor = 0
    for i in order:
        name, dtype, shape = entries[i]
        nbytes = int(np.prod(shape, dtype=object)) * DTYPES[dtype][1] if shape else DTYPES[dtype][1]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [cursor, cursor + nbytes]}
        cursor += nbytes
    if draw(st.booleans()):
        header["__metadata__"] = {"dcreg": draw(st.text(max_size=20))}
    # Random bytes: any bit pattern is a valid value for every dtype, bool included? No: safetensors
    # reads BOOL bytes as-is, so keep 0/1 to stay within what torch accepts for bool.
    data = bytes(draw(st.lists(st.integers(0, 1), min_size=cursor, max_size=cursor)))
    return header, data


HUGE = st.sampled_from([2**31, 2**32, 2**32 + 1, 2**62, 2**63, 2**63 - 1, 2**64 - 1, 2**64, 2**70])
JUNK_INT = st.one_of(
    HUGE,
    st.integers(-5, -1),
    st.just(True),
    st.just(False),
    st.just(1.0),
    st.just(2.5),
    st.just("4"),
    st.none(),
)


@st.composite
def mutated_files(draw):
    header, data = draw(valid_files(min_dim=0))
    names = [k for k in header if k != "__metadata__"]
    kind = draw(
        st.sampled_from(
            [
                "dim",
                "offset",
                "swap",
                "extra",
                "extra-huge",
                "dtype",
                "truncate",
                "append",
                "metadata",
                "rank",
                "keys",
                "shift",
            ]
        )
    )
    target = header[draw(st.sampled_from(names))]
    if kind == "dim":
        shape = target["shape"] or [1]
        shape[draw(st.integers(0, len(shape) - 1))] = draw(JUNK_INT)
        target["shape"] = shape
    elif kind == "offset":
        target["data_offsets"][draw(st.integers(0, 1))] = draw(
            st.one_of(JUNK_INT, st.integers(0, len(data) + 8))
        )
    elif kind == "swap":
        target["data_offsets"].reverse()
    elif kind in ("extra", "extra-huge"):
        # An extra tensor whose size product wraps a 64-bit integer to 0 or a small number.
        shape = (
            [2**32, 2**32]
            if kind == "extra-huge"
            else draw(st.lists(st.one_of(HUGE, st.integers(0, 3)), min_size=1, max_size=3))
        )
        at = draw(st.integers(0, len(data)))
        end = draw(st.sampled_from([at, len(data), max(at - 4, 0)]))
        header["pad"] = {
            "dtype": draw(st.sampled_from(DTYPE_NAMES)),
            "shape": shape,
            "data_offsets": [at, end],
        }
    elif kind == "dtype":
        target["dtype"] = draw(st.sampled_from(DTYPE_NAMES + ["F8_E4M3", "U64", "bf16", 4, None]))
    elif kind == "truncate":
        data = data[: draw(st.integers(0, max(len(data) - 1, 0)))]
    elif kind == "append":
        data = data + bytes(draw(st.integers(1, 9)))
    elif kind == "metadata":
        header["__metadata__"] = draw(
            st.sampled_from([None, [], "", 0, False, {"a": 1}, {"a": None}, [["a", "b"]], {"a": {"b": "c"}}])
        )
    elif kind == "rank":
        target["shape"] = [1] * draw(st.integers(17, 70))
    elif kind == "keys":
        target[draw(st.sampled_from(["extra", "dtype2"]))] = 1
        if draw(st.booleans()):
            del target["dtype"]
    elif kind == "shift":
        delta = draw(st.integers(-3, 3))
        target["data_offsets"] = [o + delta for o in target["data_offsets"]]
    return header, data


# ------------------------------------------------------------------------------ properties


@FUZZ
@given(valid_files())
def test_valid_headers_are_accepted_and_read_by_safetensors(tmp_path, case):
    header, data = case
    assert check_property(write_raw(tmp_path / "v.safetensors", header, data))


@FUZZ
@given(mutated_files())
def test_accepted_headers_always_open_with_safetensors(tmp_path, case):
    header, data = case
    check_property(write_raw(tmp_path / "m.safetensors", header, data))


@FUZZ
@given(st.binary(max_size=200))
def test_random_header_bytes_never_crash(tmp_path, raw):
    check_property(write_raw(tmp_path / "b.safetensors", raw, b"\0" * 16))


def test_every_fixture_artifact_opens_with_safetensors(tmp_path):
    """The artifacts the test suite builds (hard, soft, lr, uint8, bf16, zca) are all readable."""
    import torch

    def tens(**kw):
        return artifact_tensors(**kw)

    cases = {
        "hard": (tens(), artifact_metadata()),
        "soft": (
            {
                **{k: v for k, v in tens().items() if k != "labels"},
                "soft_labels": np.eye(10, dtype=np.float32)[np.repeat(np.arange(10), 2)],
            },
            artifact_metadata(label_kind="soft"),
        ),
        "lr": ({**tens(), "lr": np.array(0.01, np.float32)}, artifact_metadata()),
        "uint8": (
            {**tens(), "images": (tens()["images"] * 255).clip(0, 255).astype(np.uint8)},
            artifact_metadata(pixel_space={"kind": "uint8"}),
        ),
        "bf16": ({**tens(), "images": torch.from_numpy(tens()["images"]).bfloat16()}, artifact_metadata()),
    }
    for name, (tensors, md) in cases.items():
        art = build_artifact(tmp_path / name, tensors, md)
        assert check_property(art.path / DATA_FILE), name
        open_artifact(art.path)


# ------------------------------------------------------------------------------ the cases


def _forge(art_dir: Path, header: dict, data: bytes) -> None:
    """Replace data.safetensors and re-hash it in the manifest, as an attacker who owns the file."""
    write_raw(art_dir / DATA_FILE, header, data)
    mpath = art_dir / MANIFEST_FILE
    manifest = json.loads(mpath.read_text())
    digest, size = sha256_file(art_dir / DATA_FILE)
    manifest["files"][DATA_FILE] = {"sha256": digest, "size": size}
    mpath.write_text(json.dumps(manifest))


def _header_of(art_dir: Path) -> tuple[dict, bytes]:
    raw = (art_dir / DATA_FILE).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def test_wrapping_extra_tensor_is_refused(make_artifact):
    """An extra [2^32, 2^32] tensor has 2^64 elements: int64 arithmetic wraps it to 0 bytes."""
    art = make_artifact()
    header, data = _header_of(art.path)
    header["pad"] = {"dtype": "U8", "shape": [2**32, 2**32], "data_offsets": [len(data)] * 2}
    _forge(art.path, header, data)
    with pytest.raises(SafetensorsFormatError, match="pad"):
        open_artifact(art.path)


def test_begin_after_end_is_refused(tmp_path):
    """begin > end whose negative span equals a wrapped size, with a tensor reaching past the file."""
    p = write_raw(
        tmp_path / "x.safetensors",
        {
            "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
            "b": {"dtype": "U8", "shape": [2**62 - 1, 4], "data_offsets": [8, 4]},
        },
        b"\0" * 4,
    )
    with pytest.raises(SafetensorsFormatError):
        read_header(p)


@pytest.mark.parametrize("value", [True, 2.0, -1, 2**64])
def test_non_integer_dims_are_refused(tmp_path, value):
    p = write_raw(
        tmp_path / "x.safetensors", {"a": {"dtype": "U8", "shape": [value], "data_offsets": [0, 1]}}, b"\0"
    )
    with pytest.raises(SafetensorsFormatError, match="shape"):
        read_header(p)


def test_store_verify_refuses_a_forged_version(make_artifact, dcreg_home):
    """A version the real library cannot read is never certified by verify."""
    from dcregistry.store import LocalStore

    art = make_artifact()
    header, data = _header_of(art.path)
    header["pad"] = {"dtype": "F32", "shape": [2**33, 2**31], "data_offsets": [len(data)] * 2}
    _forge(art.path, header, data)
    store = LocalStore(dcreg_home)
    with pytest.raises(SafetensorsFormatError):
        store.push(art.path, "me/forged")


# ------------------------------------------------------------------------------ JSON nesting

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=30,
)


@FUZZ
@given(json_values)
def test_loads_bounded_agrees_with_json_on_ordinary_documents(value):
    text = json.dumps(value)
    assert loads_bounded(text, "doc") == json.loads(text)


@FUZZ
@given(st.integers(MAX_DEPTH + 1, 200_000), st.sampled_from(["[", '{"a":', '[{"k":']), st.booleans())
def test_deep_nesting_is_a_user_error(depth, opener, closed):
    text = opener * depth
    if closed:
        text += "1" + "".join("]" if c == "[" else "}" for c in reversed(opener)) * depth
    with pytest.raises(JSONFormatError, match="nests"):
        loads_bounded(text, "doc")


@FUZZ
@given(st.text(alphabet='[]{}":,\\ 1ae-.tnul\ud7ff', max_size=300))
def test_loads_bounded_outcomes_are_values_or_user_errors(text):
    try:
        loads_bounded(text, "doc")
    except UserError:
        pass


@pytest.mark.parametrize("where", ["header", "metadata", "manifest"])
def test_deep_json_in_an_artifact_is_exit_1(make_artifact, dcreg, where):
    art = make_artifact()
    deep = "[" * 100_000 + "]" * 100_000
    if where == "manifest":
        (art.path / MANIFEST_FILE).write_text('{"format": "dcreg/1", "x": ' + deep + "}")
    else:
        header, data = _header_of(art.path)
        if where == "metadata":
            header["__metadata__"]["dcreg"] = deep
            raw = json.dumps(header).encode()
        else:
            raw = json.dumps(header).encode()[:-1] + b', "z": ' + deep.encode() + b"}"
        write_raw(art.path / DATA_FILE, raw, data)
        mpath = art.path / MANIFEST_FILE
        manifest = json.loads(mpath.read_text())
        digest, size = sha256_file(art.path / DATA_FILE)
        manifest["files"][DATA_FILE] = {"sha256": digest, "size": size}
        mpath.write_text(json.dumps(manifest))
    from dcregistry.cli import store_cmds  # noqa: F401  (registers verify)

    assert_one_line_error(dcreg("verify", str(art.path)))


# ------------------------------------------------------------------------------ manifests

manifest_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 2**65)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["dcreg/1", "sha256", "data.safetensors"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "format",
                    "metadata",
                    "files",
                    "sha256",
                    "size",
                    "data.safetensors",
                    "README.md",
                    "dataset",
                    "ipc",
                    "x",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@st.composite
def mutated_manifests(draw, base: dict):
    """The valid manifest with one field replaced by arbitrary JSON (at any depth)."""
    manifest = json.loads(json.dumps(base))
    node = manifest
    path = draw(
        st.lists(
            st.sampled_from(
                [
                    "metadata",
                    "files",
                    "data.safetensors",
                    "README.md",
                    "dataset",
                    "ipc",
                    "image_shape",
                    "pixel_space",
                    "size",
                    "sha256",
                    "format",
                    "class_names",
                ]
            ),
            min_size=1,
            max_size=3,
        )
    )
    for key in path[:-1]:
        if isinstance(node, dict) and isinstance(node.get(key), dict):
            node = node[key]
    if isinstance(node, dict):
        node[path[-1]] = draw(manifest_values)
    return manifest


def test_fuzzed_manifests_are_ok_or_user_errors(make_artifact):
    """Every manifest either opens or is refused with a UserError (never another exception)."""
    art = make_artifact()
    base = json.loads((art.path / MANIFEST_FILE).read_text())

    @FUZZ
    @given(mutated_manifests(base))
    def check(manifest):
        (art.path / MANIFEST_FILE).write_text(json.dumps(manifest))
        try:
            open_artifact(art.path)
        except UserError:
            pass

    check()


# ------------------------------------------------------------------------------ .npz archives


def _valid_npz_bytes(tmp: Path) -> bytes:
    path = tmp / "seed.npz"
    rng = np.random.default_rng(0)
    np.savez(
        path,
        images=rng.random((10, 1, 8, 8), dtype=np.float32),
        labels=np.arange(10, dtype=np.int64),
        lr=np.array(0.01, np.float32),
    )
    return path.read_bytes()


@FUZZ
@given(st.data())
def test_fuzzed_npz_imports_succeed_or_are_user_errors(tmp_path_factory, data):
    """Byte flips, truncations and header edits of a valid .npz: read_sets returns sets or
    raises a UserError (exit 1), never another exception."""
    from dcregistry.formats import ImportOptions, read_sets

    tmp = tmp_path_factory.mktemp("npz")
    raw = bytearray(_valid_npz_bytes(tmp))
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "truncate", "header", "insert"]))
        if kind == "flip" and raw:
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] = data.draw(st.integers(0, 255))
        elif kind == "truncate":
            del raw[data.draw(st.integers(0, len(raw))) :]
        elif kind == "insert":
            i = data.draw(st.integers(0, len(raw)))
            raw[i:i] = data.draw(st.binary(min_size=1, max_size=8))
        else:  # rewrite the images .npy header's shape text
            at = raw.find(b"'shape': (")
            if at >= 0:
                end = raw.find(b")", at)
                shape = data.draw(
                    st.sampled_from(
                        [
                            b"10, 1, 8, 8",
                            b"4294967296, 4294967296",
                            b"-1, 8",
                            b"10, 1, 8, 8, 0",
                            b"True,",
                            b"10, 1, 8, 80000000000",
                        ]
                    )
                )
                raw[at + 10 : end] = shape
    path = tmp / "set.npz"
    path.write_bytes(bytes(raw))
    try:
        read_sets(path, "npz", ImportOptions(dataset="digits", method="dc"))
    except UserError:
        pass
