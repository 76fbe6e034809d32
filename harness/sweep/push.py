"""``harness results push DIR --to TARGET``: a results directory as a results dataset repo.

Every *done* cell becomes one JSON file (one line: :func:`dcregistry.results.record_bytes` of the
cell's JSON) at its results-layout path, the Hub's leaderboard pattern, readable with
``datasets``. TARGET is

- ``http(s)://HOST[:PORT]/NS/NAME``: a ``dcreg serve`` (token: ``DCREG_TOKEN``). The repo is
  created if missing; its first commit of records makes it a results repo (or start the server
  with ``--results-repo NS/NAME``); the server checks every record and refuses anything else;
- ``hf://datasets/ORG/NAME``: the Hugging Face Hub at ``$HF_ENDPOINT`` (default
  https://huggingface.co; token: ``HF_TOKEN`` or the saved login), through the same
  huggingface_hub calls. There the client also commits the card (``README.md`` from
  :func:`dcregistry.results.results_card`) when the repo has none; ``dcreg serve`` generates it.

A record is keyed by its cell (its path): the remote tree is listed first and only records whose
content differs are committed, so re-pushing the same results commits nothing and a changed
record replaces its file. Changed records go in batches of ``batch_size`` files, one commit
each, applied to the head of ``main`` (no ``parent_commit``), so concurrent pushers of different
cells never lose one. A refusal is one line (:class:`~dcregistry.store.hub.HubError`, exit 1).

Python API (what ``harness sweep ... --push-results TARGET`` calls)::

    from harness.sweep.push import push_results, ResultsPusher

    report = push_results("sweep-results/t", "http://127.0.0.1:8008/lab/results")
    # or, as cells finish (one remote listing, then one commit per call with changes):
    pusher = ResultsPusher("http://127.0.0.1:8008/lab/results")
    pusher.push_cells([cell_result])  # CellResult objects of done cells; failed ones are skipped
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from dcregistry.cli.common import emit_json
from dcregistry.errors import UserError
from dcregistry.refs import is_commit_id, is_hub_repo, validate_name
from dcregistry.results import CARD_FILE, record_bytes, results_card, validate_record

from .results import CellResult, ResultsDir

__all__ = ["PushReport", "ResultsPusher", "push_results", "parse_target", "results_push", "DEFAULT_BATCH"]

#: Files per commit (the server allows 256 operations per commit).
DEFAULT_BATCH = 100
REPO_TYPE = "dataset"


class PushTargetError(UserError):
    """TARGET is neither ``http(s)://HOST[:PORT]/NS/NAME`` nor ``hf://datasets/ORG/NAME``."""


def parse_target(target: str) -> tuple[str, str]:
    """(endpoint, repo id) of a push target."""
    if target.startswith("hf://"):
        rest = target[len("hf://") :]
        if not rest.startswith("datasets/"):
            raise PushTargetError(f"{target!r}: a results repo is a dataset repo: hf://datasets/ORG/NAME")
        repo = rest[len("datasets/") :].rstrip("/")
        if "@" in repo or not is_hub_repo(repo):
            raise PushTargetError(
                f"{target!r}: expected hf://datasets/ORG/NAME (no revision: pushes go to main)"
            )
        return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/"), repo
    parts = urlsplit(target)
    if parts.scheme in ("http", "https") and parts.hostname and not parts.query and not parts.fragment:
        path = parts.path.strip("/")
        if path.startswith("datasets/"):  # the repo's page URL works too
            path = path[len("datasets/") :]
        try:
            repo = validate_name(path)
        except UserError:
            raise PushTargetError(
                f"{target!r}: expected http(s)://HOST[:PORT]/NS/NAME with a dcreg name (lowercase a-z0-9._-)"
            ) from None
        return f"{parts.scheme}://{parts.netloc}", repo
    raise PushTargetError(
        f"{target!r}: push to http(s)://HOST[:PORT]/NS/NAME (a dcreg serve) or hf://datasets/ORG/NAME"
    )


def git_blob_oid(data: bytes) -> str:
    """git's id of a blob (what a Hub tree listing answers as a regular file's ``blob_id``)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class PushReport:
    """What a push did: records committed, records already there, the new commits."""

    target: str
    repo: str
    pushed: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped_failed: int = 0
    bad_files: list[str] = field(default_factory=list)
    commits: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "repo": self.repo,
            "pushed": len(self.pushed),
            "unchanged": self.unchanged,
            "skipped_failed": self.skipped_failed,
            "bad_files": list(self.bad_files),
            "commits": list(self.commits),
        }

    def text(self) -> str:
        line = (
            f"pushed {len(self.pushed)} record(s) in {len(self.commits)} commit(s) to {self.target}; "
            f"{self.unchanged} unchanged"
        )
        if self.skipped_failed:
            line += f", {self.skipped_failed} failed cell(s) skipped"
        if self.bad_files:
            line += f", {len(self.bad_files)} invalid file(s) skipped (`harness results ls` names them)"
        return line


def cell_file(cell: CellResult) -> tuple[str, bytes]:
    """(layout path, file content) of a done cell's record, checked as the server will."""
    path = cell.relpath().as_posix()
    data = record_bytes(cell.to_json())
    validate_record(path, data)
    return path, data


class ResultsPusher:
    """Pushes done cells to one results repo, remembering what the remote holds between calls."""

    def __init__(self, target: str, *, token: str | None = None, batch_size: int = DEFAULT_BATCH):
        from dcregistry.store.hub import HubStore

        if batch_size < 1:
            raise UserError("batch size must be at least 1")
        self.target = target
        self.endpoint, self.repo = parse_target(target)
        self.batch_size = batch_size
        self._store = HubStore(self.endpoint, token)  # token choice, plain-http refusal, errors
        self._remote: dict[str, str] | None = None  # path -> git blob id on main

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return self._store._call(f"{self.repo}: {what}", fn, *args, **kwargs)

    def _listing(self) -> dict[str, str]:
        if self._remote is None:
            api = self._store._api
            self._call("create repo", api.create_repo, self.repo, repo_type=REPO_TYPE, exist_ok=True)
            entries = self._call(
                "list files",
                lambda: list(api.list_repo_tree(self.repo, repo_type=REPO_TYPE, recursive=True)),
            )
            self._remote = {
                e.path: str(getattr(e, "blob_id", ""))
                for e in entries
                if getattr(e, "blob_id", None) is not None
            }
        return self._remote

    def _commit(self, files: Sequence[tuple[str, bytes]], title: str) -> str:
        from huggingface_hub import CommitOperationAdd

        api = self._store._api
        ops = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=data) for p, data in files]
        info = self._call(
            "commit",
            api.create_commit,
            self.repo,
            ops,
            commit_message=title,
            commit_description="Pushed by harness results push.",
            repo_type=REPO_TYPE,
        )
        oid = getattr(info, "oid", None)
        if not is_commit_id(oid):
            raise UserError(
                f"{self.repo}: {self.endpoint} answered {str(oid)[:60]!r} as the commit id; refusing it"
            )
        return str(oid)

    def push_files(self, files: Iterable[tuple[str, bytes]], report: PushReport | None = None) -> PushReport:
        """Commit the (path, content) records that differ from the remote, in batches."""
        report = report or PushReport(self.target, self.repo)
        remote = self._listing()
        todo: dict[str, bytes] = {}
        for path, data in files:
            if remote.get(path) == git_blob_oid(data):
                report.unchanged += 1
            else:
                todo[path] = data
        items = sorted(todo.items())
        batches = [items[i : i + self.batch_size] for i in range(0, len(items), self.batch_size)]
        for n, batch in enumerate(batches, 1):
            title = f"harness results push: {len(batch)} record(s)" + (
                f" (batch {n}/{len(batches)})" if len(batches) > 1 else ""
            )
            report.commits.append(self._commit(batch, title))
            for path, data in batch:
                remote[path] = git_blob_oid(data)
                report.pushed.append(path)
        if CARD_FILE not in remote and (items or remote):
            # the real Hub: the card declaring the files and features (dcreg serve makes its own)
            self._remote = None
            if CARD_FILE not in self._listing():
                card = results_card(self.repo).encode()
                report.commits.append(self._commit([(CARD_FILE, card)], "harness results push: dataset card"))
                self._listing()[CARD_FILE] = git_blob_oid(card)
        return report

    def push_cells(self, cells: Iterable[CellResult], report: PushReport | None = None) -> PushReport:
        """Push done cells (failed ones are counted and skipped)."""
        report = report or PushReport(self.target, self.repo)
        files = []
        for cell in cells:
            if cell.status != "done":
                report.skipped_failed += 1
                continue
            files.append(cell_file(cell))
        return self.push_files(files, report)


def push_results(
    directory: str | Path,
    target: str,
    *,
    token: str | None = None,
    batch_size: int = DEFAULT_BATCH,
    cells: Iterable[CellResult] | None = None,
) -> PushReport:
    """Push every done cell of the results directory ``directory`` (or only ``cells``) to
    ``target`` (``http(s)://HOST[:PORT]/NS/NAME`` or ``hf://datasets/ORG/NAME``); idempotent, one
    commit per ``batch_size`` changed records. Raises a UserError (one line) on a refusal."""
    pusher = ResultsPusher(target, token=token, batch_size=batch_size)
    report = PushReport(target, pusher.repo)
    if cells is None:
        root = Path(directory)
        if not root.is_dir():
            raise UserError(f"{directory}: no such results directory")
        scan = ResultsDir(root).scan()
        report.bad_files = [str(b.path) for b in scan.bad]
        cells = scan.cells
    return pusher.push_cells(cells, report)


@click.command("push")
@click.argument("directory", metavar="DIR")
@click.option(
    "--to",
    "target",
    required=True,
    metavar="TARGET",
    help="http(s)://HOST[:PORT]/NS/NAME (a dcreg serve; token DCREG_TOKEN) or hf://datasets/ORG/NAME "
    "(the Hub at $HF_ENDPOINT; token HF_TOKEN).",
)
@click.option(
    "--batch",
    "batch_size",
    type=click.IntRange(1, 256),
    default=DEFAULT_BATCH,
    show_default=True,
    help="Records per commit.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def results_push(directory: str, target: str, batch_size: int, as_json: bool) -> None:
    """Push every done cell as one JSON record file to a results dataset repo (idempotent).

    (Registered on ``harness results`` by harness/sweep/cli.py; this module does not import it,
    so the two do not import each other.)"""
    report = push_results(directory, target, batch_size=batch_size)
    if as_json:
        emit_json(report.to_json())
    else:
        click.echo(report.text())
