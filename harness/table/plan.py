"""What ``harness table`` computes: its config, budgets and the planned sets (no work done here)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dcregistry.errors import UserError

if TYPE_CHECKING:
    pass


DEFAULT_METHODS = ("random", "herding", "kcenter", "forgetting", "dc", "dsa", "dm", "mtt")


DEFAULT_IPCS = (1, 10)


DEFAULT_PROTOCOLS = ("dc-noaug", "dsa")


DEFAULT_SKIP = ("mtt@10",)  # the seed's table has MTT at IPC 1 only


#: Outer-iteration budgets used by default, chosen so that the table is feasible on a 2-core CPU
#: (the published values are hours to days per set there; measured times in the README).
DEFAULT_ITERATIONS = {
    "dc@1": 50,
    "dsa@1": 50,
    "dm@1": 200,
    "mtt@1": 100,
    "dc@10": 2,
    "dsa@10": 2,
    "dm@10": 100,
}


#: Method options used by default: MTT's 100 experts x 50 epochs would take hours here, so a few
#: short experts (matching a start epoch in [0, 4) over 2 expert epochs).
DEFAULT_OPTIONS = {
    "mtt": {"num_experts": "3", "expert_train_epochs": "6", "max_start_epoch": "4", "expert_epochs": "2"}
}


#: Evaluation epochs by default (the protocols' 300 / 1000 are ~1-3 s per epoch at IPC 10 here).
DEFAULT_EPOCHS = 50


_KEY = re.compile(r"([a-z0-9_-]+)(?:@([0-9]+))?")


class TableError(UserError):
    """The comparison table was asked for something inconsistent (unknown key, bad budget)."""


@dataclass
class TableConfig:
    """What ``harness table`` runs (see the module docstring)."""

    out: Path
    dataset: str = "digits"
    image_size: int | None = 32
    methods: tuple[str, ...] = DEFAULT_METHODS
    ipcs: tuple[int, ...] = DEFAULT_IPCS
    protocols: tuple[str, ...] = DEFAULT_PROTOCOLS
    skip: tuple[str, ...] = DEFAULT_SKIP
    runs: int = 5
    sets: int = 1
    epochs: int | None = DEFAULT_EPOCHS  # None: the protocols' own
    iterations: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_ITERATIONS))
    options: dict[str, dict[str, str]] = field(
        default_factory=lambda: {m: dict(o) for m, o in DEFAULT_OPTIONS.items()}
    )
    model: str = "convnet"
    device: str = "auto"
    data_root: str | None = None
    strategy: str = "sequential"
    isolate: bool = True  # condense in a child process (own peak memory)


def parse_budget_key(key: str) -> tuple[str, int | None]:
    """``"dc"`` -> ("dc", None), ``"dc@10"`` -> ("dc", 10)."""
    m = _KEY.fullmatch(key.strip().lower())
    if not m:
        raise TableError(f"budget key {key!r} is not METHOD or METHOD@IPC (e.g. dc or dc@10)")
    return m.group(1), int(m.group(2)) if m.group(2) else None


def parse_assignments(pairs: list[str] | tuple[str, ...], what: str) -> dict[str, str]:
    """``["a=1", "b=2"]`` -> {"a": "1", "b": "2"} (the value is everything after the first '=')."""
    out: dict[str, str] = {}
    for p in pairs:
        k, sep, v = p.partition("=")
        if not sep or not k.strip() or not v.strip():
            raise TableError(f"{what} {p!r} is not KEY=VALUE")
        out[k.strip()] = v.strip()
    return out


def iterations_for(cfg: TableConfig, method: str, ipc: int) -> int | None:
    """The iteration budget of ``method`` at ``ipc`` (METHOD@IPC beats METHOD; None: published)."""
    if f"{method}@{ipc}" in cfg.iterations:
        return cfg.iterations[f"{method}@{ipc}"]
    return cfg.iterations.get(method)


@dataclass(frozen=True)
class SetPlan:
    method: str
    ipc: int
    seed: int
    iterations: int | None
    options: tuple[tuple[str, str], ...]
    context: tuple[tuple[str, Any], ...] = ()  # dataset, image size, model: what else makes the set

    @property
    def budget_hash(self) -> str:
        doc = {
            "iterations": self.iterations,
            "options": [list(o) for o in self.options],
            "context": [list(c) for c in self.context],
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:8]

    @property
    def name(self) -> str:
        return f"{self.method}-ipc{self.ipc}-s{self.seed}-{self.budget_hash}"


def validate(cfg: TableConfig) -> None:
    """Fail early (before any work) on unknown methods, protocols and budget keys."""
    from harness.methods import get_method
    from harness.methods.base import SelectionMethod, build_config
    from harness.protocols import load_protocol

    if cfg.runs < 1 or cfg.sets < 1:
        raise TableError("runs and sets must be at least 1")
    if cfg.sets > cfg.runs:
        raise TableError(f"{cfg.sets} sets but only {cfg.runs} runs: some sets would never be evaluated")
    if not cfg.methods or not cfg.ipcs or not cfg.protocols:
        raise TableError("the table needs at least one method, one ipc and one protocol")
    if any(k < 1 for k in cfg.ipcs):
        raise TableError("every ipc must be at least 1")
    for m in cfg.methods:
        get_method(m)  # UnknownNameError with close matches
    for p in cfg.protocols:
        load_protocol(p)
    for key, n in cfg.iterations.items():
        m, _ = parse_budget_key(key)
        if not isinstance(n, int) or n < 1:
            raise TableError(f"iterations for {key} must be a positive integer, got {n!r}")
        if m in cfg.methods and isinstance(get_method(m), SelectionMethod):
            raise TableError(f"{m} is a selection method: it has no iterations")
    for key in cfg.skip:
        parse_budget_key(key)
    for m, opts in cfg.options.items():
        if m in cfg.methods:
            build_config(get_method(m), opts)  # unknown keys / bad values fail now


def plan_sets(cfg: TableConfig) -> list[SetPlan]:
    """Every set the table needs, IPC by IPC (IPC 1 first: the published ordering is checked there)."""
    from harness.methods import get_method
    from harness.methods.base import SelectionMethod

    skip = {parse_budget_key(s) for s in cfg.skip}
    context = (("dataset", cfg.dataset), ("image_size", cfg.image_size), ("model", cfg.model))
    plans = []
    for ipc in cfg.ipcs:
        for m in cfg.methods:
            if (m, ipc) in skip or (m, None) in skip:
                continue
            selection = isinstance(get_method(m), SelectionMethod)
            its = None if selection else iterations_for(cfg, m, ipc)
            opts = tuple(sorted(cfg.options.get(m, {}).items()))
            for s in range(cfg.sets):
                plans.append(SetPlan(m, ipc, s, its, opts, context))
    return plans


def _protocol(cfg: TableConfig, name: str):
    from harness.protocols import load_protocol

    # Runs are not overridden: each cell names its own seed, so the protocol id (part of the cell
    # key) does not change with --runs and more runs reuse the cells already computed.
    return load_protocol(name).with_overrides(epochs=cfg.epochs)


def config_from_cli(
    out: str,
    methods: str | None,
    ipcs: str | None,
    protocols: str | None,
    runs: int,
    sets: int,
    epochs: int | None,
    iterations: tuple[str, ...],
    options: tuple[str, ...],
    skip: tuple[str, ...] | None,
    **kw: Any,
) -> TableConfig:
    """A :class:`TableConfig` from the command's strings (comma lists, KEY=VALUE pairs)."""
    cfg = TableConfig(out=Path(out), runs=runs, sets=sets, epochs=epochs, **kw)
    if methods:
        cfg.methods = tuple(m.strip().lower() for m in methods.split(",") if m.strip())
    if ipcs:
        try:
            cfg.ipcs = tuple(int(k) for k in ipcs.split(",") if k.strip())
        except ValueError:
            raise TableError(f"ipcs must be comma-separated integers, got {ipcs!r}") from None
    if protocols:
        cfg.protocols = tuple(p.strip() for p in protocols.split(",") if p.strip())
    if skip is not None:
        cfg.skip = tuple(skip)
    for key, v in parse_assignments(iterations, "iterations").items():
        m, k = parse_budget_key(key)
        if not re.fullmatch(r"[0-9]+", v):
            raise TableError(f"iterations {key}={v}: not a positive integer")
        if k is None:  # a per-method budget replaces the per-IPC defaults of that method
            for d in [d for d in cfg.iterations if parse_budget_key(d)[0] == m]:
                del cfg.iterations[d]
        cfg.iterations[m if k is None else f"{m}@{k}"] = int(v)
    for key, v in parse_assignments(options, "option").items():
        m, sep, opt = key.partition(".")
        if not sep or not opt:
            raise TableError(f"option {key!r} is not METHOD.KEY=VALUE (e.g. mtt.num_experts=5)")
        cfg.options.setdefault(m.lower(), {})[opt] = v
    return cfg
