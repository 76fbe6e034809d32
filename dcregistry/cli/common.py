"""Shared CLI plumbing: exit codes, one-line errors, JSON output, progress settings."""

from __future__ import annotations

import errno
import json
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO, TypeVar, overload

import click

from ..errors import UserError

#: A click command function (or an already decorated one).
CmdFn = TypeVar("CmdFn", bound=Callable[..., Any])

EXIT_OK, EXIT_USER, EXIT_INTERNAL = 0, 1, 2


#: longest error line printed (a hostile value echoed in a message is cut, not printed whole)
MAX_MESSAGE = 2000

#: OS errors about the user's paths or machine, not this project's code: exit 1, one line
USER_OS_ERRORS = frozenset(
    {errno.ENAMETOOLONG, errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EMFILE}
)


def printable(text: str) -> str:
    """``text`` safe to print: bytes that were not UTF-8 (surrogate escapes) shown as ``\\udcXX``,
    a message cut to one line and to about :data:`MAX_MESSAGE` characters."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    text = " ".join(text.splitlines()) if "\n" in text or "\r" in text else text
    if len(text) <= MAX_MESSAGE:
        return text
    # the middle goes: a message says what was wrong first and what to do last
    return f"{text[: MAX_MESSAGE // 2]} ...[{len(text) - MAX_MESSAGE + 40} characters cut]... {text[-MAX_MESSAGE // 2 + 40 :]}"


def os_error_message(exc: OSError) -> str:
    """One line for an OS error on a path: what failed and where (a long path shortened)."""
    where = f": {os.fsdecode(exc.filename)}" if exc.filename is not None else ""
    if len(where) > 200:
        where = f"{where[:120]}... ({len(where) - 2} characters)"
    return f"{exc.strerror or type(exc).__name__}{where}"


@contextmanager
def one_line_warnings(prog: str) -> Iterator[None]:
    """Show warnings (e.g. a skipped damaged tag-log line) as ``prog: warning: ...`` lines."""

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        click.echo(f"{prog}: warning: {printable(str(message))}", err=True)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def run_cli(group: click.Group, prog: str, argv: list[str] | None = None) -> int:
    """Run a click group mapping errors to exit codes: 1 user error, 2 internal error.

    Errors print one line on stderr; set DCREG_DEBUG=1 to get the traceback of internal errors.
    """
    with one_line_warnings(prog):
        return _run(group, prog, argv)


def _run(group: click.Group, prog: str, argv: list[str] | None) -> int:
    try:
        group.main(args=argv, prog_name=prog, standalone_mode=False)
        return EXIT_OK
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):  # click turns Ctrl-C into Abort
            click.echo(f"{prog}: interrupted", err=True)
            return 130
        click.echo(f"{prog}: aborted", err=True)
        return EXIT_USER
    except click.ClickException as exc:  # usage errors, bad options: the user's to fix
        click.echo(f"{prog}: error: {printable(exc.format_message())}", err=True)
        return EXIT_USER
    except UserError as exc:
        click.echo(f"{prog}: error: {printable(str(exc))}", err=True)
        return EXIT_USER
    except KeyboardInterrupt:
        click.echo(f"{prog}: interrupted", err=True)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except OSError as exc:
        if exc.errno not in USER_OS_ERRORS:
            return _internal_error(prog, exc)
        click.echo(f"{prog}: error: {printable(os_error_message(exc))}", err=True)
        return EXIT_USER
    except Exception as exc:
        return _internal_error(prog, exc)


def _internal_error(prog: str, exc: Exception) -> int:
    """A bug: say so in one line, the traceback only on request."""
    if os.environ.get("DCREG_DEBUG"):
        import traceback  # only for an internal error: kept off the start-up path

        traceback.print_exc()
    click.echo(
        f"{prog}: internal error: {type(exc).__name__}: {printable(str(exc))} "
        "(set DCREG_DEBUG=1 for a traceback; please report it)",
        err=True,
    )
    return EXIT_INTERNAL


def emit_json(obj: Any) -> None:
    """Print ``obj`` as indented JSON on stdout."""
    click.echo(json.dumps(obj, indent=2, sort_keys=True, default=str))


STORE_HELP = (
    "'local' (default: $DCREG_HOME or ~/.cache/dcreg), a store directory, 'hf' (the Hugging Face "
    "Hub, $HF_ENDPOINT) or the URL of a Hub-API server such as `dcreg serve` (default: $DCREG_STORE)."
)


@overload
def store_option(f: CmdFn, *, help: str | None = None) -> CmdFn: ...
@overload
def store_option(f: None = None, *, help: str | None = None) -> Callable[[CmdFn], CmdFn]: ...
def store_option(f: CmdFn | None = None, *, help: str | None = None) -> CmdFn | Callable[[CmdFn], CmdFn]:
    """``--store S`` (parameter ``store_spec``): which store; ``@store_option`` or
    ``@store_option(help="Store for REF.")`` (the store kinds are appended to the help)."""

    def add(g: CmdFn) -> CmdFn:
        text = f"{help} {STORE_HELP}" if help else STORE_HELP
        return click.option("--store", "store_spec", metavar="S", default=None, help=text)(g)

    return add(f) if f is not None else add


def json_option(f: CmdFn) -> CmdFn:
    """``--json``: machine-readable output on stdout."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(f)


def quiet_option(f: CmdFn) -> CmdFn:
    """``--quiet``: no progress bars."""
    return click.option("--quiet", "-q", is_flag=True, help="Silence progress bars.")(f)


def progress_disabled(quiet: bool) -> bool:
    """Progress bars are off with --quiet or when stderr is not a terminal... unless forced."""
    if quiet:
        return True
    if os.environ.get("DCREG_PROGRESS") == "1":
        return False
    return not sys.stderr.isatty()
