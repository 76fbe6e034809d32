"""Fuzzing the store's inputs (Hypothesis): names, tags, references, list queries and
manifests. Every outcome must be success or a named user error (CLI exit 1), never any other
exception (exit 2) and never a changed store after a refusal. Bounded to a few seconds."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dcregistry.errors import UserError
from dcregistry.manifest import MANIFEST_FILE
from dcregistry.refs import parse_ref
from dcregistry.store import LocalStore, resolve_ref
from tests.registry.test_cli_store import dcreg
from tests.registry.test_store import tree_state

FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Characters that matter: name syntax, separators, control characters (incl. the trailing
# newline of issue 6), non-ASCII look-alikes, lone surrogates (non-UTF-8 file names).
_ALPHABET = st.sampled_from(
    list("ab09._-/@:~ \\")
    + [
        "\n",
        "\r",
        "\t",
        "\x00",
        "\x1b",
        "\x85",
        "\u2028",
        "é",
        "А",
        "\udce9",
        "sha256:",
        "v1",
        "latest",
        "lab/d",
        "..",
        "*",
        "?",
    ]
)
texts = st.lists(_ALPHABET, max_size=12).map("".join)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def fuzz_store(tmp_path_factory):
    """A store with lab/d v1 (tag first) and v2, and a valid artifact directory."""
    from dcregistry.artifact import build_artifact
    from tests.conftest import artifact_metadata, artifact_tensors

    root = tmp_path_factory.mktemp("fuzz")
    arts = [
        build_artifact(root / f"a{i}", artifact_tensors(seed=i), artifact_metadata(seed=i)) for i in range(2)
    ]
    store = LocalStore(root / "home")
    store.push(arts[0].path, "lab/d", tags=["first"])
    store.push(arts[1].path, "lab/d")
    return store, arts


def _user_error_or_ok(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except UserError:
        return None


@FUZZ
@given(text=texts)
def test_refs_resolve_or_refuse(fuzz_store, text):
    store, _ = fuzz_store
    _user_error_or_ok(parse_ref, text)
    _user_error_or_ok(store.resolve, text)
    _user_error_or_ok(resolve_ref, text, store)
    code, _, err = dcreg("show", text, "--store", store.root)
    assert code in (0, 1), err


@FUZZ
@given(name=texts, tag=texts)
def test_names_and_tags_push_tag_or_refuse(fuzz_store, name, tag):
    store, arts = fuzz_store
    before = tree_state(store.root)
    refused = False
    try:
        store.push(arts[0].path, name, tags=[tag])
    except UserError:
        refused = True
    if refused:
        assert tree_state(store.root) == before
    else:  # accepted: exactly the documented shapes (full match, no control characters)
        assert re.fullmatch(r"[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._-]*", name) and ".." not in name
        assert re.fullmatch(r"[a-z0-9][a-z0-9._-]*", tag) and tag in store.tags(name)
    for fn, args in (
        (store.tag, ("lab/d@v1", tag)),
        (store.untag, (name, tag)),
        (store.tags, (name,)),
        (store.list, (name,)),
    ):
        _user_error_or_ok(fn, *args)
    code, _, err = dcreg("tag", "lab/d@v2", tag, "--store", store.root)
    assert code in (0, 1), err
    # whatever was accepted, the store stays readable and consistent
    assert store.verify_all().ok


terms = st.tuples(
    st.sampled_from(
        ["ipc", "seed", "version", "name", "dataset", "digest", "created_at", "bogus", "v", "k", ""]
    ),
    st.sampled_from(["=", "==", "!=", "<", "<=", ">", ">=", "=<", ""]),
    st.one_of(texts, st.integers(min_value=-(10**25), max_value=10**25).map(str)),
).map("".join)


@FUZZ
@given(query=st.lists(terms | texts, max_size=3), all_versions=st.booleans())
def test_list_queries_answer_or_refuse(fuzz_store, query, all_versions):
    store, _ = fuzz_store
    _user_error_or_ok(store.list, None, query, all_versions)
    code, _, err = dcreg("list", *query, "--store", store.root, "--json")
    assert code in (0, 1), err


def _manifest_variants(valid: dict):
    """Mutations of a valid manifest plus arbitrary JSON."""

    def mutate(pair):
        path, value = pair
        m = json.loads(json.dumps(valid))
        node = m
        for key in path[:-1]:
            node = node.setdefault(key, {}) if isinstance(node, dict) else node
        if isinstance(node, dict):
            node[path[-1]] = value
        return m

    paths = st.sampled_from(
        [
            ("format",),
            ("metadata",),
            ("files",),
            ("metadata", "ipc"),
            ("metadata", "pixel_space"),
            ("metadata", "dataset"),
            ("files", "data.safetensors"),
            ("files", "README.md", "size"),
            ("files", "README.md", "sha256"),
            ("files", "../x"),
            ("metadata", "image_shape"),
            ("metadata", "num_classes"),
        ]
    )
    return st.tuples(paths, json_values).map(mutate) | json_values


@settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_manifests_verify_and_push_or_refuse(fuzz_store, tmp_path, data):
    store, arts = fuzz_store
    valid = json.loads((arts[0].path / MANIFEST_FILE).read_text())
    manifest = data.draw(_manifest_variants(valid))
    raw = data.draw(st.sampled_from(["json", "deep", "garbage"]))
    d = tmp_path / "m"
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(arts[0].path, d)
    mpath = d / MANIFEST_FILE
    mpath.chmod(0o644)
    text = {
        "json": json.dumps(manifest),
        "deep": "[" * 100_000 + "]" * 100_000,
        "garbage": "\xff\x00{" + json.dumps(manifest)[:20],
    }[raw]
    mpath.write_bytes(text.encode("utf-8", "surrogatepass"))
    before = tree_state(store.root)
    code, _, err = dcreg("verify", d)
    assert code in (0, 1), err
    try:
        store.push(d, "lab/fuzz")
    except UserError:
        assert tree_state(store.root) == before
    code, _, err = dcreg("push", d, "--name", "lab/fuzz", "--store", store.root)
    assert code in (0, 1), err
    if code == 1:
        assert err.count("\n") == 1
