"""DD-Ranking's metrics of a set under a protocol (``harness rank``), on fractions.

Every accuracy comes from the same protocol and the same seeds (:func:`~.evaluate.evaluate`
and its ``evaluate_sets``), with the strategy the set's own evaluation used:

- the set (its labels; soft labels for a soft set) and the equal-size class-balanced random real
  subset (``evaluate``'s baseline) give IOR;
- the full real training set, and the set with hard labels (argmax of a soft set's labels) give
  HLR; the full-data accuracy is computed once per (dataset, image size, protocol id, pixel
  space) and cached on disk (:func:`full_data_accuracy`);
- ARS needs the set and the random subset once more with augmentation ``none`` (left out, None,
  when the protocol itself augments nothing).

The scores themselves are :mod:`dcregistry.ranking` (torch-free), stored with the record as
its typed ``rank`` block (:class:`~dcregistry.records.RankBlock`).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dcregistry.artifact import Artifact
from dcregistry.canonical import canonical_json, sha256_bytes
from dcregistry.errors import UserError
from dcregistry.ranking import DEFAULT_LAMBDA, ars, check_lambda, lrs, normalized_score
from dcregistry.records import EvalRecord, RankBlock, RecordError
from harness import __version__
from harness.protocols import Protocol

from .strategies import Choice
from .trainer import TrainSet

__all__ = [
    "DEFAULT_LAMBDA",
    "FullDataEntry",
    "RankError",
    "ars",
    "full_data_accuracy",
    "full_data_cache_dir",
    "lrs",
    "normalized_score",
    "rank",
]

FULLDATA_KIND = "harness-fulldata/1"
FULLDATA_DIR = "fulldata"
#: A cache entry is a few hundred bytes; anything this large is not one.
MAX_ENTRY_BYTES = 1 << 20
Progress = Callable[[int, str], Callable[[int], None]]


class RankError(UserError):
    """``harness rank`` cannot compute DD-Ranking's metrics as asked."""


def full_data_cache_dir(explicit: str | Path | None = None) -> Path:
    """``explicit``, else ``$HARNESS_CACHE/fulldata``, else ``~/.cache/harness/fulldata``."""
    from .autotune import cache_dir

    return Path(explicit).expanduser() if explicit else cache_dir() / FULLDATA_DIR


def full_data_key(
    dataset: str, image_size: int | None, protocol: Protocol, pixel_space: Any, lr: float | None
) -> str:
    """What the full-data accuracy depends on, hashed: dataset, image size, protocol id, and the
    pixel space the real images are trained in (a ZCA space trains on other numbers than a
    normalized one); the learned lr where the protocol takes it from the artifact."""
    fields = {
        "dataset": dataset,
        "image_size": image_size,
        "protocol": protocol.id,
        "pixel_space": pixel_space,
        "lr": lr if protocol.lr_source == "artifact" else None,
    }
    return sha256_bytes(canonical_json(fields))[:24]


@dataclass(frozen=True)
class FullDataEntry:
    """A cached full-data evaluation: per-seed accuracies of the protocol on the real train split."""

    key: str
    dataset: str
    image_size: int | None
    protocol_id: str
    seeds: list[int]
    accuracies: list[float]
    device: str
    strategy: str
    torch_version: str
    harness_version: str
    wall_time_s: float
    created_at: str
    kind: str = FULLDATA_KIND

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: Any, where: str) -> FullDataEntry:
        """Parse an entry; RecordError naming the bad field."""
        if not isinstance(d, Mapping) or d.get("kind") != FULLDATA_KIND:
            raise RecordError(f"{where}.kind", f"expected {FULLDATA_KIND!r}")
        accs = d.get("accuracies")
        seeds = d.get("seeds")
        if not isinstance(seeds, list) or not all(
            isinstance(s, int) and not isinstance(s, bool) for s in seeds
        ):
            raise RecordError(f"{where}.seeds", "must be a list of integers")
        if (
            not isinstance(accs, list)
            or len(accs) != len(seeds)
            or not all(isinstance(a, (int, float)) and not isinstance(a, bool) and 0 <= a <= 1 for a in accs)
        ):
            raise RecordError(f"{where}.accuracies", "must be one accuracy in [0, 1] per seed")
        size = d.get("image_size")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool)):
            raise RecordError(f"{where}.image_size", "must be an integer or null")
        strs = {
            k: d.get(k)
            for k in (
                "key",
                "dataset",
                "protocol_id",
                "device",
                "strategy",
                "torch_version",
                "harness_version",
                "created_at",
            )
        }
        bad = [k for k, v in strs.items() if not isinstance(v, str)]
        if bad:
            raise RecordError(f"{where}.{bad[0]}", "must be a string")
        wall = d.get("wall_time_s")
        if isinstance(wall, bool) or not isinstance(wall, (int, float)):
            raise RecordError(f"{where}.wall_time_s", "must be a number")
        return cls(
            image_size=size,
            seeds=list(seeds),
            accuracies=[float(a) for a in accs],
            wall_time_s=float(wall),
            **{k: str(v) for k, v in strs.items()},
        )


def _read_entry(path: Path) -> FullDataEntry | None:
    """The cached entry at ``path``; None if absent or unreadable (then it is recomputed)."""
    from dcregistry.errors import JSONFormatError
    from dcregistry.jsonsafe import loads_bounded

    try:
        with open(path, "rb") as f:
            data = f.read(MAX_ENTRY_BYTES + 1)
    except OSError:
        return None
    if len(data) > MAX_ENTRY_BYTES:
        return None
    try:
        return FullDataEntry.from_json(loads_bounded(data, str(path)), str(path))
    except (JSONFormatError, RecordError):
        return None


def train_full_data(
    prepared: Any, protocol: Protocol, factory: Any, choice: Choice, tick: Any = None
) -> list[float]:
    """Per-seed accuracies of ``protocol`` trained on the whole real train split (the cache's
    one expensive step; tests count its calls)."""
    from .evaluate import evaluate_sets

    assert prepared.train_split is not None  # prepare(..., with_train_split=True)
    images, labels = prepared.train_split
    device = prepared.train.images.device
    full = TrainSet(
        prepared.space.from_unit(images).to(device),
        labels.to(device),
        prepared.train.num_classes,
        prepared.train.lr,
    )
    return evaluate_sets(full, prepared.test, protocol, factory, choice=choice, tick=tick).accuracies


def full_data_accuracy(
    prepared: Any,
    protocol: Protocol,
    factory: Any,
    choice: Choice,
    *,
    pixel_space: Any,
    cache_dir: str | Path | None = None,
    progress: Progress | None = None,
    device_name: str = "?",
) -> tuple[FullDataEntry, bool]:
    """The full real training set's per-seed accuracies under ``protocol``: from the cache, or
    trained once and written atomically. Returns ``(entry, was_cached)``."""
    from dcregistry.fsio import atomic_write_text, ensure_dir

    key = full_data_key(prepared.dataset, prepared.image_size, protocol, pixel_space, prepared.train.lr)
    root = full_data_cache_dir(cache_dir)
    path = root / f"{prepared.dataset}-{prepared.image_size or 'native'}-{protocol.hash}-{key}.json"
    entry = _read_entry(path)
    if (
        entry is not None
        and entry.key == key
        and entry.seeds == protocol.seeds
        and entry.protocol_id == protocol.id
    ):
        return entry, True
    t0 = time.perf_counter()
    tick = progress(len(protocol.seeds) * (protocol.epochs + 1), choice.strategy) if progress else None
    accs = train_full_data(prepared, protocol, factory, choice, tick)
    entry = FullDataEntry(
        key=key,
        dataset=prepared.dataset,
        image_size=prepared.image_size,
        protocol_id=protocol.id,
        seeds=list(protocol.seeds),
        accuracies=accs,
        device=device_name,
        strategy=choice.strategy,
        torch_version=torch.__version__,
        harness_version=__version__,
        wall_time_s=round(time.perf_counter() - t0, 3),
        created_at=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    import json
    import warnings

    try:  # atomic (temp + fsync + rename): a concurrent reader sees no half entry
        ensure_dir(root)
        atomic_write_text(path, json.dumps(entry.to_json(), indent=1, sort_keys=True) + "\n")
    except (OSError, UserError) as exc:  # the accuracy is known: a cache that cannot keep it only costs time
        warnings.warn(f"full-data accuracy not cached in {root}: {exc}", stacklevel=2)
    return entry, False


def rank(
    artifact: Artifact,
    protocol: Protocol,
    *,
    ref: str | None = None,
    device: str = "auto",
    data_root: str | None = None,
    strategy: str = "auto",
    lam: float = DEFAULT_LAMBDA,
    cache_dir: str | Path | None = None,
    progress: Progress | None = None,
) -> EvalRecord:
    """Evaluate ``artifact`` under ``protocol`` with DD-Ranking's metrics: the record
    :func:`~.evaluate.evaluate` gives (with its random-real baseline) plus a ``rank`` block."""
    from .evaluate import (
        _device_name,
        evaluate,
        evaluate_sets,
        prepare,
        protocol_aug_factory,
        random_real_subset,
        resolve_device,
    )

    try:
        lam = check_lambda(lam)
    except ValueError as exc:
        raise RankError(f"--lam: {exc}") from None
    t0 = time.perf_counter()
    record = evaluate(
        artifact,
        protocol,
        ref=ref,
        device=device,
        data_root=data_root,
        strategy=strategy,
        baseline=True,
        progress=progress,
    )
    assert record.baseline is not None
    # Every other accuracy is run the way the set's own evaluation was.
    choice = Choice(str(record.strategy.get("name")), {}, "as the set's evaluation")
    dev = resolve_device(device)
    prepared = prepare(artifact, dev, data_root, with_train_split=True)
    size = prepared.train.images.shape[-1]
    factory = protocol_aug_factory(protocol, prepared.space, prepared.dsa_strategy, size)
    md = artifact.metadata

    def tick(p: Protocol) -> Any:
        return progress(len(p.seeds) * (p.epochs + 1), choice.strategy) if progress else None

    soft = prepared.train.soft
    if soft:  # HLR uses hard labels: the argmax of the soft ones
        hard = dataclasses.replace(prepared.train, targets=prepared.train.targets.argmax(dim=1))
        set_hard = evaluate_sets(
            hard, prepared.test, protocol, factory, choice=choice, tick=tick(protocol)
        ).accuracies
    else:
        set_hard = list(record.accuracies)
    full, cached = full_data_accuracy(
        prepared,
        protocol,
        factory,
        choice,
        pixel_space=md["pixel_space"],
        cache_dir=cache_dir,
        progress=progress,
        device_name=_device_name(dev),
    )
    set_noaug = random_noaug = None
    if protocol.augmentation != "none":
        plain = protocol.with_overrides(augmentation="none")
        f0 = protocol_aug_factory(plain, prepared.space, prepared.dsa_strategy, size)
        set_noaug = evaluate_sets(
            prepared.train, prepared.test, plain, f0, choice=choice, tick=tick(plain)
        ).accuracies
        base = random_real_subset(prepared, md["ipc"], protocol.seed)
        random_noaug = evaluate_sets(
            base, prepared.test, plain, f0, choice=choice, tick=tick(plain)
        ).accuracies
    block = RankBlock(
        lam=lam,
        labels="soft" if soft else "hard",
        set_acc=list(record.accuracies),
        random_acc=list(record.baseline.accuracies),
        set_hard_acc=set_hard,
        full_acc=full.accuracies,
        set_noaug_acc=set_noaug,
        random_noaug_acc=random_noaug,
        full_data={
            "protocol_id": full.protocol_id,
            "key": full.key,
            "cached": cached,
            "wall_time_s": full.wall_time_s,
        },
    )
    return dataclasses.replace(record, rank=block, wall_time_s=round(time.perf_counter() - t0, 3))


def rank_lines(block: RankBlock) -> list[str]:
    """The metrics as text lines (``harness rank``'s report after the eval table)."""
    s = block.scores()

    def ms(name: str, scale: float, fmt: str) -> str:
        v = s[name]
        return "-" if v is None else f"{scale * v['mean']:{fmt}} ± {scale * v['std']:.3g}"

    def mean(xs: list[float] | None) -> str:
        return "-" if xs is None else f"{100 * sum(xs) / len(xs):.2f} %"

    labels = (
        "soft-label set: IOR with its soft labels, HLR with their argmax (hard) labels"
        if block.labels == "soft"
        else "hard-label set: IOR and HLR with its labels"
    )
    cached = "cached" if block.full_data.get("cached") else "trained now, cached"
    lines = [
        f"DD-Ranking metrics (λ = {block.lam}; accuracies as fractions; {labels})",
        f"  IOR = acc(set) - acc(random real)       {ms('ior', 100, '+.2f')} pt"
        f"   ({mean(block.set_acc)} - {mean(block.random_acc)})",
        f"  HLR = acc(full real) - acc(set, hard)   {ms('hlr', 100, '+.2f')} pt"
        f"   ({mean(block.full_acc)} [{cached}] - {mean(block.set_hard_acc)})",
        f"  LRS = N(λ·IOR - (1-λ)·HLR)              {ms('lrs', 1, '.4f')}",
    ]
    if block.ars_runs is None:
        lines.append("  ARS: - (the protocol augments nothing; rank under an augmenting protocol)")
    else:
        lines.append(
            f"  ARS = N(λ·IOR_aug + (1-λ)·IOR_noaug)    {ms('ars', 1, '.4f')}"
            f"   (no aug: {mean(block.set_noaug_acc)} - {mean(block.random_noaug_acc)})"
        )
    return lines
