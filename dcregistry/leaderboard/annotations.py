"""The evaluation results recorded on a store's versions (``harness eval --record``, ``harness
sweep --record``: ``eval`` annotations holding one merged ``dcreg-eval/1`` record of all seeds)
as a leaderboard source: each record is split into one cell per seed (its accuracy, and its
seed's share of a rank block), at the layout path of that cell, so it is checked and grouped like
a results directory's cells and deduplicated against them (a sweep's ``--record`` writes the
same cells)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import UserError
from ..records import EvalRecord, RecordError
from ..results import record_bytes, record_path

if TYPE_CHECKING:  # pragma: no cover
    from ..store.base import Store, VersionInfo

__all__ = ["StoreAnnotationsSource"]

_RANK_SERIES = ("set_acc", "random_acc", "set_hard_acc", "full_acc", "set_noaug_acc", "random_noaug_acc")


def _rank_of_seed(rank: Mapping[str, Any], i: int) -> dict[str, Any]:
    out = {k: v for k, v in rank.items() if k not in _RANK_SERIES and k != "scores"}
    for k in _RANK_SERIES:
        v = rank.get(k)
        out[k] = [v[i]] if isinstance(v, list) else None
    return out


def split_record(info: VersionInfo, record: EvalRecord) -> Iterator[tuple[str, dict[str, Any]]]:
    """(layout path, cell JSON) of each seed of ``record`` (about the version ``info``)."""
    md = info.metadata
    art = {
        "ref": info.ref,
        "digest": info.digest,
        "dataset": md.get("dataset"),
        "method": record.artifact.get("method") or md.get("method"),
        "ipc": md.get("ipc"),
    }
    full = record.to_json()
    if len(record.seeds) != len(record.accuracies):
        raise RecordError("record.seeds", "needs one accuracy per seed")
    for i, (seed, acc) in enumerate(zip(record.seeds, record.accuracies, strict=True)):
        cell: dict[str, Any] = {
            **full,
            "artifact": art,
            "seeds": [seed],
            "accuracies": [acc],
            "mean": acc,
            "std": 0.0,
            "final_train_loss": full["final_train_loss"][i : i + 1]
            if len(record.final_train_loss) == len(record.seeds)
            else [],
            "baseline": None,
            "status": "done",
            "cell": {"artifact": info.digest, "protocol": record.protocol_id, "seed": seed},
            "sweep": {"name": "store annotation", "hash": ""},
            "env": {},
        }
        if record.rank is not None:
            cell["rank"] = _rank_of_seed(full["rank"], i)
        if not isinstance(acc, float) or not math.isfinite(acc):
            raise RecordError("record.accuracies", "must be finite")
        yield (
            record_path(str(art["dataset"]), int(art["ipc"] or 0), info.digest, record.protocol_id, seed),
            cell,
        )


class StoreAnnotationsSource:
    """The ``eval`` annotations of every version of ``store`` (see the module docstring)."""

    def __init__(self, store: Store, label: str | None = None):
        self.store = store
        self.label = label or f"results recorded in {getattr(store, 'location', 'the store')}"

    def files(self) -> Iterator[tuple[str, bytes | Exception]]:
        for info in self.store.list(all_versions=True):
            for ann in self.store.annotations(info, "eval"):
                where = f"{info.ref} annotation {ann.get('id', '?')}"
                try:
                    record = EvalRecord.from_json(ann.get("record"))
                    cells = list(split_record(info, record))
                except (UserError, TypeError, ValueError) as exc:
                    yield where, exc if isinstance(exc, UserError) else UserError(f"{where}: {exc}")
                    continue
                for path, cell in cells:
                    yield path, record_bytes(cell)
