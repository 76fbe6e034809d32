"""The ``dcreg`` command line: push, pull, list, show, tag, verify, rm, gc, card, import, export.

Commands live in one module per family and are imported only when one of them runs (or when
help lists them), so ``dcreg list`` never imports numpy, the exporters, card rendering or torch.
"""

from __future__ import annotations

import importlib
import sys

import click

from .. import __version__
from .common import run_cli

#: command name -> module (under dcregistry.cli) that defines it.
COMMAND_MODULES = {
    **{
        name: "store_cmds"
        for name in ("push", "pull", "list", "show", "tag", "untag", "tags", "verify", "rm", "gc", "card")
    },
    "serve": "serve_cmd",
    "leaderboard": "leaderboard_cmd",
    "import": "io_cmds",
    "export": "io_cmds",
    "published": "published_cmds",
    "fetch": "published_cmds",
}


class LazyGroup(click.Group):
    """A click group that imports a command's module the first time the command is looked up."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMAND_MODULES) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMAND_MODULES:
            importlib.import_module(f"{__name__}.{COMMAND_MODULES[cmd_name]}")
        return self.commands.get(cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dcreg")
def cli() -> None:
    """Condensed datasets as versioned, verifiable artifacts.

    The store is the embedded local one at $DCREG_HOME (default ~/.cache/dcreg) unless --store
    says otherwise. Exit codes: 0 ok, 1 user error, 2 internal error.
    """


def _register_commands() -> None:
    """Import every command module (tests and tools that want the full command table)."""
    for module in sorted(set(COMMAND_MODULES.values())):
        importlib.import_module(f"{__name__}.{module}")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    sys.exit(run_cli(cli, "dcreg", argv))
