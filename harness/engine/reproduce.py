"""Re-run a recorded evaluation and say how closely it reproduces (``harness reproduce``).

The source is an :class:`~dcregistry.records.EvalRecord` JSON file (``harness eval --json``) or
the ``eval`` annotations a store keeps on a version (``harness eval --record``). The rerun uses
the protocol rebuilt from the record's own content (refused unless it hashes to the recorded
id), the recorded seeds and the recorded strategy, on the artifact whose digest the record
names (refused if the reference now resolves to other content).

Verdicts, per seed and overall (:func:`classify`):

- ``bit-exact``: identical floats;
- ``within noise``: overall ``|Δ mean| <= max(2σ/√R, 1/n_test)`` (σ the recorded std over the
  R runs, one test image = 1/n_test); per seed the single-run band ``max(2σ, 1/n_test)``;
- ``differs``: anything else.

The exit status of ``harness reproduce`` follows the overall verdict: 0 for bit-exact or within
noise, 1 for differs. What differs in the environment (torch version, device, strategy, harness
version) is named in the report, since it is the usual reason for a non-bit-exact rerun.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dcregistry.errors import JSONFormatError, UserError
from dcregistry.records import EvalRecord, RecordError
from harness.protocols import Protocol, protocol_from_record

REPORT_KIND = "harness-reproduce/1"
BIT_EXACT = "bit-exact"
WITHIN_NOISE = "within noise"
DIFFERS = "differs"
VERDICTS = (BIT_EXACT, WITHIN_NOISE, DIFFERS)
#: A record file is a few KiB; anything this large is not one.
MAX_RECORD_BYTES = 4 << 20
#: Environment fields compared between the record and the rerun.
ENVIRONMENT_FIELDS = ("torch_version", "device", "strategy", "harness_version")


class ReproduceError(UserError):
    """A recorded result cannot be re-run as recorded."""


class RecordSourceError(ReproduceError):
    """The record file or the store's annotations give no usable record."""


class ProtocolMismatchError(ReproduceError):
    """The record's protocol content does not hash to its recorded id."""


class DigestMismatchError(ReproduceError):
    """The artifact found is not the one the record was made on."""


class ReproductionDiffersError(ReproduceError):
    """The rerun differs from the record beyond noise (``harness reproduce`` exits 1)."""


# --- the comparison (pure) ------------------------------------------------------------------


@dataclass(frozen=True)
class SeedComparison:
    seed: int
    recorded: float
    rerun: float
    verdict: str

    @property
    def delta(self) -> float:
        return self.rerun - self.recorded

    def to_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "recorded": self.recorded,
            "rerun": self.rerun,
            "delta": self.delta,
            "verdict": self.verdict,
        }


@dataclass(frozen=True)
class Comparison:
    """Per-seed and overall verdicts of a rerun against a record."""

    seeds: list[SeedComparison]
    recorded_mean: float
    rerun_mean: float
    tolerance: float  # of the mean: max(2σ/√R, 1/n_test)
    seed_tolerance: float  # of one run: max(2σ, 1/n_test)
    verdict: str

    @property
    def delta_mean(self) -> float:
        return self.rerun_mean - self.recorded_mean

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "recorded_mean": self.recorded_mean,
            "rerun_mean": self.rerun_mean,
            "delta_mean": self.delta_mean,
            "tolerance": self.tolerance,
            "seed_tolerance": self.seed_tolerance,
            "seeds": [s.to_json() for s in self.seeds],
        }


def noise_tolerance(std: float, runs: int, test_size: int) -> float:
    """``max(2σ/√R, 1/n_test)``: how far a rerun's mean may move and still be noise."""
    if runs < 1 or test_size < 1:
        raise ValueError("runs and test_size must be positive")
    return max(2.0 * std / math.sqrt(runs), 1.0 / test_size)


def classify(
    recorded: Sequence[float],
    rerun: Sequence[float],
    test_size: int,
    *,
    seeds: Sequence[int] | None = None,
    recorded_std: float | None = None,
) -> Comparison:
    """Compare per-seed accuracies (fractions) of a record and its rerun.

    ``recorded_std`` defaults to the population std of ``recorded`` (what records store).
    """
    if len(recorded) != len(rerun) or not recorded:
        raise ValueError("recorded and rerun need the same, non-zero number of runs")
    seeds = list(seeds) if seeds is not None else list(range(len(recorded)))
    runs = len(recorded)
    std = recorded_std if recorded_std is not None else statistics.pstdev(recorded) if runs > 1 else 0.0
    tol = noise_tolerance(std, runs, test_size)
    seed_tol = max(2.0 * std, 1.0 / test_size)

    def verdict(a: float, b: float, t: float) -> str:
        if a == b:
            return BIT_EXACT
        return WITHIN_NOISE if abs(b - a) <= t else DIFFERS

    per_seed = [
        SeedComparison(s, float(a), float(b), verdict(a, b, seed_tol))
        for s, a, b in zip(seeds, recorded, rerun, strict=True)
    ]
    rec_mean, new_mean = statistics.fmean(recorded), statistics.fmean(rerun)
    if all(c.verdict == BIT_EXACT for c in per_seed):
        overall = BIT_EXACT
    else:
        overall = WITHIN_NOISE if abs(new_mean - rec_mean) <= tol else DIFFERS
    return Comparison(per_seed, rec_mean, new_mean, tol, seed_tol, overall)


def environment_differences(recorded: EvalRecord, rerun: EvalRecord) -> list[dict[str, Any]]:
    """``[{field, recorded, now}]`` for the environment fields that differ."""
    out = []
    for name in ENVIRONMENT_FIELDS:
        a, b = getattr(recorded, name), getattr(rerun, name)
        if name == "strategy":
            a, b = a.get("name"), b.get("name")
        if a != b:
            out.append({"field": name, "recorded": a, "now": b})
    return out


# --- the report -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReproduceReport:
    """What ``harness reproduce`` found (``--json`` prints :meth:`to_json`)."""

    source: str  # the record file or REF#annotation-id
    artifact: dict[str, Any]  # ref, digest
    protocol_id: str
    comparison: Comparison
    test_size: int
    environment: list[dict[str, Any]] = field(default_factory=list)
    rerun: EvalRecord | None = None
    notes: list[str] = field(default_factory=list)
    kind: str = REPORT_KIND

    @property
    def verdict(self) -> str:
        return self.comparison.verdict

    @property
    def ok(self) -> bool:
        """Bit-exact or within noise (exit 0); differs is exit 1."""
        return self.verdict != DIFFERS

    def raise_if_differs(self) -> None:
        """ReproductionDiffersError (one line) unless bit-exact or within noise."""
        if not self.ok:
            c = self.comparison
            env = ", ".join(e["field"] for e in self.environment) or "nothing"
            raise ReproductionDiffersError(
                f"the rerun differs from the record: mean Δ {100 * c.delta_mean:+.2f} points, beyond the "
                f"noise tolerance ±{100 * c.tolerance:.2f} (environment differences: {env})"
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "source": self.source,
            "artifact": dict(self.artifact),
            "protocol_id": self.protocol_id,
            "test_size": self.test_size,
            **self.comparison.to_json(),
            "environment": [dict(e) for e in self.environment],
            "notes": list(self.notes),
            "rerun": self.rerun.to_json() if self.rerun is not None else None,
        }

    @classmethod
    def from_json(cls, d: Any) -> ReproduceReport:
        """Parse a report as written (RecordError naming the bad field)."""
        from dcregistry.records import _num

        if not isinstance(d, Mapping) or d.get("kind") != REPORT_KIND:
            raise RecordError("report.kind", f"expected {REPORT_KIND!r}")
        seeds = d.get("seeds")
        if not isinstance(seeds, list) or not seeds or not all(isinstance(s, Mapping) for s in seeds):
            raise RecordError("report.seeds", "must be a non-empty list of objects")
        for where, v in [("report.verdict", d.get("verdict"))] + [
            (f"report.seeds[{i}].verdict", s.get("verdict")) for i, s in enumerate(seeds)
        ]:
            if v not in VERDICTS:
                raise RecordError(where, f"must be one of {', '.join(VERDICTS)}, got {v!r}")
        for i, s in enumerate(seeds):
            if isinstance(s.get("seed"), bool) or not isinstance(s.get("seed"), int):
                raise RecordError(f"report.seeds[{i}].seed", "must be an integer")
        size = d.get("test_size")
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise RecordError("report.test_size", "must be a positive integer")
        per_seed = [
            SeedComparison(
                int(s["seed"]),
                _num(s, "recorded", f"report.seeds[{i}]"),
                _num(s, "rerun", f"report.seeds[{i}]"),
                str(s["verdict"]),
            )
            for i, s in enumerate(seeds)
        ]
        comp = Comparison(
            per_seed,
            _num(d, "recorded_mean", "report"),
            _num(d, "rerun_mean", "report"),
            _num(d, "tolerance", "report"),
            _num(d, "seed_tolerance", "report"),
            str(d["verdict"]),
        )
        rerun = d.get("rerun")
        env = d.get("environment") or []
        if not isinstance(env, list) or not all(isinstance(e, Mapping) for e in env):
            raise RecordError("report.environment", "must be a list of objects")
        return cls(
            source=str(d.get("source", "")),
            artifact=dict(d.get("artifact") or {}),
            protocol_id=str(d.get("protocol_id", "")),
            comparison=comp,
            test_size=size,
            environment=[dict(e) for e in env],
            rerun=EvalRecord.from_json(rerun, "report.rerun") if rerun is not None else None,
            notes=[str(n) for n in d.get("notes") or []],
        )

    def lines(self) -> list[str]:
        """The human report: one line per seed, the overall verdict, the environment."""
        c = self.comparison
        out = [f"{self.artifact.get('ref', '?')} under {self.protocol_id} ({self.source})"]
        for s in c.seeds:
            out.append(
                f"  seed {s.seed}: recorded {100 * s.recorded:.2f} %, rerun {100 * s.rerun:.2f} % "
                f"(Δ {100 * s.delta:+.2f}): {s.verdict}"
            )
        out.append(
            f"overall: {c.verdict}: mean {100 * c.recorded_mean:.2f} -> {100 * c.rerun_mean:.2f} % "
            f"(Δ {100 * c.delta_mean:+.2f}, noise tolerance ±{100 * c.tolerance:.2f})"
        )
        if self.environment:
            diffs = ", ".join(f"{e['field']} {e['recorded']} -> {e['now']}" for e in self.environment)
            out.append(f"environment differs: {diffs}")
        else:
            out.append("environment: same torch version, device, strategy and harness version")
        out.extend(f"note: {n}" for n in self.notes)
        return out


# --- finding the record ---------------------------------------------------------------------


def load_record_file(path: str | Path) -> EvalRecord:
    """An EvalRecord from a JSON file (bounded read, validated)."""
    from dcregistry.jsonsafe import loads_bounded

    p = Path(path)
    try:
        with open(p, "rb") as f:
            data = f.read(MAX_RECORD_BYTES + 1)
    except OSError as exc:
        raise RecordSourceError(f"{p}: cannot read the record ({exc.strerror or exc})") from None
    if len(data) > MAX_RECORD_BYTES:
        raise RecordSourceError(f"{p}: larger than {MAX_RECORD_BYTES} bytes, not a result record")
    try:
        return EvalRecord.from_json(loads_bounded(data, str(p)), str(p))
    except JSONFormatError as exc:
        raise RecordSourceError(f"{p}: not a result record ({exc})") from None


def _matches(rec: EvalRecord, selector: str, base: bool = False) -> bool:
    """``selector`` names the record's protocol: its id, name or hash (or, with ``base``, the
    built-in protocol it was derived from: ``dc-noaug`` for ``dc-noaug+epochs=2@...``)."""
    p = rec.protocol
    name = str(p.get("name") or rec.protocol_id.split("@", 1)[0])
    if selector in (rec.protocol_id, name, p.get("hash")):
        return True
    return base and name.split("+", 1)[0] == selector


def select_record(
    candidates: Sequence[tuple[str, EvalRecord]], protocol: str | None, where: str
) -> tuple[str, EvalRecord, list[str]]:
    """The record to re-run from ``(label, record)`` candidates (oldest first): the only
    protocol's, or the one ``protocol`` picks (an id, name or hash; else the base protocol of
    derived ones, if that names one protocol); the latest of several under that protocol."""
    notes: list[str] = []
    if protocol is not None:
        picked = [c for c in candidates if _matches(c[1], protocol)]
        if not picked:
            picked = [c for c in candidates if _matches(c[1], protocol, base=True)]
        if not picked:
            have = ", ".join(sorted({r.protocol_id for _, r in candidates})) or "none"
            raise RecordSourceError(f"{where}: no eval record under protocol {protocol!r}; recorded: {have}")
    else:
        picked = list(candidates)
    ids = sorted({r.protocol_id for _, r in picked})
    if len(ids) > 1:
        raise RecordSourceError(
            f"{where} has eval records under {len(ids)} protocols ({', '.join(ids)}): "
            "pick one with --protocol ID"
        )
    if not picked:
        raise RecordSourceError(f"{where}: no eval record (record one with `harness eval ... --record`)")
    if len(picked) > 1:
        notes.append(f"{len(picked)} records under {picked[-1][1].protocol_id}: re-running the latest")
    label, rec = picked[-1]
    return label, rec, notes


def records_on_ref(ref: str, store: Any = None) -> tuple[Any, list[tuple[str, EvalRecord]], list[str]]:
    """The resolved version and its eval annotations as ``(REF#id, record)`` (damaged ones
    skipped and noted)."""
    from dcregistry.store import get_store, resolve_ref

    resolved = resolve_ref(ref, get_store(store) if store else None)
    if resolved.info is None or resolved.store is None:
        raise RecordSourceError(
            f"{ref} is a directory: give the record file (harness eval --json FILE) or a store reference"
        )
    out: list[tuple[str, EvalRecord]] = []
    notes: list[str] = []
    for ann in resolved.store.annotations(resolved.info, "eval"):
        label = f"{resolved.label}#{ann.get('id', '?')}"
        try:
            out.append((label, EvalRecord.from_json(ann.get("record"), label)))
        except RecordError as exc:
            notes.append(f"skipped an unreadable record ({exc})")
    return resolved, out, notes


# --- the rerun ------------------------------------------------------------------------------


def recorded_protocol(rec: EvalRecord) -> Protocol:
    """The protocol rebuilt from the record's content; refused unless it hashes to its id."""
    from dcregistry.errors import ProtocolError

    try:
        proto = protocol_from_record(rec.protocol)
    except ProtocolError as exc:
        raise ProtocolMismatchError(
            f"the record's protocol {rec.protocol_id} cannot be rebuilt: {exc}"
        ) from None
    if proto.id != rec.protocol_id or proto.hash != rec.protocol.get("hash"):
        raise ProtocolMismatchError(
            f"the record's protocol content hashes to {proto.id}, not its recorded id {rec.protocol_id}: "
            "the record was edited or comes from an incompatible harness; evaluate again with `harness eval`"
        )
    return proto


def _strategy(rec: EvalRecord) -> str:
    from .strategies import STRATEGIES

    name = rec.strategy.get("name")
    if not isinstance(name, str):
        raise ReproduceError(
            "the record names no strategy (record.strategy.name); it cannot be re-run as made"
        )
    if name not in STRATEGIES:
        raise ReproduceError(
            f"the record's strategy {name!r} is not in this harness ({', '.join(STRATEGIES.names())})"
        )
    return name


def rerun(
    rec: EvalRecord,
    artifact: Any,
    *,
    device: str = "auto",
    data_root: str | None = None,
    progress: Callable[[int, str], Callable[[int], None]] | None = None,
) -> EvalRecord:
    """Evaluate ``artifact`` again under the record's protocol, seeds and strategy.

    A record of the protocol's own seeds (or of the first R of them) is one
    :func:`~.evaluate.evaluate`; a record of other seeds (a sweep cell holds one) runs each seed
    as the sweep does (``seed=s, runs=1``). The rerun record names the recorded protocol."""
    from .evaluate import _summary, evaluate

    proto = recorded_protocol(rec)
    strategy = _strategy(rec)
    ref = str(rec.artifact.get("ref") or artifact.path)
    if list(rec.seeds) == proto.seeds:
        return evaluate(
            artifact, proto, ref=ref, device=device, data_root=data_root, strategy=strategy, progress=progress
        )
    if not rec.seeds:
        raise ReproduceError("the record has no seeds; it cannot be re-run")
    if list(rec.seeds) == proto.seeds[: len(rec.seeds)]:  # the first R seeds (``--runs R``)
        first = evaluate(
            artifact,
            proto.with_overrides(runs=len(rec.seeds)),
            ref=ref,
            device=device,
            data_root=data_root,
            strategy=strategy,
            progress=progress,
        )
        return dataclasses.replace(first, protocol=proto.to_record())
    parts = [
        evaluate(
            artifact,
            proto.with_overrides(seed=s, runs=1),
            ref=ref,
            device=device,
            data_root=data_root,
            strategy=strategy,
            progress=progress,
        )
        for s in rec.seeds
    ]
    accs = [a for p in parts for a in p.accuracies]
    mean, std = _summary(accs)
    return dataclasses.replace(
        parts[0],
        protocol=proto.to_record(),
        seeds=list(rec.seeds),
        accuracies=accs,
        mean=mean,
        std=std,
        final_train_loss=[x for p in parts for x in p.final_train_loss],
        wall_time_s=round(sum(p.wall_time_s or 0.0 for p in parts), 3),
    )


def _open_recorded_artifact(rec: EvalRecord, ref: str | None, store: Any, resolved: Any = None) -> Any:
    """The artifact the record names, checked against the recorded digest."""
    from dcregistry.store import get_store, resolve_ref

    digest = rec.artifact.get("digest")
    if not isinstance(digest, str) or not digest:
        raise DigestMismatchError(
            "the record names no artifact digest (record.artifact.digest); nothing to match"
        )
    if resolved is None:
        where = ref or rec.artifact.get("ref")
        if not isinstance(where, str) or not where:
            raise RecordSourceError("the record names no artifact reference: give one with --artifact")
        resolved = resolve_ref(where, get_store(store) if store else None)
    if resolved.info is not None and resolved.info.digest != digest:
        raise DigestMismatchError(
            f"{resolved.label} is {resolved.info.digest[:19]}, not the recorded {digest[:19]}: "
            "point --artifact at the version the record was made on"
        )
    artifact = resolved.open()
    if artifact.digest != digest:
        raise DigestMismatchError(
            f"{resolved.label} is {artifact.digest[:19]}, not the recorded {digest[:19]}: "
            "point --artifact at the version the record was made on"
        )
    return artifact


def count_test_images(dataset: str, data_root: str | None = None) -> int:
    """How many images the dataset's test split has (one image = 1/size of accuracy)."""
    from harness.data import load_dataset

    return int(load_dataset(dataset, "test", data_root).labels.numel())


def reproduce(
    source: str,
    *,
    protocol: str | None = None,
    store: Any = None,
    artifact_ref: str | None = None,
    device: str = "auto",
    data_root: str | None = None,
    runs: int | None = None,
    progress: Callable[[int, str], Callable[[int], None]] | None = None,
) -> ReproduceReport:
    """Re-run the record ``source`` names (a record JSON file, or REF's eval annotations, with
    ``protocol`` choosing among several) and compare; see the module docstring. ``runs`` re-runs
    only the first ``runs`` recorded seeds (a cheaper spot check; the noise band keeps the
    record's σ)."""
    notes: list[str] = []
    resolved = None
    path = Path(source)
    if source.endswith(".json") or path.is_file():
        rec = load_record_file(path)
        label = str(path)
        if protocol is not None and not _matches(rec, protocol, base=True):
            raise RecordSourceError(f"{path} is a record under {rec.protocol_id}, not {protocol!r}")
    else:
        resolved, candidates, notes = records_on_ref(source, store)
        label, rec, more = select_record(candidates, protocol, resolved.label)
        notes += more
        if artifact_ref is not None:
            resolved = None  # the version named by --artifact
    proto = recorded_protocol(rec)  # refused before anything is opened or trained
    if runs is not None:
        if not 1 <= runs <= len(rec.seeds):
            raise ReproduceError(f"--runs {runs}: the record has {len(rec.seeds)} seed(s)")
        if runs < len(rec.seeds):
            notes.append(f"re-running the first {runs} of the record's {len(rec.seeds)} seeds")
            rec = dataclasses.replace(
                rec,
                seeds=rec.seeds[:runs],
                accuracies=rec.accuracies[:runs],
                final_train_loss=rec.final_train_loss[:runs],
            )
    _strategy(rec)
    artifact = _open_recorded_artifact(rec, artifact_ref, store, resolved)
    new = rerun(rec, artifact, device=device, data_root=data_root, progress=progress)
    size = count_test_images(artifact.metadata["dataset"], data_root)
    comp = classify(rec.accuracies, new.accuracies, size, seeds=rec.seeds, recorded_std=rec.std)
    if rec.baseline is not None or rec.rank is not None:
        notes.append("only the set's accuracies are re-run (not the record's baseline or rank blocks)")
    return ReproduceReport(
        source=label,
        artifact={"ref": rec.artifact.get("ref"), "digest": artifact.digest},
        protocol_id=proto.id,
        comparison=comp,
        test_size=size,
        environment=environment_differences(rec, new),
        rerun=new,
        notes=notes,
    )
