"""What a store knows about the artifacts a leaderboard shows: name and version, metadata,
card text, condensation time and peak memory (``method_config``), and a sample grid.

An artifact that no reachable store holds is still shown (from its records), with its ref and
the reason it could not be looked up."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    from ..store.base import Store, VersionInfo

__all__ = ["ArtifactInfo", "lookup_artifacts"]


@dataclass
class ArtifactInfo:
    """One artifact (digest) as the site shows it."""

    digest: str
    ref: str | None  # as the records name it
    info: VersionInfo | None = None  # the store's version, when reachable
    card: str | None = None
    grid_png: bytes | None = None
    problem: str | None = None  # why it is not reachable / what failed

    @property
    def hex(self) -> str:
        return self.digest.removeprefix("sha256:")

    @property
    def reachable(self) -> bool:
        return self.info is not None

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self.info.metadata) if self.info is not None else {}

    @property
    def method_config(self) -> dict[str, Any]:
        mc = self.metadata.get("method_config")
        return dict(mc) if isinstance(mc, dict) else {}

    @property
    def condense_time_s(self) -> float | None:
        v = self.method_config.get("wall_time_s")
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 else None

    @property
    def peak_memory(self) -> tuple[int, str] | None:
        mc = self.method_config
        v = mc.get("peak_memory_bytes")
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            return None
        kind = mc.get("peak_memory_kind")
        return v, kind if isinstance(kind, str) else ""


def _find(
    store: Store, digest: str, ref: str | None, index: Callable[[], dict[str, VersionInfo]]
) -> VersionInfo:
    from ..refs import parse_ref

    hexd = digest.removeprefix("sha256:")
    if ref:
        try:
            parsed = parse_ref(ref)
        except UserError:
            parsed = None
        if parsed is not None and parsed.kind == "name" and parsed.name:
            try:
                info = store.resolve(f"{parsed.name}@sha256:{hexd}")
                if info.digest == digest:
                    return info
            except UserError:
                pass
    found = index().get(digest)
    if found is not None:
        return found
    raise UserError("the store holds no version with this digest")


def lookup_artifacts(
    digests: dict[str, str | None], store: Store | None, *, grids: bool = True
) -> dict[str, ArtifactInfo]:
    """digest -> :class:`ArtifactInfo` for every digest (``digests`` maps each to the ref its
    records give). Nothing here raises for an unreachable store or a damaged artifact: the
    problem is recorded on the artifact."""
    out = {d: ArtifactInfo(d, ref) for d, ref in digests.items()}
    if store is None:
        for a in out.values():
            a.problem = "no store was given to look artifacts up in"
        return out
    listed: list[dict[str, VersionInfo]] = []

    def index() -> dict[str, VersionInfo]:
        """Every version by digest, listed once and only when a record's ref does not find its
        set (a path, or another name): listing a Hub store is many requests."""
        if not listed:
            listed.append({v.digest: v for v in store.list(all_versions=True)})
        return listed[0]

    for a in out.values():
        try:
            a.info = _find(store, a.digest, a.ref, index)
        except (UserError, OSError) as exc:
            a.problem = str(exc)
            continue
        try:
            a.card = store.card(a.info)
        except (UserError, OSError) as exc:
            a.problem = f"card: {exc}"
        if grids:
            try:
                from ..server.pages import grid_png

                a.grid_png = grid_png(store.open(a.info, verify=False))
            except Exception as exc:  # a preview must not take the site down: say why it is missing
                a.problem = f"sample grid: {type(exc).__name__}: {exc}"
    return out
