"""The ``dcreg`` command line: push, pull, list, show, tag, verify, rm, gc, card, import, export."""

from __future__ import annotations

import sys

import click

from .. import __version__
from .common import run_cli


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dcreg")
def cli() -> None:
    """Condensed datasets as versioned, verifiable artifacts.

    The store is the embedded local one at $DCREG_HOME (default ~/.cache/dcreg) unless --store
    says otherwise. Exit codes: 0 ok, 1 user error, 2 internal error.
    """


def _register_commands() -> None:
    # Each command family lives in its own module; importing it adds its commands to `cli`.
    from . import io_cmds, store_cmds  # noqa: F401
    from . import serve_cmd  # noqa: F401


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    _register_commands()
    sys.exit(run_cli(cli, "dcreg", argv))
