"""Named evaluation protocols: frozen TOML files shipped with the package, identified by hash.

A protocol fixes architecture, augmentation, optimizer, schedule, epochs, batch sizes, runs and
seeds. Its id is ``name@<12 hex of sha256(canonical content)>`` where the content excludes the
name and description, so the hash names the semantics. Overrides give a derived protocol whose
name says what was overridden and whose hash differs.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from dcregistry.canonical import canonical_json, sha256_bytes
from dcregistry.errors import ProtocolError, UnknownNameError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

HASH_CHARS = 12


@dataclass(frozen=True)
class Protocol:
    """A fully specified evaluation recipe (see ``harness protocols show NAME``)."""

    name: str
    description: str
    arch: str
    augmentation: str
    optimizer: Literal["sgd", "adam"]
    lr: float
    lr_source: Literal["fixed", "artifact"]  # "artifact": the learned lr stored with the set
    momentum: float
    weight_decay: float
    epochs: int  # the loop runs epochs + 1 times, as the published code does
    schedule: Literal["dc-step"]  # lr x decay after epoch epochs//2 + 1, optimizer re-created
    decay: float
    batch_size: int
    loss: Literal["auto", "ce", "soft-ce"]  # auto: ce for hard labels, soft-ce for soft labels
    test_batch_size: int
    selection: Literal["final-epoch"]  # never selected on the test set
    runs: int
    seed: int
    overrides: tuple[tuple[str, Any], ...] = field(default=())

    @property
    def seeds(self) -> list[int]:
        """One seed per run: ``seed, seed+1, ...``."""
        return [self.seed + i for i in range(self.runs)]

    @property
    def decay_epoch(self) -> int:
        """The epoch after which the lr is multiplied by ``decay`` (DC: ``E//2 + 1``)."""
        return self.epochs // 2 + 1

    def content(self) -> dict[str, Any]:
        """Every semantic field, flat (not name, description or overrides), for records."""
        d = dataclasses.asdict(self)
        for k in ("name", "description", "overrides"):
            d.pop(k)
        return d

    def toml_content(self) -> dict[str, dict[str, Any]]:
        """The hashed content: the protocol's TOML tables without name and description.

        Keyed by the TOML file's table/key names (:data:`TOML_LAYOUT`), not by this dataclass's
        field names, so renaming a field never changes an id; a built-in protocol hashes to
        ``sha256(canonical_json(tables of its TOML file))``.
        """
        out: dict[str, dict[str, Any]] = {}
        for (table, key), attr in TOML_LAYOUT.items():
            out.setdefault(table, {})[key] = getattr(self, attr)
        return out

    @property
    def hash(self) -> str:
        return sha256_bytes(canonical_json(self.toml_content()))[:HASH_CHARS]

    @property
    def id(self) -> str:
        return f"{self.name}@{self.hash}"

    def to_record(self) -> dict[str, Any]:
        """What a result records about its protocol."""
        return {
            "id": self.id,
            "name": self.name,
            "hash": self.hash,
            "content": self.content(),
            "overrides": dict(self.overrides),
        }

    def with_overrides(self, **changes: Any) -> Protocol:
        """A derived protocol, e.g. ``p.with_overrides(arch="resnet18", epochs=50)``."""
        changes = {k: v for k, v in changes.items() if v is not None}
        if not changes:
            return self
        for key, value in changes.items():
            if key not in _OVERRIDABLE:
                raise ProtocolError(f"cannot override {key!r}; overridable: {', '.join(_OVERRIDABLE)}")
            _OVERRIDABLE[key](value)
        base = self.name.split("+", 1)[0]
        merged = dict(self.overrides) | changes
        name = f"{base}+" + ",".join(f"{k}={merged[k]}" for k in sorted(merged))
        return dataclasses.replace(self, name=name, overrides=tuple(sorted(merged.items())), **changes)


#: (TOML table, key) -> Protocol attribute: the one mapping between the file and the dataclass.
TOML_LAYOUT: dict[tuple[str, str], str] = {
    ("model", "arch"): "arch",
    ("augmentation", "name"): "augmentation",
    ("optimizer", "name"): "optimizer",
    ("optimizer", "lr"): "lr",
    ("optimizer", "lr_source"): "lr_source",
    ("optimizer", "momentum"): "momentum",
    ("optimizer", "weight_decay"): "weight_decay",
    ("schedule", "epochs"): "epochs",
    ("schedule", "kind"): "schedule",
    ("schedule", "decay"): "decay",
    ("training", "batch_size"): "batch_size",
    ("training", "loss"): "loss",
    ("evaluation", "batch_size"): "test_batch_size",
    ("evaluation", "selection"): "selection",
    ("evaluation", "runs"): "runs",
    ("evaluation", "seed"): "seed",
}
_CONVERT = {
    "lr": float,
    "momentum": float,
    "weight_decay": float,
    "decay": float,
    "epochs": int,
    "batch_size": int,
    "test_batch_size": int,
    "runs": int,
    "seed": int,
}


def _positive_int(v: Any) -> None:
    if not isinstance(v, int) or v < 1:
        raise ProtocolError(f"expected a positive integer, got {v!r}")


def _check_arch(v: Any) -> None:
    from harness.models import model_factory

    model_factory(v)


def _check_aug(v: Any) -> None:
    from harness.augment import AUGMENTATIONS

    AUGMENTATIONS.get(v)


def _check_optim(v: Any) -> None:
    if v not in ("sgd", "adam"):
        raise ProtocolError(f"optimizer must be sgd or adam, got {v!r}")


def _positive_float(v: Any) -> None:
    if not isinstance(v, (int, float)) or not v > 0:
        raise ProtocolError(f"expected a positive number, got {v!r}")


_OVERRIDABLE = {
    "arch": _check_arch,
    "augmentation": _check_aug,
    "optimizer": _check_optim,
    "epochs": _positive_int,
    "runs": _positive_int,
    "seed": lambda v: None,
    "lr": _positive_float,
    "batch_size": _positive_int,
}


def _from_toml(data: dict[str, Any], source: str) -> Protocol:
    try:
        fields = {
            attr: _CONVERT.get(attr, lambda v: v)(data[table][key])
            for (table, key), attr in TOML_LAYOUT.items()
        }
        p = Protocol(name=data["name"], description=data["description"], **fields)
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(f"{source}: malformed protocol ({type(exc).__name__}: {exc})") from None
    extra = sorted(
        f"{t}.{k}"
        for t, tab in data.items()
        if isinstance(tab, dict)
        for k in tab
        if (t, k) not in TOML_LAYOUT
    )
    if extra:  # an unknown key would be silently ignored, yet look like part of the recipe
        raise ProtocolError(f"{source}: unknown protocol keys {', '.join(extra)}")
    if p.schedule != "dc-step" or p.selection != "final-epoch":
        raise ProtocolError(f"{source}: unsupported schedule/selection {p.schedule}/{p.selection}")
    if p.lr_source not in ("fixed", "artifact") or p.loss not in ("auto", "ce", "soft-ce"):
        raise ProtocolError(f"{source}: bad lr_source or loss")
    _check_optim(p.optimizer)
    return p


def _builtin_files() -> dict[str, Traversable]:
    root = resources.files("harness.protocols")
    return {p.name[:-5]: p for p in root.iterdir() if p.name.endswith(".toml")}


def list_protocols() -> list[str]:
    """Names of the built-in protocols."""
    return sorted(_builtin_files())


def load_protocol(name_or_path: str | Path) -> Protocol:
    """A built-in protocol by name, or a protocol TOML file by path."""
    files = _builtin_files()
    key = str(name_or_path)
    if key in files:
        return _from_toml(tomllib.loads(files[key].read_text()), key)
    path = Path(key)
    if path.suffix == ".toml" and path.is_file():
        try:
            return _from_toml(tomllib.loads(path.read_text()), str(path))
        except tomllib.TOMLDecodeError as exc:
            raise ProtocolError(f"{path}: not valid TOML ({exc})") from None
    raise UnknownNameError(f"unknown protocol {key!r}; built-in: {', '.join(sorted(files))}")


def protocol_toml(name: str) -> str:
    """The frozen TOML text of a built-in protocol."""
    files = _builtin_files()
    if name not in files:
        raise UnknownNameError(f"unknown protocol {name!r}; built-in: {', '.join(sorted(files))}")
    return files[name].read_text()


def protocol_from_record(record: dict[str, Any]) -> Protocol:
    """Rebuild a protocol from what a result recorded about it (:meth:`Protocol.to_record`:
    ``name``, ``content``, ``overrides``), validated as a TOML file is; the caller compares
    its :attr:`~Protocol.id` with the recorded one. ProtocolError if the content is malformed."""
    content = record.get("content")
    overrides = record.get("overrides") or {}
    name = record.get("name")
    if not isinstance(content, dict) or not isinstance(overrides, dict) or not isinstance(name, str):
        raise ProtocolError("recorded protocol: needs a name, a content object and an overrides object")
    attrs = {attr: key for key, attr in TOML_LAYOUT.items()}
    unknown = sorted(set(content) - set(attrs))
    if unknown:
        raise ProtocolError(f"recorded protocol: unknown content keys {', '.join(unknown)}")
    data: dict[str, Any] = {"name": name, "description": ""}
    for attr, (table, key) in attrs.items():
        if attr in content:
            data.setdefault(table, {})[key] = content[attr]
    base = name.split("+", 1)[0]
    if base in _builtin_files():
        data["description"] = load_protocol(base).description
    proto = _from_toml(data, f"recorded protocol {name}")
    return dataclasses.replace(proto, overrides=tuple(sorted(overrides.items())))
