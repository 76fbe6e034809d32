"""A sweep spec (``harness sweep SPEC.toml``): artifacts x protocols x seeds, validated and hashed.

```toml
name = "digits-methods"
artifacts = ["me/digits-random", "dataset=digits method=dc ipc<=10", { ref = "./sets/a" }]
protocols = ["dsa", { name = "dc-noaug", epochs = 100 }, { name = "dsa", arch = "resnet18" }]
seeds = [0, 1, 2, 3, 4]      # optional; default: each protocol's own seeds
store = "local"              # optional; a --store value
```

An artifact entry is a reference (anything ``dcreg pull`` takes) or, when it contains ``=``,
``<`` or ``>``, a store query (:mod:`dcregistry.store.query`); ``{ ref = ".." }`` and
``{ query = ".." }`` say which explicitly. Relative paths (artifact directories, protocol TOML
files) are relative to the spec file. The spec hash is the sha256 of the canonical JSON of the
validated content without ``name`` (as a protocol's hash leaves out its name), so renaming a
sweep keeps its hash and reordering seeds does not change it.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeGuard

from dcregistry.canonical import canonical_json, sha256_bytes
from dcregistry.errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from harness.protocols import Protocol

__all__ = [
    "SweepSpecError",
    "ArtifactEntry",
    "ProtocolEntry",
    "CondenseEntry",
    "SweepSpec",
    "load_spec",
    "parse_spec",
    "SPEC_KEYS",
    "PROTOCOL_KEYS",
    "OVERRIDE_KEYS",
    "CONDENSE_KEYS",
]

#: Top-level keys of a spec, in the order messages list them.
SPEC_KEYS = ("name", "artifacts", "protocols", "seeds", "store", "condense")
#: Keys of an inline protocol table -> the Protocol field each overrides (as `harness eval`'s
#: --arch/--aug/--optim/--epochs/--runs do).
OVERRIDE_KEYS = {
    "epochs": "epochs",
    "arch": "arch",
    "aug": "augmentation",
    "optim": "optimizer",
    "runs": "runs",
}
PROTOCOL_KEYS = ("name", *OVERRIDE_KEYS)
#: Keys of a [[condense]] table.
CONDENSE_KEYS = (
    "dataset",
    "method",
    "ipc",
    "seed",
    "options",
    "model",
    "iterations",
    "image_size",
    "name",
    "init",
)
#: The keys of a [[condense]] table that may list several values (the table is their grid).
CONDENSE_GRID_KEYS = ("method", "ipc", "seed", "init")
#: Where a condensed set is pushed unless the table names it ({sweep} is the sweep name, lowercased).
DEFAULT_CONDENSE_NAME = "{sweep}/{method}-{dataset}-ipc{ipc}-s{seed}-{id}"
#: The placeholders a push-name template may use.
CONDENSE_NAME_FIELDS = (
    "sweep",
    "id",
    "dataset",
    "method",
    "ipc",
    "seed",
    "model",
    "iterations",
    "image_size",
    "init",  # "real" when the cell does not set one
)
MAX_SPEC_BYTES = 1 << 20
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_QUERY_CHARS = "=<>"
MAX_SEED = 2**31 - 1


class SweepSpecError(UserError):
    """A sweep spec is not valid TOML or breaks the spec format (the message names the key)."""


def _fail(where: str, problem: str) -> SweepSpecError:
    return SweepSpecError(f"{where}: {problem}")


def _unknown_keys(table: Mapping[str, Any], known: tuple[str, ...] | Mapping[str, Any], where: str) -> None:
    extra = sorted(k for k in table if k not in known)
    if extra:
        raise _fail(where, f"unknown key(s) {', '.join(extra)} (known: {', '.join(known)})")


def _is_int(v: Any) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


@dataclass(frozen=True)
class ArtifactEntry:
    """One ``artifacts`` entry: a reference or a store query, as written in the spec."""

    kind: Literal["ref", "query"]
    text: str

    def to_json(self) -> dict[str, str]:
        return {self.kind: self.text}

    @classmethod
    def from_json(cls, value: Any, where: str = "artifacts[?]") -> ArtifactEntry:
        """Parse a string (query if it contains ``= < >``) or a ``{ref}``/``{query}`` table."""
        if isinstance(value, str):
            kind: Literal["ref", "query"] = "query" if any(c in value for c in _QUERY_CHARS) else "ref"
            text = value
        elif isinstance(value, Mapping) and len(value) == 1 and next(iter(value)) in ("ref", "query"):
            kind = "ref" if "ref" in value else "query"
            text = value[kind]
            if not isinstance(text, str):
                raise _fail(where, f"{kind} must be a string, got {type(text).__name__}")
        else:
            raise _fail(
                where, "an artifact is a reference or query string, or { ref = '..' } / { query = '..' }"
            )
        if not text.strip():
            raise _fail(where, "empty artifact entry")
        entry = cls(kind, text.strip())
        entry.check(where)
        return entry

    def check(self, where: str) -> None:
        """Syntax check (a query's terms parse; a store reference's name is valid); paths are
        checked when the sweep is planned."""
        try:
            if self.kind == "query":
                from dcregistry.store.query import parse_terms

                parse_terms(self.text)
            else:
                from dcregistry.refs import is_name_ref, parse_name_ref, parse_ref

                if is_name_ref(self.text):
                    parse_name_ref(self.text)
                elif self.text.startswith("hf://"):
                    parse_ref(self.text)
        except UserError as exc:
            raise _fail(where, str(exc)) from None


@dataclass(frozen=True)
class ProtocolEntry:
    """One ``protocols`` entry: a protocol name (or TOML path) and its overrides (spec key names)."""

    name: str
    overrides: tuple[tuple[str, Any], ...] = ()
    base_dir: Path | None = field(default=None, compare=False)  # where relative TOML paths start

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, **dict(self.overrides)}

    @classmethod
    def from_json(
        cls, value: Any, where: str = "protocols[?]", base_dir: Path | None = None
    ) -> ProtocolEntry:
        """Parse ``"dsa"`` or ``{ name = "dsa", epochs = 100, ... }``; the protocol must load."""
        if isinstance(value, str):
            value = {"name": value}
        if not isinstance(value, Mapping):
            raise _fail(where, "a protocol is a name or a table { name = .., epochs = .., arch = .. }")
        _unknown_keys(value, PROTOCOL_KEYS, where)
        name = value.get("name")
        if not isinstance(name, str) or not name:
            raise _fail(where, 'needs name = "<protocol name or TOML file>"')
        overrides = []
        for key in OVERRIDE_KEYS:
            if key not in value:
                continue
            v = value[key]
            if key in ("epochs", "runs") and (not _is_int(v) or v < 1):
                raise _fail(f"{where}.{key}", f"must be a positive integer, got {v!r}")
            if key in ("arch", "aug", "optim") and not isinstance(v, str):
                raise _fail(f"{where}.{key}", f"must be a string, got {v!r}")
            overrides.append((key, v))
        entry = cls(name, tuple(overrides), base_dir)
        entry.protocol(where)  # unknown names, bad overrides: refused now, not mid-sweep
        return entry

    def protocol(self, where: str = "protocol") -> Protocol:
        """The derived protocol, built as ``harness eval --arch/--aug/--optim/--epochs/--runs``."""
        from harness.protocols import load_protocol

        name = self.name
        if name.endswith(".toml") and self.base_dir is not None and not Path(name).is_absolute():
            name = str(self.base_dir / name)
        changes = {OVERRIDE_KEYS[k]: v for k, v in self.overrides}
        try:
            return load_protocol(name).with_overrides(**changes)
        except UserError as exc:
            raise _fail(where, str(exc)) from None


@dataclass(frozen=True)
class CondenseEntry:
    """One condense cell of a ``[[condense]]`` table: a set to make, push and then evaluate."""

    dataset: str
    method: str
    ipc: int
    seed: int = 0
    options: tuple[tuple[str, Any], ...] = ()
    model: str = "convnet"
    iterations: int | None = None  # None: the method's default
    image_size: int | None = None  # None: the dataset's
    name: str = DEFAULT_CONDENSE_NAME  # push name template
    #: a synthesis's start (``harness condense --init``): ``noise`` or a selection method's name;
    #: None is ``real`` (the random-real stream), the default
    init: str | None = None

    def recipe(self) -> dict[str, Any]:
        """What decides the set (the cell's identity): everything but the push name. ``init`` is
        in it only when set, so every cell without one keeps the id it always had."""
        out = {
            "dataset": self.dataset,
            "method": self.method,
            "ipc": self.ipc,
            "seed": self.seed,
            "options": dict(self.options),
            "model": self.model,
            "iterations": self.iterations,
            "image_size": self.image_size,
        }
        if self.init is not None:
            out["init"] = self.init
        return out

    @property
    def id(self) -> str:
        """sha256 (hex) of the canonical JSON of :meth:`recipe`."""
        return sha256_bytes(canonical_json(self.recipe()))

    def push_name(self, sweep: str) -> str:
        """The store name the set is pushed to (the template filled in; validated)."""
        from dcregistry.refs import validate_name

        fields = {"init": "real", **self.recipe(), "sweep": sweep.lower(), "id": self.id[:10]}
        try:
            return validate_name(self.name.format(**fields))
        except UserError as exc:
            raise _fail("condense.name", str(exc)) from None
        except (KeyError, IndexError, ValueError) as exc:
            raise _fail("condense.name", f"template {self.name!r}: unknown field {exc}") from None

    def to_json(self) -> dict[str, Any]:
        return {**self.recipe(), "name": self.name}

    @classmethod
    def expand(cls, value: Any, where: str = "condense[?]") -> list[CondenseEntry]:
        """The cells of one table: lists under method, ipc or seed make their grid."""
        if not isinstance(value, Mapping):
            raise _fail(where, "must be a table with dataset, method, ipc (seed, options optional)")
        _unknown_keys(value, CONDENSE_KEYS, where)
        axes = []
        for key in CONDENSE_GRID_KEYS:
            v = value.get(key, 0 if key == "seed" else None)
            if isinstance(v, list):
                if not v:
                    raise _fail(f"{where}.{key}", "an empty list makes no cells")
                _no_duplicates(v, f"{where}.{key}")
                axes.append(v)
            else:
                axes.append([v])
        import itertools

        return [
            cls.from_json({**value, **dict(zip(CONDENSE_GRID_KEYS, combo, strict=True))}, where)
            for combo in itertools.product(*axes)
        ]

    @classmethod
    def from_json(cls, value: Any, where: str = "condense[?]") -> CondenseEntry:
        if not isinstance(value, Mapping):
            raise _fail(where, "must be a table with dataset, method, ipc (seed, options optional)")
        _unknown_keys(value, CONDENSE_KEYS, where)
        for key in ("dataset", "method"):
            if not isinstance(value.get(key), str):
                raise _fail(f"{where}.{key}", "required, a string")
        ipc, seed = value.get("ipc"), value.get("seed", 0)
        if not _is_int(ipc) or not 1 <= ipc <= MAX_SEED:
            raise _fail(f"{where}.ipc", f"required, an integer in 1..{MAX_SEED}, got {ipc!r}")
        if not _is_int(seed) or not 0 <= seed <= MAX_SEED:
            raise _fail(f"{where}.seed", f"must be an integer in 0..{MAX_SEED}, got {seed!r}")
        from harness.data.base import MAX_IMAGE_SIZE

        for key, top in (("iterations", MAX_SEED), ("image_size", MAX_IMAGE_SIZE)):
            v = value.get(key)
            if v is not None and (not _is_int(v) or not 1 <= v <= top):
                raise _fail(f"{where}.{key}", f"must be an integer in 1..{top}, got {v!r}")
        model, name = value.get("model", "convnet"), value.get("name", DEFAULT_CONDENSE_NAME)
        if not isinstance(model, str) or not isinstance(name, str):
            raise _fail(where, "model and name must be strings")
        _check_template(name, f"{where}.name")
        options = value.get("options", {})
        if not isinstance(options, Mapping) or not all(
            isinstance(k, str) and isinstance(v, (str, int, float, bool)) for k, v in options.items()
        ):
            raise _fail(f"{where}.options", "must be a table of plain values (strings, numbers, booleans)")
        from dcregistry.catalog import DATASETS

        if value["dataset"] not in DATASETS:
            raise _fail(
                f"{where}.dataset", f"unknown dataset {value['dataset']!r} (known: {', '.join(DATASETS)})"
            )
        from harness.methods import get_method
        from harness.models import model_factory

        try:
            method = get_method(value["method"])
            model_factory(model)
        except UserError as exc:
            raise _fail(f"{where}", str(exc)) from None
        init = _condense_init(value.get("init"), method, f"{where}.init")
        return cls(
            value["dataset"],
            value["method"],
            ipc,
            seed,
            tuple(sorted(options.items())),
            model,
            value.get("iterations"),
            value.get("image_size"),
            name,
            init,
        )


def _condense_init(init: Any, method: Any, where: str) -> str | None:
    """A cell's ``init``: ``noise`` or a selection method's name (``real``, the default, is
    None: the same recipe and id as a cell without one). An artifact reference is not a recipe
    (``ns/name`` moves with every push): list the set as an artifact or condense it in a cell."""
    if init is None:
        return None
    from harness.methods.base import SelectionMethod
    from harness.methods.loop import init_choices

    choices = init_choices()
    if not isinstance(init, str) or init not in choices:
        raise _fail(where, f"must be one of {', '.join(choices)}, got {init!r}")
    if isinstance(method, SelectionMethod):
        raise _fail(where, f"{method.name} selects real images; init applies to synthesis methods only")
    return None if init == "real" else init


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep spec; :attr:`hash` names its content."""

    name: str
    artifacts: tuple[ArtifactEntry, ...]
    protocols: tuple[ProtocolEntry, ...]
    seeds: tuple[int, ...] | None = None  # None: each protocol's own seeds
    store: str | None = None
    condense: tuple[CondenseEntry, ...] = ()
    base_dir: Path | None = field(default=None, compare=False)  # the spec file's directory

    def content(self) -> dict[str, Any]:
        """The hashed content (everything but ``name``)."""
        return {
            "artifacts": [a.to_json() for a in self.artifacts],
            "protocols": [p.to_json() for p in self.protocols],
            "seeds": list(self.seeds) if self.seeds is not None else None,
            "store": self.store,
            "condense": [c.to_json() for c in self.condense],
        }

    @property
    def hash(self) -> str:
        """sha256 (hex) of the canonical JSON of :meth:`content`."""
        return sha256_bytes(canonical_json(self.content()))

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "hash": self.hash, **self.content()}

    @classmethod
    def from_json(cls, data: Any, source: str = "spec", base_dir: Path | None = None) -> SweepSpec:
        """Validate a parsed spec (the TOML's tables, or :meth:`to_json`'s output)."""
        if not isinstance(data, Mapping):
            raise _fail(source, "must be a table")
        data = {k: v for k, v in data.items() if k != "hash"}
        _unknown_keys(data, SPEC_KEYS, source)
        name = data.get("name")
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
            raise _fail(f"{source}: name", f"required: letters, digits, . _ - (at most 100), got {name!r}")
        arts = data.get("artifacts", [])
        cond = data.get("condense", [])
        if not isinstance(arts, list) or not (arts or cond):
            raise _fail(
                f"{source}: artifacts",
                "required (unless [[condense]] tables make the sets): a non-empty list of references or queries",
            )
        artifacts = tuple(ArtifactEntry.from_json(a, f"{source}: artifacts[{i}]") for i, a in enumerate(arts))
        _no_duplicates([a.to_json() for a in artifacts], f"{source}: artifacts")
        protos = data.get("protocols")
        if not isinstance(protos, list) or not protos:
            raise _fail(f"{source}: protocols", "required: a non-empty list of names or { name = .. } tables")
        protocols = tuple(
            ProtocolEntry.from_json(p, f"{source}: protocols[{i}]", base_dir) for i, p in enumerate(protos)
        )
        _no_duplicates([p.protocol().id for p in protocols], f"{source}: protocols")
        seeds = data.get("seeds")
        if seeds is not None:
            if (
                not isinstance(seeds, list)
                or not seeds
                or not all(_is_int(s) and 0 <= s <= MAX_SEED for s in seeds)
            ):
                raise _fail(f"{source}: seeds", f"must be a non-empty list of integers in 0..{MAX_SEED}")
            _no_duplicates(seeds, f"{source}: seeds")
            for i, p in enumerate(protocols):
                if dict(p.overrides).get("runs") is not None:
                    raise _fail(
                        f"{source}: protocols[{i}].runs",
                        "seeds are given, and they decide the runs: drop runs (or drop seeds)",
                    )
        store = data.get("store")
        if store is not None and (not isinstance(store, str) or not store):
            raise _fail(f"{source}: store", "must be a store spec string (local, a directory, hf, a URL)")
        if not isinstance(cond, list):
            raise _fail(f"{source}: condense", "must be an array of tables ([[condense]])")
        condense = tuple(
            e for i, c in enumerate(cond) for e in CondenseEntry.expand(c, f"{source}: condense[{i}]")
        )
        _no_duplicates([c.id for c in condense], f"{source}: condense (the same set twice)")
        for c in condense:
            c.push_name(name)  # a bad template fails now, not after condensing
        return cls(
            name=name,
            artifacts=artifacts,
            protocols=protocols,
            seeds=tuple(sorted(seeds)) if seeds is not None else None,
            store=store,
            condense=condense,
            base_dir=base_dir,
        )


def _check_template(name: str, where: str) -> None:
    """A push-name template holds plain ``{field}`` placeholders only: a format spec
    (``{id:>999999999}``) would allocate as it pleases, an attribute or index reaches into objects."""
    import string

    try:
        parts = list(string.Formatter().parse(name))
    except ValueError as exc:
        raise _fail(where, f"template {name!r}: {exc}") from None
    for _, field_name, spec, conversion in parts:
        if field_name is None:
            continue
        if field_name not in CONDENSE_NAME_FIELDS or spec or conversion:
            raise _fail(
                where,
                f"template {name!r}: use plain placeholders {', '.join('{' + f + '}' for f in CONDENSE_NAME_FIELDS)}",
            )


def _no_duplicates(items: list[Any], where: str) -> None:
    seen: list[Any] = []
    for item in items:
        if item in seen:
            raise _fail(where, f"{item!r} is listed twice")
        seen.append(item)


def parse_spec(text: str, source: str = "spec", base_dir: Path | None = None) -> SweepSpec:
    """Parse and validate a spec's TOML text."""
    from dcregistry.jsonsafe import MAX_DEPTH, nesting_depth

    depth = nesting_depth(text)  # before parsing: tomllib recurses per level
    if depth > MAX_DEPTH:
        raise _fail(source, f"nests {depth} levels deep, above the limit of {MAX_DEPTH}")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _fail(source, f"not valid TOML ({exc})") from None
    except RecursionError:  # backstop: the depth check above should make this unreachable
        raise _fail(source, "nests too deep") from None
    return SweepSpec.from_json(data, source, base_dir)


def load_spec(path: str | Path) -> SweepSpec:
    """Read, parse and validate a spec file (at most 1 MiB)."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            raw = f.read(MAX_SPEC_BYTES + 1)
    except OSError as exc:
        raise SweepSpecError(f"{p}: cannot read the spec ({exc.strerror or exc})") from None
    if len(raw) > MAX_SPEC_BYTES:
        raise _fail(str(p), f"is larger than {MAX_SPEC_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _fail(str(p), "is not UTF-8 text") from None
    return parse_spec(text, str(p), p.resolve().parent)
