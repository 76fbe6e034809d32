"""The condensation method interface: selection methods pick real images, synthesis methods learn images.

A method is a class registered in :data:`harness.methods.METHODS` by canonical name (one decorator
line in its own file). Its ``Config`` dataclass holds the published defaults; every field is a
``key=value`` option of the condense command. The shared loop (:mod:`harness.methods.loop`) does
data loading, the validation split, seeding, checkpoints, model selection, timing and memory; a
method only implements the algorithm.

Seeding contract: the loop passes ``generator(seed, f"{method}/init")`` to ``init_state`` /
``select`` and ``generator(seed, f"{method}/iter{i}")`` to ``step(i)``, so a resumed run equals an
uninterrupted one. Methods never touch global RNG state (no ``torch.manual_seed``): every
``torch.rand*``/``randperm``/model init takes ``generator=gen``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from dcregistry.errors import UserError
from dcregistry.refs import has_control_chars

if TYPE_CHECKING:
    from harness.data.pixelspace import TensorSpace

# "normalized": the dataset's canonical (x - mean) / std. "zca": kornia-eps0.1 ZCA whitening of the
# unit-range images, fitted on exactly the training images the method sees (MTT's --zca).
DATA_SPACES = ("normalized", "zca")
FLOAT32_MAX = 3.4028234663852886e38


class DivergedError(UserError):
    """A synthesis run reached non-finite values or an unusable learned lr."""


class MethodOptionError(UserError):
    """An option given to a method is unknown or has a value of the wrong type."""


@dataclass
class CondenseContext:
    """What a method sees: the training data (without the validation split) and the run's settings."""

    dataset: str  # catalog name, e.g. "digits"
    images: torch.Tensor  # [N, C, H, W] float32 training images in `space`, on `device`
    labels: torch.Tensor  # [N] int64, on `device`
    num_classes: int
    ipc: int
    model: str  # harness.models name, e.g. "convnet"
    device: torch.device
    space: TensorSpace  # the pixel space of `images`, with its fitted ZCA for a ZCA space
    seed: int
    dsa_strategy: str  # DSA strategy string for this dataset (MNIST-like sets drop flip)
    # progress(total, description) -> update(n, loss=None); a method's inner work (e.g. training
    # an embedding net) may report through it. The loop sets it; None = silent.
    progress: Callable[[int, str], Callable[..., None]] | None = None
    # The validation split (same pixel space and device as `images`), held out from `images`;
    # given only to a method whose `uses_validation` says it scores candidates on it (ORS).
    val_images: torch.Tensor | None = None
    val_labels: torch.Tensor | None = None
    _class_idx: dict[int, torch.Tensor] = field(default_factory=dict, repr=False)

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.images.shape[2]), int(self.images.shape[3])

    def class_indices(self, c: int) -> torch.Tensor:
        """Indices (on ``images``' device) of the training images of class ``c`` (cached)."""
        if c not in self._class_idx:
            self._class_idx[c] = torch.nonzero(self.labels == c, as_tuple=False).reshape(-1)
        return self._class_idx[c]

    def class_images(self, c: int) -> torch.Tensor:
        """The training images of class ``c``."""
        return self.images[self.class_indices(c)]

    def make_model(self, gen: torch.Generator, name: str | None = None) -> nn.Module:
        """A freshly initialised network (``name`` or the run's model) on ``device``, seeded by ``gen``."""
        from harness.models import create_model

        return create_model(
            name or self.model, self.channels, self.num_classes, self.image_size, generator=gen
        ).to(self.device)


#: The type of a method's ``Config`` dataclass: what ``cfg`` is in every method hook.
ConfigT = typing.TypeVar("ConfigT")


class SynthesisState(typing.TypedDict, total=False):
    """A synthesis method's state: ``images`` (a leaf requiring grad) and ``labels``, plus what
    the method keeps between iterations. The keys are this contract; a method adds its own in a
    subclass (e.g. a cached compiled function)."""

    images: torch.Tensor
    labels: torch.Tensor
    lr: torch.Tensor  # a learned learning rate (MTT)
    momentum: torch.Tensor | None  # the images' momentum buffer (None: none yet)
    lr_momentum: torch.Tensor | None
    opt: Any  # a torch optimizer over the images, where a method uses one
    fn: Any  # a compiled per-iteration function (matching methods)


class Method(typing.Generic[ConfigT]):
    """Common base: ``name`` (set by registration), ``kind`` and the ``Config`` dataclass
    (a method subclasses ``SelectionMethod[ItsConfig]`` / ``SynthesisMethod[ItsConfig]``)."""

    kind: ClassVar[str] = ""
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Config: ClassVar[type] = type(None)

    def configure(self, cfg: ConfigT, ctx: CondenseContext) -> ConfigT:
        """Resolve defaults that depend on the run (e.g. per-IPC loops); returns the hashed config."""
        return cfg

    def data_space(self, cfg: ConfigT) -> str:
        """The pixel space of the training data the method sees: one of :data:`DATA_SPACES`."""
        return "normalized"

    def uses_validation(self, cfg: ConfigT) -> bool:
        """Whether the method scores its candidates on the validation split: the loop then holds
        the split out of ``ctx.images`` (as ``--eval-every`` does) and hands it over as
        ``ctx.val_images`` / ``ctx.val_labels``. The test split is never loaded either way."""
        return False


class SelectionMethod(Method[ConfigT]):
    """Returns indices of real images (``ipc`` per class, class-balanced)."""

    kind: ClassVar[str] = "selection"

    def select(
        self, ctx: CondenseContext, cfg: ConfigT, gen: torch.Generator
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """``(indices into ctx.images, info recorded in method_config)`` (e.g. the embedding net)."""
        raise NotImplementedError


class SynthesisMethod(Method[ConfigT]):
    """Owns learnable images; one optimisation step per outer iteration."""

    kind: ClassVar[str] = "synthesis"

    def init_state(
        self,
        ctx: CondenseContext,
        cfg: ConfigT,
        images: torch.Tensor,
        labels: torch.Tensor,
        gen: torch.Generator,
    ) -> SynthesisState:
        """The state: at least ``images`` (a leaf requiring grad) and ``labels`` (+ optimizer state)."""
        raise NotImplementedError

    def step(
        self, ctx: CondenseContext, cfg: ConfigT, state: SynthesisState, iteration: int, gen: torch.Generator
    ) -> float:
        """One outer iteration; returns the loss shown in the progress bar."""
        raise NotImplementedError

    def state_dict(self, state: SynthesisState) -> dict[str, Any]:
        """Checkpointable state: tensors (saved as safetensors) and JSON-able scalars/lists/dicts."""
        raise NotImplementedError

    def load_state_dict(self, ctx: CondenseContext, cfg: ConfigT, sd: dict[str, Any]) -> SynthesisState:
        """Inverse of :meth:`state_dict`; a resumed run must equal an uninterrupted one."""
        raise NotImplementedError

    def diverged(self, state: SynthesisState) -> str | None:
        """What makes the state unusable (non-finite pixels, a learned lr <= 0), or None."""
        if not bool(torch.isfinite(state["images"]).all()):
            return "the synthetic images hold NaN or inf"
        lr = float(state["lr"]) if state.get("lr") is not None else None
        if lr is not None and not (math.isfinite(lr) and lr > 0):
            return f"the learned lr is {lr:.4g} (it must stay positive)"
        return None

    def result(self, state: SynthesisState) -> dict[str, torch.Tensor]:
        """Artifact tensors: ``images`` [N,C,H,W] float32 cpu, ``labels`` [N] int64, optional 0-d ``lr``."""
        out = {
            "images": state["images"].detach().float().cpu().clone(),
            "labels": state["labels"].detach().long().cpu().clone(),
        }
        if "lr" in state:
            out["lr"] = state["lr"].detach().float().cpu().reshape(())
        return out


# --------------------------------------------------------------------------------------------
# Config dataclasses: options from strings, canonical records, hashes


def config_fields(config_cls: type) -> list[dataclasses.Field[Any]]:
    """The public option fields of a method's ``Config`` dataclass."""
    return [f for f in dataclasses.fields(config_cls) if not f.name.startswith("_")]


def _field_types(config_cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(config_cls)
    except Exception:  # unresolvable annotation: fall back to the raw ones
        return {f.name: f.type for f in dataclasses.fields(config_cls)}


def _convert(key: str, raw: str, typ: Any) -> Any:
    if has_control_chars(raw):  # float("0.1\n") would pass: values are matched in full
        raise MethodOptionError(f"option {key}={raw!r}: contains a control character")
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and raw.strip().lower() in ("none", "null", ""):
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(key, raw, a)
            except MethodOptionError as exc:
                errors.append(str(exc))
        raise MethodOptionError(errors[0] if errors else f"option {key}: cannot parse {raw!r}")
    if origin is typing.Literal:
        for a in args:
            if str(a) == raw:
                return a
        raise MethodOptionError(f"option {key}={raw!r}: must be one of {', '.join(map(str, args))}")
    if typ is bool:
        low = raw.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise MethodOptionError(f"option {key}={raw!r}: must be true or false")
    if typ is int:
        try:
            return int(raw.strip(), 10)
        except ValueError:
            raise MethodOptionError(f"option {key}={raw!r}: must be an integer") from None
    if typ is float:
        try:
            val = float(raw)
        except ValueError:
            raise MethodOptionError(f"option {key}={raw!r}: must be a number") from None
        if val != val or val in (float("inf"), float("-inf")):
            raise MethodOptionError(f"option {key}={raw!r}: must be finite")
        if abs(val) > FLOAT32_MAX:  # options scale float32 tensors (torch refuses such a factor)
            raise MethodOptionError(f"option {key}={raw!r}: must be within ±{FLOAT32_MAX:.4g} (float32)")
        return val
    if typ is str:
        return raw
    raise MethodOptionError(f"option {key} has type {typ!r}, which cannot be set from the command line")


def parse_options(pairs: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``["k=v", ...]`` -> ``{"k": "v"}``; a pair without ``=`` or a repeated key is an error."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise MethodOptionError(f"option {pair!r} is not of the form key=value")
        if key in out:
            raise MethodOptionError(f"option {key} is given twice")
        out[key] = value
    return out


def build_config(
    method: Method[Any], options: dict[str, str] | None = None, overrides: dict[str, Any] | None = None
) -> Any:
    """The method's ``Config`` with string ``options`` converted to the fields' types.

    ``overrides`` are already-typed values set by the loop (e.g. ``iterations``) for fields that
    exist. An unknown key raises :class:`MethodOptionError` listing the valid keys.
    """
    cls = method.Config
    names = [f.name for f in config_fields(cls)]
    types_ = _field_types(cls)
    values: dict[str, Any] = {}
    for key, raw in (options or {}).items():
        if key not in names:
            known = ", ".join(names) if names else "none"
            raise MethodOptionError(f"method {method.name} has no option {key!r} (options: {known})")
        values[key] = _convert(key, raw, types_.get(key, str))
    for key, val in (overrides or {}).items():
        if key in names and key not in values and val is not None:
            values[key] = val
    cfg = cls(**values)
    validate = getattr(cfg, "validate", None)
    if callable(validate):
        validate()
    return cfg


def config_record(cfg: Any) -> dict[str, Any]:
    """The config as a JSON-able dict (all fields, resolved values).

    A field marked ``metadata={"omit_default": True}`` is left out while it holds its default:
    an option added after sets were published keeps their config hashes (and checkpoints) valid.
    """
    out = {}
    for f in config_fields(type(cfg)):
        val = getattr(cfg, f.name)
        if f.metadata.get("omit_default") and f.default is not dataclasses.MISSING and val == f.default:
            continue
        out[f.name] = _jsonable(val)
    return out


def _jsonable(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return v


def config_hash(method: str, record: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of ``{"method": name, "config": record}``."""
    blob = json.dumps(
        {"method": method, "config": record},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        allow_nan=False,
    )
    return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()


def option_rows(method: Method[Any]) -> list[tuple[str, str, str, str]]:
    """``(name, type, default, help)`` per option, for ``methods show``."""
    rows = []
    types_ = _field_types(method.Config)
    for f in config_fields(method.Config):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = "(required)"
        typ = types_.get(f.name, f.type)
        tname = getattr(typ, "__name__", None) or str(typ).replace("typing.", "")
        rows.append(
            (
                f.name,
                tname,
                repr(default) if isinstance(default, str) else str(default),
                f.metadata.get("help", ""),
            )
        )
    return rows
