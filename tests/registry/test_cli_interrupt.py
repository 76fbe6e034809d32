"""Ctrl-C in any command exits 130 with one line (click turns KeyboardInterrupt into Abort)."""

from __future__ import annotations

import click

from dcregistry.cli.common import run_cli


def test_ctrl_c_exits_130_and_abort_exits_1(capsys):
    @click.group()
    def cli() -> None:
        pass

    @cli.command()
    def interrupt() -> None:
        raise KeyboardInterrupt

    @cli.command()
    def abort() -> None:
        raise click.Abort

    assert run_cli(cli, "prog", ["interrupt"]) == 130
    assert capsys.readouterr().err.strip().endswith("prog: interrupted")
    assert run_cli(cli, "prog", ["abort"]) == 1
    assert capsys.readouterr().err.strip() == "prog: aborted"
