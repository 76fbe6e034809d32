"""How every command reports what goes wrong: one line, exit 1 for the user's or the machine's
problem (bad input, a path the file system refuses, a full disk), 130 for Ctrl-C (click turns
KeyboardInterrupt into Abort), exit 2 only for a bug."""

from __future__ import annotations

import errno
import os

import click
import pytest

from dcregistry.cli.common import MAX_MESSAGE, run_cli

from ..harness.cli_helpers import run_harness


def _cli(exc: BaseException) -> click.Group:
    @click.group()
    def cli() -> None:
        pass

    @cli.command()
    def go() -> None:
        raise exc

    return cli


def test_ctrl_c_exits_130_and_abort_exits_1(capsys):
    assert run_cli(_cli(KeyboardInterrupt()), "prog", ["go"]) == 130
    assert capsys.readouterr().err.strip().endswith("prog: interrupted")
    assert run_cli(_cli(click.Abort()), "prog", ["go"]) == 1
    assert capsys.readouterr().err.strip() == "prog: aborted"


@pytest.mark.parametrize(
    "exc, message",
    [
        (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/data/x"), "No space left on device: /data/x"),
        (OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG), "a" * 5000), "File name too long: aaa"),
        (PermissionError(errno.EACCES, os.strerror(errno.EACCES), "/root/x"), "Permission denied: /root/x"),
    ],
)
def test_os_errors_about_the_users_paths_exit_1_with_a_short_line(exc, message, capsys):
    assert run_cli(_cli(exc), "prog", ["go"]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"prog: error: {message}") and len(line) < 300, line


def test_other_os_errors_and_bugs_exit_2_and_long_messages_are_cut(capsys):
    assert run_cli(_cli(OSError(errno.EBADF, "Bad file descriptor")), "prog", ["go"]) == 2
    assert "internal error: OSError" in capsys.readouterr().err
    assert run_cli(_cli(RuntimeError("x" * 100_000)), "prog", ["go"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert "internal error: RuntimeError" in line and " characters cut]" in line
    assert line.endswith("please report it)") and len(line) < MAX_MESSAGE + 200


def test_a_huge_init_or_output_path_is_a_user_error(tmp_path, capsys):
    argv = ["condense", "digits", "--method", "dm", "--ipc", "1", "--iterations", "1", "-q"]
    code, _, err = run_harness([*argv, "--init", "a" * 5000, "-o", tmp_path / "o"], capsys)
    assert code == 1 and len(err.splitlines()) == 1 and "unknown; choose one of" in err, err
    assert len(err) < MAX_MESSAGE + 100
    code, _, err = run_harness([*argv, "-o", tmp_path / ("b" * 5000)], capsys)
    assert code == 1 and len(err.splitlines()) == 1 and "File name too long" in err, err
    assert list(tmp_path.iterdir()) == []
