"""``dcreg leaderboard``: build the static leaderboard site from results directories (the same
command is ``harness leaderboard``). Torch-free."""

from __future__ import annotations

from pathlib import Path

import click

from . import cli
from .common import store_option


@cli.command("leaderboard")
@click.argument("dirs", nargs=-1, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--results",
    "results",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="A results directory (harness sweep --results DIR), or a folder of them; repeatable "
    "(default: ./sweep-results).",
)
@click.option(
    "--results-repo",
    "repos",
    multiple=True,
    metavar="URL",
    help="A results repo: http(s)://HOST[:PORT]/NS/NAME (a dcreg serve) or hf://datasets/ORG/NAME; "
    "repeatable.",
)
@store_option(help="Where the sets' names, cards and grids are looked up.")
@click.option(
    "--recorded",
    is_flag=True,
    help="Also show the results recorded on the store's versions (harness eval/sweep --record), "
    "one cell per seed; cells also in a results directory or repo count once.",
)
@click.option(
    "-o",
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write the site to (index.html, d/, a/, style.css, sort.js).",
)
@click.option("--title", default="Leaderboard", show_default=True, help="The index page's heading.")
@click.option("--no-grids", is_flag=True, help="Leave out the sample grids (no artifact is opened).")
def leaderboard_cmd(
    dirs: tuple[Path, ...],
    results: tuple[Path, ...],
    repos: tuple[str, ...],
    store_spec: str | None,
    recorded: bool,
    out: Path,
    title: str,
    no_grids: bool,
) -> None:
    """Build a static leaderboard site from results directories and results repos.

    Per dataset and IPC one sortable table per protocol (accuracy mean ± std over seeds, runs,
    IOR/LRS when recorded, condensation time and peak memory, device), accuracy-vs-IPC plots,
    sample grids, and a page per set with its card from the store (--store).
    """
    from ..errors import UserError
    from ..leaderboard import ResultsDirSource, Source, build_site
    from ..leaderboard.remote import ResultsRepoSource

    remote: list[Source] = [ResultsRepoSource(r) for r in repos]  # parsed (refused) before any work
    folders = [*dirs, *results] or ([] if repos or recorded else [Path("sweep-results")])
    missing = [str(d) for d in folders if not d.is_dir()]
    if missing:
        raise UserError(f"{missing[0]}: no such results directory (give harness sweep's --results DIR)")
    from ..store import get_store

    store = get_store(store_spec)  # the default store when --store is not given, as everywhere
    if recorded:
        from ..leaderboard.annotations import StoreAnnotationsSource

        remote.append(StoreAnnotationsSource(store))
    site = build_site(
        [*(ResultsDirSource(d) for d in folders), *remote], store, grids=not no_grids, title=title
    )
    site.write(out)
    click.echo(f"{out}/index.html: {site.summary()}")
    for p in site.collection.problems[:5]:
        click.echo(f"warning: {p.path}: {p.problem}", err=True)
