"""``dcreg serve``: run the Hub-compatible registry server over a local store."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import UserError
from . import cli


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to bind (127.0.0.1 keeps it on this machine).")
@click.option("--port", default=8008, show_default=True, type=click.IntRange(0, 65535))
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Store to serve (default: $DCREG_HOME or ~/.cache/dcreg).")
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File holding the bearer token that writes need; without it the server is read-only.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
def serve_cmd(host: str, port: int, home: Path | None, token_file: Path | None,
              log_level: str) -> None:
    """Serve a store through the Hugging Face Hub HTTP API (push/pull with huggingface_hub).

    Clients point HF_ENDPOINT (or `--store http://HOST:PORT`) at it; writes need
    `Authorization: Bearer <token>` with the token from --token-file.
    """
    from ..server import serve
    from ..server.auth import load_token

    token = load_token(token_file) if token_file is not None else None
    try:
        import uvicorn  # noqa: F401
        import fastapi  # noqa: F401
    except ImportError as exc:
        raise UserError(f"dcreg serve needs fastapi and uvicorn ({exc.name} is not installed)") from None
    mode = "read-write (bearer token required)" if token else "read-only (no token file)"
    click.echo(f"dcreg: serving {home or 'the default store'} on http://{host}:{port} - {mode}",
               err=True)
    serve(home, token, host=host, port=port, log_level=log_level)
