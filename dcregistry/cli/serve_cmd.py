"""``dcreg serve``: run the Hub-compatible registry server over a local store."""

from __future__ import annotations

import re
from pathlib import Path

import click

from ..errors import UserError
from . import cli


@cli.command("serve")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to bind (127.0.0.1 keeps it on this machine).",
)
@click.option("--port", default=8008, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Store to serve (default: $DCREG_HOME or ~/.cache/dcreg).",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File holding the bearer token that writes need; without it the server is read-only.",
)
@click.option(
    "--public-url",
    default=None,
    metavar="URL",
    help="The address clients use (e.g. https://dcreg.example.org behind a TLS proxy): "
    "upload links are built from it, and the server answers to its host name.",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    metavar="NAME",
    help="Another host name the server answers to (besides IP addresses and localhost); "
    "repeatable. Other Host headers are refused (DNS rebinding).",
)
@click.option(
    "--results-repo",
    "results_repos",
    multiple=True,
    metavar="NS/NAME",
    help="Create NS/NAME as a results repo (one JSON result record per file; commits may only "
    "add or replace valid records); repeatable. A repo also becomes one when its first commit "
    "holds only record files.",
)
@click.option(
    "--results",
    "results_dirs",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="A results directory (harness sweep --results DIR) to show at /leaderboard, with the "
    "results repos; repeatable (read again as it changes).",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
def serve_cmd(
    host: str,
    port: int,
    home: Path | None,
    token_file: Path | None,
    public_url: str | None,
    allowed_hosts: tuple[str, ...],
    results_repos: tuple[str, ...],
    results_dirs: tuple[Path, ...],
    log_level: str,
) -> None:
    """Serve a store through the Hugging Face Hub HTTP API (push/pull with huggingface_hub).

    Clients point HF_ENDPOINT (or `--store http://HOST:PORT`) at it; writes need
    `Authorization: Bearer <token>` with the token from --token-file.
    """
    from ..refs import validate_name
    from ..server import serve
    from ..server.auth import load_token

    token = load_token(token_file) if token_file is not None else None
    for repo in results_repos:
        validate_name(repo)
    if public_url is not None:
        from urllib.parse import urlsplit

        parts = urlsplit(public_url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise UserError(f"--public-url must be an http(s) URL with a host, got {public_url!r}")
    for name in allowed_hosts:
        if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\]", name):
            raise UserError(f"--allowed-host takes a host name without scheme, port or path, got {name!r}")
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise UserError(f"dcreg serve needs fastapi and uvicorn ({exc.name} is not installed)") from None
    mode = "read-write (bearer token required)" if token else "read-only (no token file)"
    click.echo(f"dcreg: serving {home or 'the default store'} on http://{host}:{port} - {mode}", err=True)
    serve(
        home,
        token,
        host=host,
        port=port,
        log_level=log_level,
        public_url=public_url,
        allowed_hosts=allowed_hosts,
        results_repos=results_repos,
        results_dirs=results_dirs,
    )
