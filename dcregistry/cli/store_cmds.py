"""``dcreg`` store commands: push, pull, list, show, tag, untag, tags, verify, rm, gc, card.

Every command takes ``--store S`` ("local" = $DCREG_HOME or ~/.cache/dcreg, or a store
directory). Read commands take ``--json``. ``gc`` only reports unless given ``--no-dry-run``.
Nothing here imports torch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from ..errors import TagProtectedError, ValidationError, VerificationFailedError
from ..pixelspace import PixelSpace
from ..refs import validate_name
from ..store import EVAL_KIND, Store, resolve_ref, store_for
from . import cli
from .common import emit_json, json_option, progress_disabled, quiet_option, store_option


def _store(spec: str | None, ref: object = None) -> Store:
    # an hf:// reference names its own store (the Hub, or the --store endpoint)
    return store_for(str(ref) if ref is not None else None, spec)


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _pixel(md: Mapping[str, Any]) -> str:
    try:
        return PixelSpace.parse(md.get("pixel_space")).key
    except ValidationError:
        return "?"


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]
    ]
    return "\n".join(lines)


# -------------------------------------------------------------------------------------- push
@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--name", "-n", required=True, metavar="NS/NAME", help="Artifact name.")
@click.option(
    "--tag",
    "-t",
    "tags",
    multiple=True,
    metavar="TAG",
    help="Tag to point at the pushed version (repeatable).",
)
@store_option
@quiet_option
@json_option
def push(
    path: Path, name: str, tags: tuple[str, ...], store_spec: str | None, quiet: bool, as_json: bool
) -> None:
    """Store the artifact directory PATH as the next version of NS/NAME.

    Prints `NS/NAME@vN sha256:<digest>`. Identical content already stored under NS/NAME is not
    stored again: the existing version is printed (and `unchanged` said on stderr).
    """
    store = _store(store_spec).require("write", "push")
    res = store.push(path, name, tags, progress=not progress_disabled(quiet))
    if as_json:
        emit_json(res.to_json())
    else:
        click.echo(f"{res.ref} {res.digest}")
    if not res.created:
        click.echo(f"dcreg: unchanged: identical content is already stored as {res.ref}", err=True)


# -------------------------------------------------------------------------------------- pull
@cli.command()
@click.argument("ref")
@click.option(
    "--out",
    "-o",
    "out_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Output directory (default ./<name>-v<N>); must be absent or empty.",
)
@store_option
@quiet_option
@json_option
def pull(ref: str, out_dir: Path | None, store_spec: str | None, quiet: bool, as_json: bool) -> None:
    """Copy version REF out of the store into a directory, verifying every file first.

    Nothing is written to the output directory unless every sha256 matches the manifest.
    """
    store = _store(store_spec, ref)
    info = store.resolve(ref)
    path = store.pull(info, out_dir, progress=not progress_disabled(quiet))
    if as_json:
        emit_json({"ref": info.ref, "digest": info.digest, "path": str(path)})
    else:
        click.echo(str(path))


# -------------------------------------------------------------------------------------- list
@cli.command("list")
@click.argument("query", nargs=-1)
@click.option("--dataset", "-d", help="Only this dataset.")
@click.option("--method", "-m", help="Only this method.")
@click.option("--ipc", type=int, help="Only this many images per class.")
@click.option("--name", "name", metavar="NS/NAME", help="Only this name (globs like 'lab/*' work).")
@click.option(
    "--all",
    "-a",
    "all_versions",
    is_flag=True,
    help="Every live version, not only the highest matching one per name.",
)
@store_option
@json_option
def list_cmd(
    query: tuple[str, ...],
    dataset: str | None,
    method: str | None,
    ipc: int | None,
    name: str | None,
    all_versions: bool,
    store_spec: str | None,
    as_json: bool,
) -> None:
    """List artifacts, filtered by metadata.

    QUERY terms are FIELD OP VALUE with OP one of = != < <= > >=, e.g. `ipc<=10 dataset=cifar10
    method!=random`. Fields: name, version, digest, dataset, method, ipc, num_classes,
    label_kind, pixel, seed, license, created_at (push time), made_at (metadata.created_at).
    Without --all each name shows its highest version matching the filters.
    """
    terms = list(query)
    if dataset:
        terms.append(f"dataset={dataset}")
    if method:
        terms.append(f"method={method}")
    if ipc is not None:
        terms.append(f"ipc={ipc}")
    exact = None
    if name:
        if any(c in name for c in "*?["):
            terms.append(f"name={name}")
        else:
            exact = validate_name(name)
    infos = _store(store_spec).list(name=exact, query=terms, all_versions=all_versions)
    if as_json:
        emit_json([i.to_json() for i in infos])
        return
    if not infos:
        click.echo("no matching artifacts", err=True)
        return
    rows = []
    for i in infos:
        md = i.metadata
        rows.append(
            [
                i.ref,
                md.get("dataset", "?"),
                md.get("method", "?"),
                str(md.get("ipc", "?")),
                md.get("label_kind", "?"),
                _pixel(md),
                ",".join(i.tags) or "-",
                i.digest[7:19] or "?",
                i.created_at or "?",
            ]
        )
    click.echo(
        _table(rows, ["NAME", "DATASET", "METHOD", "IPC", "LABELS", "PIXELS", "TAGS", "DIGEST", "CREATED"])
    )


# -------------------------------------------------------------------------------------- show
@cli.command()
@click.argument("ref")
@store_option
@json_option
def show(ref: str, store_spec: str | None, as_json: bool) -> None:
    """Show a version (or an artifact directory): metadata, files, tags, results, annotations."""
    res = resolve_ref(ref, _store(store_spec) if store_spec else None)
    if res.info is None:
        from ..artifact import manifest_digest, read_manifest

        manifest = read_manifest(res.path)  # type: ignore[arg-type]
        head: dict[str, Any] = {"path": str(res.path), "digest": manifest_digest(manifest)}
        anns: list[dict[str, Any]] = []
    else:
        store, info = res.store, res.info
        assert store is not None
        manifest = store.manifest(info)
        anns = store.annotations(info)
        head = {
            "ref": info.ref,
            "name": info.name,
            "version": info.version,
            "digest": info.digest,
            "tags": list(info.tags),
            "created_at": info.created_at,
        }
    md = manifest["metadata"]
    if as_json:
        emit_json({**head, "metadata": md, "files": manifest["files"], "annotations": anns})
        return
    click.echo(f"{head.get('ref') or head['path']}  {head['digest']}")
    lines: list[tuple[str, Any]] = []
    if "ref" in head:
        lines += [("tags", ", ".join(head["tags"]) or "-"), ("pushed", head["created_at"])]
    n = md.get("ipc", 0) * md.get("num_classes", 0)
    lines += [
        ("dataset", f"{md.get('dataset')} ({md.get('num_classes')} classes, images {md.get('image_shape')})"),
        ("method", f"{md.get('method')} {json.dumps(md.get('method_config', {}), sort_keys=True)}"),
        ("ipc", f"{md.get('ipc')} ({n} images, {md.get('label_kind')} labels)"),
        ("pixel space", json.dumps(md.get("pixel_space"), sort_keys=True)),
        ("seed", md.get("seed")),
        ("license", md.get("license")),
        ("created", md.get("created_at")),
        ("producer", " ".join(str(v) for v in (md.get("producer") or {}).values() if v)),
        ("source", json.dumps(md["source"], sort_keys=True) if md.get("source") else "-"),
        ("lineage", ", ".join(md.get("lineage") or []) or "-"),
    ]
    for key, val in lines:
        click.echo(f"{key + ':':<13} {val}")
    click.echo("files:")
    width = max(len(f) for f in manifest["files"])
    for fname, entry in sorted(manifest["files"].items()):
        click.echo(f"  {fname:<{width}}  {_size(entry['size']):>10}  sha256:{entry['sha256'][:16]}…")
    if "ref" in head:
        evals = [a for a in anns if a.get("kind") == EVAL_KIND]
        click.echo(f"results: {len(evals) or 'none recorded'}")
        for a in evals:
            from ..records import EvalRecord, RecordError

            try:
                rec = EvalRecord.from_json(a.get("record"))
            except RecordError as exc:  # a damaged annotation must not hide the others
                click.echo(f"  (unreadable result: {exc})")
                continue
            click.echo(
                f"  {rec.protocol_id}  {rec.accuracy_text()} %  ({rec.runs} runs, "
                f"{rec.device}, {a.get('created_at', '?')})"
            )
        other = [a for a in anns if a.get("kind") != EVAL_KIND]
        if other:
            kinds: dict[str, int] = {}
            for a in other:
                kinds[a.get("kind", "?")] = kinds.get(a.get("kind", "?"), 0) + 1
            click.echo("annotations: " + ", ".join(f"{k} x{v}" for k, v in sorted(kinds.items())))


# ------------------------------------------------------------------------------ tag / untag
@cli.command()
@click.argument("ref")
@click.argument("tag")
@store_option
def tag(ref: str, tag: str, store_spec: str | None) -> None:
    """Point TAG at the version REF names (moving it if it was elsewhere)."""
    info = _store(store_spec, ref).require("write", "tag").tag(ref, tag)
    click.echo(f"{info.ref} tagged {tag}")


@cli.command()
@click.argument("name")
@click.argument("tag")
@store_option
def untag(name: str, tag: str, store_spec: str | None) -> None:
    """Remove TAG from NAME (`latest` is automatic and cannot be removed)."""
    version = _store(store_spec).require("write", "untag").untag(name, tag)
    click.echo(f"{name}: removed tag {tag} (it pointed at v{version})")


@cli.command()
@click.argument("name")
@click.option("--log", "show_log", is_flag=True, help="Print the append-only tag log instead.")
@store_option
@json_option
def tags(name: str, show_log: bool, store_spec: str | None, as_json: bool) -> None:
    """Show NAME's tags (incl. the automatic `latest`), or with --log its tag history."""
    store = _store(store_spec)
    validate_name(name)
    if show_log:
        log = store.tag_log(name)
        if as_json:
            emit_json(log)
        else:
            for e in log:
                click.echo(f"{e.get('ts')}  {e.get('action'):<5}  {e.get('tag')} -> v{e.get('version')}")
        return
    current = store.tags(name)
    if as_json:
        emit_json(current)
    else:
        for t, v in current.items():
            click.echo(f"{t}  {name}@v{v}")


# ------------------------------------------------------------------------------------ verify
@cli.command()
@click.argument("ref", required=False)
@click.option("--all", "all_versions", is_flag=True, help="Verify every version in the store.")
@store_option
@json_option
def verify(ref: str | None, all_versions: bool, store_spec: str | None, as_json: bool) -> None:
    """Re-hash and validate REF (a store reference or an artifact directory), or --all versions."""
    if all_versions == (ref is not None):
        raise click.UsageError("give either REF (a reference or a directory) or --all")
    if all_versions:
        report = _store(store_spec).verify_all()
        if as_json:
            emit_json(report.to_json())
        else:
            for c in report.checks:
                click.echo(f"ok {c.info.ref} {c.info.digest}" if c.ok else f"FAILED {c.info.ref}: {c.error}")
            for a in report.anomalies:
                click.echo(f"anomaly: {a}")
        if report.failed:
            raise VerificationFailedError(
                f"{len(report.failed)} of {len(report.checks)} versions failed "
                f"verification (first: {report.failed[0].error})"
            )
        return
    assert ref is not None
    res = resolve_ref(ref, _store(store_spec) if store_spec else None)
    if res.info is None:
        from ..artifact import open_artifact

        label, digest = str(res.path), open_artifact(res.path, verify=True).digest  # type: ignore[arg-type]
    else:
        assert res.store is not None
        info = res.store.verify(res.info)
        label, digest = info.ref, info.digest
    if as_json:
        emit_json({"ref": label, "digest": digest, "ok": True})
    else:
        click.echo(f"ok {label} {digest}")


# ---------------------------------------------------------------------------------------- rm
@cli.command()
@click.argument("ref")
@click.option(
    "--force",
    "-f",
    is_flag=True,
    help="Also remove a version that carries tags (its tags are removed, logged as unset).",
)
@store_option
def rm(ref: str, force: bool, store_spec: str | None) -> None:
    """Remove one version (its number is never reused; blobs stay until `dcreg gc`)."""
    store = _store(store_spec).require("maintain", "rm")
    try:
        info = store.rm(ref, force=force)
    except TagProtectedError as exc:
        raise TagProtectedError(f"{exc} (--force removes it with its tags)") from None
    click.echo(f"removed {info.ref} (its blobs stay until `dcreg gc --no-dry-run`)")


# ---------------------------------------------------------------------------------------- gc
@cli.command()
@click.option(
    "--dry-run/--no-dry-run",
    default=True,
    show_default=True,
    help="Only report (default); --no-dry-run deletes.",
)
@store_option
@json_option
def gc(dry_run: bool, store_spec: str | None, as_json: bool) -> None:
    """Find blobs no version references, stale snapshots and dead temp files; delete with --no-dry-run."""
    report = _store(store_spec).require("maintain", "gc").gc(dry_run=dry_run)
    if as_json:
        emit_json(report.to_json())
        return
    for b in report.blobs:
        click.echo(f"blob {b}")
    for s in report.snapshots:
        click.echo(f"snapshot {s}")
    for t in report.tmp:
        click.echo(f"tmp {t}")
    for k in report.skipped:
        click.echo(f"skipped {k} (not the store's own entry; left alone)", err=True)
    what = (
        f"{len(report.blobs)} blob(s), {len(report.snapshots)} snapshot(s), "
        f"{len(report.tmp)} temp file(s), {_size(report.bytes)}"
    )
    if dry_run:
        click.echo(f"would remove {what} (dry run; `dcreg gc --no-dry-run` deletes)", err=True)
    else:
        click.echo(f"removed {what}", err=True)


# -------------------------------------------------------------------------------------- card
@cli.command()
@click.argument("ref")
@store_option
@json_option
def card(ref: str, store_spec: str | None, as_json: bool) -> None:
    """Print the card of REF, re-rendered with its recorded evaluation results."""
    res = resolve_ref(ref, _store(store_spec) if store_spec else None)
    if res.info is None:
        from ..artifact import open_artifact

        label = str(res.path)
        text = open_artifact(res.path, verify=False).card_text()  # type: ignore[arg-type]
    else:
        assert res.store is not None
        label, text = res.info.ref, res.store.card(res.info)
    if as_json:
        emit_json({"ref": label, "card": text})
    else:
        click.echo(text, nl=False)


__all__ = [
    "push",
    "pull",
    "list_cmd",
    "show",
    "tag",
    "untag",
    "tags",
    "verify",
    "rm",
    "gc",
    "card",
    "store_option",
]
