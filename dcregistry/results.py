"""Result records as files of a results dataset repo (torch-free; the server's check of them).

A results repo (``dcreg serve``'s second repo kind, or any Hub dataset repo written by
``harness results push``) holds one JSON file per evaluation cell at the path the sweep's
results directory uses (``harness/sweep/results.py``; its ``cell_relpath`` and this module's
:func:`record_path` must agree)::

    <dataset>/ipc<N>/<artifact digest, 64 hex>/<protocol id>/seed<S>.json

A file is a *done* cell of a sweep: the ``dcreg-eval/1`` record of that one seed
(:class:`~dcregistry.records.EvalRecord` JSON) plus ``status: "done"``, ``cell`` (artifact
digest, protocol id, seed), ``sweep`` (name, hash) and ``env`` — the same JSON a done cell file
of a results directory holds, written as **one line** of JSON (so ``datasets``' JSON loader reads
each file as one row). :func:`validate_record` is the check: bounded strict JSON, the record's
fields, the cell key, agreement between the key, the record and the file's path, and a closed
set of fields whose types match the ``datasets`` features the repo's card declares
(:func:`results_card`), so that every stored file loads under one schema.

dcregistry never imports harness: the harness's cell type (``CellResult``) writes this format,
and its tests check that what it writes passes :func:`validate_record`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ValidationError
from .jsonsafe import loads_bounded
from .records import RECORD_KIND, EvalRecord, RecordError

__all__ = [
    "MAX_RECORD_BYTES",
    "DATA_FILES_PATTERN",
    "CARD_FILE",
    "ResultRecordError",
    "RecordPlace",
    "parse_record_path",
    "is_record_path",
    "record_path",
    "validate_record",
    "record_bytes",
    "results_card",
    "results_features",
]

#: A record file is a few kilobytes; anything above this is refused unread.
MAX_RECORD_BYTES = 1 << 20
#: The glob (relative to the repo root) that matches every record file and nothing else.
DATA_FILES_PATTERN = "*/ipc*/*/*/seed*.json"
#: The dataset card of a results repo (``configs`` + ``dataset_info.features`` for datasets).
CARD_FILE = "README.md"

_DATASET = r"[a-z0-9][a-z0-9._-]{0,63}"
_PROTOCOL_ID = r"[A-Za-z0-9_+,=@-][A-Za-z0-9._+,=@-]{0,199}"
_RECORD_PATH_RE = re.compile(
    rf"(?P<dataset>{_DATASET})/ipc(?P<ipc>[1-9][0-9]{{0,8}})/(?P<hex>[0-9a-f]{{64}})/"
    rf"(?P<protocol>{_PROTOCOL_ID})/seed(?P<seed>0|[1-9][0-9]{{0,9}})\.json"
)
_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")

#: The fields a record file may have (top level) and those of its fixed-shape objects. The
#: free-form objects (protocol.content/overrides, strategy, env, baseline, rank) are ``json``
#: features on the card, so any content of theirs loads.
TOP_FIELDS = frozenset(
    {
        "kind",
        "status",
        "cell",
        "sweep",
        "env",
        "artifact",
        "protocol",
        "harness_version",
        "torch_version",
        "device",
        "strategy",
        "seeds",
        "accuracies",
        "mean",
        "std",
        "final_train_loss",
        "lr",
        "clipped",
        "baseline",
        "rank",
        "wall_time_s",
        "created_at",
        "host",
    }
)
ARTIFACT_FIELDS = frozenset({"ref", "digest", "dataset", "method", "ipc"})
PROTOCOL_FIELDS = frozenset({"id", "name", "hash", "content", "overrides"})
CELL_FIELDS = frozenset({"artifact", "protocol", "seed"})
SWEEP_FIELDS = frozenset({"name", "hash"})
_STRING_OR_NULL = ("harness_version", "torch_version", "device", "created_at", "host")
_NUMBER_OR_NULL = ("lr", "wall_time_s")


class ResultRecordError(ValidationError):
    """A result record file (or its path in a results repo) is not a valid record."""


@dataclass(frozen=True)
class RecordPlace:
    """What a record file's path says: dataset, IPC, artifact digest, protocol id, seed."""

    dataset: str
    ipc: int
    digest: str  # sha256:<64 hex>
    protocol_id: str
    seed: int

    @property
    def path(self) -> str:
        return record_path(self.dataset, self.ipc, self.digest, self.protocol_id, self.seed)


def parse_record_path(path: str) -> RecordPlace | None:
    """The place a results-layout path names, or None if ``path`` is not one (full match)."""
    m = _RECORD_PATH_RE.fullmatch(path) if isinstance(path, str) else None
    if m is None or "@" not in m["protocol"]:
        return None
    seed = int(m["seed"])
    if seed >= 2**31:
        return None
    return RecordPlace(m["dataset"], int(m["ipc"]), f"sha256:{m['hex']}", m["protocol"], seed)


def is_record_path(path: str) -> bool:
    """Whether ``path`` is a record file's place in the results layout."""
    return parse_record_path(path) is not None


def record_path(dataset: str, ipc: int, digest: str, protocol_id: str, seed: int) -> str:
    """The layout path of a cell's record (ResultRecordError if a part cannot be one)."""
    hexd = digest.removeprefix("sha256:")
    path = f"{dataset}/ipc{int(ipc)}/{hexd}/{protocol_id}/seed{int(seed)}.json"
    if parse_record_path(path) is None:
        raise ResultRecordError("path", f"{path[:200]!r} is not a results-layout path")
    return path


def _fail(where: str, problem: str) -> ResultRecordError:
    return ResultRecordError(where, problem)


def _closed(d: Any, allowed: frozenset[str], where: str) -> Mapping[str, Any]:
    if not isinstance(d, Mapping):
        raise _fail(where, "must be an object")
    extra = sorted(set(d) - allowed)
    if extra:
        raise _fail(f"{where}.{extra[0][:60]}", "is not a field of a result record")
    return d


def _check_types(d: Mapping[str, Any], where: str) -> None:
    for key in _STRING_OR_NULL:
        if d.get(key) is not None and not isinstance(d[key], str):
            raise _fail(f"{where}.{key}", "must be a string or null")
    for key in _NUMBER_OR_NULL:
        v = d.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
            raise _fail(f"{where}.{key}", "must be a finite number or null")
    if not isinstance(d.get("clipped", False), bool):
        raise _fail(f"{where}.clipped", "must be true or false")
    for key in ("strategy", "baseline", "rank"):
        if d.get(key) is not None and not isinstance(d[key], Mapping):
            raise _fail(f"{where}.{key}", "must be an object or null")
    art = _closed(d.get("artifact"), ARTIFACT_FIELDS, f"{where}.artifact")
    for key in ("ref", "dataset", "method"):
        if art.get(key) is not None and not isinstance(art[key], str):
            raise _fail(f"{where}.artifact.{key}", "must be a string")
    proto = _closed(d.get("protocol"), PROTOCOL_FIELDS, f"{where}.protocol")
    for key in ("id", "name", "hash"):
        if proto.get(key) is not None and not isinstance(proto[key], str):
            raise _fail(f"{where}.protocol.{key}", "must be a string")
    for key in ("content", "overrides"):
        if proto.get(key) is not None and not isinstance(proto[key], Mapping):
            raise _fail(f"{where}.protocol.{key}", "must be an object")
    sweep = _closed(d.get("sweep"), SWEEP_FIELDS, f"{where}.sweep")
    if not all(isinstance(sweep.get(k), str) for k in SWEEP_FIELDS):
        raise _fail(f"{where}.sweep", "needs string name and hash")
    env = d.get("env")
    if not isinstance(env, Mapping):
        raise _fail(f"{where}.env", "must be an object")


def validate_record(path: str, data: bytes, *, where: str | None = None) -> EvalRecord:
    """The record in ``data`` if it is a valid record file for ``path``; ResultRecordError (or
    JSONFormatError, both UserErrors) naming the field otherwise. Never trusts ``data``."""
    place = parse_record_path(path)
    where = where or (path[:200] if isinstance(path, str) else "record")
    if place is None:
        raise _fail(
            where,
            "is not a results-layout path (<dataset>/ipc<N>/<64 hex digest>/<protocol id>/seed<S>.json)",
        )
    if len(data) > MAX_RECORD_BYTES:
        raise _fail(where, f"is {len(data)} bytes, above the {MAX_RECORD_BYTES}-byte cap of a record")
    if b"\n" in data.rstrip(b"\n") or b"\r" in data:
        raise _fail(where, "must be one line of JSON (one record per file, as JSON Lines)")
    d = _closed(loads_bounded(data, where, max_bytes=MAX_RECORD_BYTES), TOP_FIELDS, where)
    if d.get("kind") != RECORD_KIND:
        raise _fail(f"{where}.kind", f"must be {RECORD_KIND!r}")
    if d.get("status") != "done":
        raise _fail(f"{where}.status", "must be 'done' (only finished evaluations are records)")
    cell = _closed(d.get("cell"), CELL_FIELDS, f"{where}.cell")
    digest, pid, seed = cell.get("artifact"), cell.get("protocol"), cell.get("seed")
    if not isinstance(digest, str) or not _DIGEST_RE.fullmatch(digest):
        raise _fail(f"{where}.cell.artifact", "must be sha256:<64 hex>")
    if not isinstance(pid, str) or "@" not in pid:
        raise _fail(f"{where}.cell.protocol", "must be a protocol id NAME@HASH")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
        raise _fail(f"{where}.cell.seed", "must be an integer in 0..2^31-1")
    _check_types(d, where)
    seeds = d.get("seeds")
    if not isinstance(seeds, list) or any(isinstance(x, bool) or not isinstance(x, int) for x in seeds):
        raise _fail(f"{where}.seeds", "must be a list of integers")
    try:
        record = EvalRecord.from_json(d, where)
    except RecordError as exc:
        raise _fail(exc.field, exc.problem) from None
    except (TypeError, ValueError) as exc:  # a field of the wrong shape deep inside
        raise _fail(where, f"is not a dcreg-eval/1 record ({type(exc).__name__})") from None
    art = record.artifact
    if art.get("digest") != digest:
        raise _fail(f"{where}.artifact.digest", "differs from the cell's artifact digest")
    if record.protocol_id != pid:
        raise _fail(f"{where}.protocol.id", "differs from the cell's protocol")
    if record.seeds != [seed] or len(record.accuracies) != 1:
        raise _fail(f"{where}.seeds", f"a record holds exactly its cell's seed [{seed}] and one accuracy")
    acc = record.accuracies[0]
    if not (math.isfinite(acc) and 0.0 <= acc <= 1.0):
        raise _fail(f"{where}.accuracies", "an accuracy is a fraction in [0, 1]")
    if not all(math.isfinite(x) for x in record.final_train_loss):
        raise _fail(f"{where}.final_train_loss", "must be finite numbers")
    ipc = art.get("ipc")
    if isinstance(ipc, bool) or not isinstance(ipc, int) or ipc < 1:
        raise _fail(f"{where}.artifact.ipc", "must be a positive integer")
    actual = RecordPlace(str(art.get("dataset")), ipc, digest, pid, seed)
    if actual != place:
        raise _fail(where, f"holds the record of {actual.path[:300]!r}, not of its own path")
    return record


def record_bytes(obj: Mapping[str, Any]) -> bytes:
    """A record's file content: canonical JSON (sorted keys, no spaces) on one line."""
    return (
        json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False) + "\n"
    ).encode("utf-8")


def _features() -> list[dict[str, Any]]:
    """The ``dataset_info.features`` of a results repo's card (datasets' YAML form)."""

    def s(name: str) -> dict[str, Any]:
        return {"name": name, "dtype": "string"}

    def n(name: str, dtype: str) -> dict[str, Any]:
        return {"name": name, "dtype": dtype}

    return [
        s("kind"),
        s("status"),
        {"name": "cell", "struct": [s("artifact"), s("protocol"), n("seed", "int64")]},
        {
            "name": "artifact",
            "struct": [s("dataset"), s("digest"), n("ipc", "int64"), s("method"), s("ref")],
        },
        {
            "name": "protocol",
            "struct": [s("id"), s("name"), s("hash"), n("content", "json"), n("overrides", "json")],
        },
        {"name": "seeds", "list": "int64"},
        {"name": "accuracies", "list": "float64"},
        n("mean", "float64"),
        n("std", "float64"),
        {"name": "final_train_loss", "list": "float64"},
        n("lr", "float64"),
        n("clipped", "bool"),
        n("baseline", "json"),
        n("rank", "json"),
        n("strategy", "json"),
        n("env", "json"),
        {"name": "sweep", "struct": [s("name"), s("hash")]},
        s("device"),
        s("harness_version"),
        s("torch_version"),
        s("host"),
        s("created_at"),
        n("wall_time_s", "float64"),
    ]


def results_features() -> Any:
    """The records' features as a ``datasets.Features`` (imports datasets): what to pass as
    ``features=`` to ``datasets.load_dataset("json", data_files=...)``, whose schema is otherwise
    inferred from the first file (a record with ``baseline: null`` first and one with a baseline
    later would not load). ``load_dataset(NS/NAME)`` reads the same features from the card."""
    import datasets

    return datasets.Features._from_yaml_list(_features())


def results_card(name: str) -> str:
    """The README.md of the results repo ``name``: front matter declaring the record files as the
    ``train`` split with the records' features (so ``datasets.load_dataset(name)`` reads every
    record under one schema), and a short body saying what the files are."""
    import yaml

    front = {
        "tags": ["dcreg-results"],
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": "train", "path": DATA_FILES_PATTERN}],
            }
        ],
        "dataset_info": {"config_name": "default", "features": _features()},
    }
    body = (
        f"# {name}: dataset condensation results\n\n"
        "One JSON file per evaluation (a `dcreg-eval/1` record of one seed, plus the cell key, "
        "the sweep and the environment), at\n"
        "`<dataset>/ipc<N>/<artifact digest>/<protocol id>/seed<S>.json`, pushed by "
        "`harness results push`.\n\n"
        "```python\nimport datasets\n\n"
        f'ds = datasets.load_dataset("{name}", split="train")\n```\n'
    )
    return "---\n" + yaml.safe_dump(front, sort_keys=False) + "---\n\n" + body
