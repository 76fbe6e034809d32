"""``dcreg published`` (the catalog of released condensed sets) and ``dcreg fetch NAME``."""

from __future__ import annotations

from pathlib import Path

import click

from . import cli
from .common import emit_json, json_option, progress_disabled, quiet_option


@cli.command("published")
@click.option("--dataset", help="Only sets of this dataset (e.g. cifar10).")
@click.option("--method", help="Only sets made by this method (e.g. dc, mtt, kip).")
@click.option("--ipc", type=click.IntRange(min=1), help="Only sets with this many images per class.")
@click.option(
    "--catalog",
    "catalog",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Catalog file to read instead of the packaged one (also $DCREG_PUBLISHED_CATALOG).",
)
@json_option
def published_cmd(
    dataset: str | None, method: str | None, ipc: int | None, catalog: Path | None, as_json: bool
) -> None:
    """List condensed sets that papers have released, and where they are published."""
    from ..published import load_catalog

    entries = [
        e
        for e in load_catalog(catalog)
        if (dataset is None or e.dataset == dataset.lower())
        and (method is None or e.method == method.lower())
        and (ipc is None or e.ipc == ipc)
    ]
    if as_json:
        emit_json([e.to_json() for e in entries])
        return
    if not entries:
        click.echo("no published set matches", err=True)
        return
    header = ("name", "method", "dataset", "ipc", "format", "source", "sha256", "license", "url")
    rows = [
        (
            e.name,
            e.method,
            e.dataset,
            str(e.ipc),
            e.format,
            e.source["kind"] + ("*" if e.needs_path else "" if e.verified else "?"),
            "pinned" if all(f.sha256 for f in e.files) else "-",
            e.license,
            e.source_url,
        )
        for e in entries
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    click.echo(
        "\nsource: ? = file place in the folder not verified, * = needs --path; "
        "`dcreg published --json` adds URLs and citations.",
        err=True,
    )


@cli.command("fetch")
@click.argument("name")
@click.option(
    "-o",
    "--output",
    "out",
    type=click.Path(path_type=Path),
    help="Artifact directory to write (default: ./NAME; DIR-e0, DIR-e1, ... for several experiments).",
)
@click.option(
    "--push",
    "push_name",
    metavar="NS/NAME",
    help="Also push the artifact(s) to the store (NS/NAME-eN for several).",
)
@click.option(
    "--store", "store_spec", metavar="S", default=None, help="Store to push to (default: the local one)."
)
@click.option(
    "--path",
    "path_in_source",
    help="Folder of the set inside the publisher's shared folder or repo (for "
    "entries whose layout is not documented).",
)
@click.option("--exp", type=click.IntRange(min=0), help="dc-pt sets: only experiment N.")
@click.option(
    "--download-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where downloads are kept and resumed (default: $DCREG_HOME/downloads/NAME).",
)
@click.option(
    "--catalog",
    "catalog",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Catalog file to read instead of the packaged one.",
)
@click.option("--overwrite", is_flag=True, help="Replace existing output directories.")
@quiet_option
@json_option
def fetch_cmd(
    name: str,
    out: Path | None,
    push_name: str | None,
    store_spec: str | None,
    path_in_source: str | None,
    exp: int | None,
    download_dir: Path | None,
    catalog: Path | None,
    overwrite: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Download the published set NAME, check its sha256, convert it to verified artifacts.

    Downloads resume where they stopped; a file whose sha256 differs from the catalog is
    deleted and nothing is imported. Prints each artifact's path and digest (and pushed ref).
    """
    from ..published import get_published
    from ..published.fetch import fetch_published, push_fetched
    from ..refs import validate_name

    entry = get_published(name, catalog)
    store = None
    if push_name is not None:
        from ..store import get_store

        validate_name(push_name)  # refuse a bad name (or a store that cannot take it) before downloading
        store = get_store(store_spec).require("write", "--push")
    result = fetch_published(
        entry,
        out if out is not None else Path(entry.name),
        download_dir=download_dir,
        path_in_source=path_in_source,
        exp=exp,
        overwrite=overwrite,
        progress=not progress_disabled(quiet),
    )
    pushed = []
    if push_name is not None:
        pushed = push_fetched(result, push_name, store)
    if as_json:
        emit_json(
            {
                "name": entry.name,
                "files": [
                    {
                        "name": f.name,
                        "url": f.url,
                        "path": str(f.path),
                        "sha256": f.sha256,
                        "sha256_checked": f.checked,
                    }
                    for f in result.files
                ],
                "artifacts": [
                    {
                        "path": str(a.path),
                        "digest": a.digest,
                        "experiment": (a.metadata["source"] or {}).get("experiment"),
                    }
                    for a in result.artifacts
                ],
                "pushed": [p.to_json() for p in pushed],
                "notes": result.notes,
            }
        )
        return
    for note in result.notes:
        click.echo(f"dcreg: note: {note}", err=True)
    for a in result.artifacts:
        click.echo(f"{a.path} {a.digest}")
    for p in pushed:
        click.echo(str(p))
