"""A results repo on a Hub-API server as a leaderboard source: ``http(s)://HOST[:PORT]/NS/NAME``
(a ``dcreg serve``) or ``hf://datasets/ORG/NAME`` (the Hub at $HF_ENDPOINT), read at the head of
``main``: the tree is listed first, only results-layout paths of at most 1 MiB are downloaded
(into a temporary folder, pinned to that commit), and each file is then checked like any other
(:func:`dcregistry.leaderboard.collect.collect`). Tokens follow the store rules (HF_TOKEN only
to the Hub or your HF_ENDPOINT, DCREG_TOKEN elsewhere; :class:`~dcregistry.store.hub.HubStore`)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import UserError
from ..refs import is_hub_repo, validate_name
from ..results import MAX_RECORD_BYTES, is_record_path

__all__ = ["ResultsRepoSource", "parse_results_repo"]


def parse_results_repo(target: str) -> tuple[str, str]:
    """(endpoint, repo id) of ``http(s)://HOST[:PORT]/NS/NAME`` or ``hf://datasets/ORG/NAME``."""
    if target.startswith("hf://"):
        repo = target.removeprefix("hf://").removeprefix("datasets/").rstrip("/")
        if not target.startswith("hf://datasets/") or not is_hub_repo(repo):
            raise UserError(f"{target[:200]!r}: a results repo on the Hub is hf://datasets/ORG/NAME")
        return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/"), repo
    parts = urlsplit(target)
    if parts.scheme in ("http", "https") and parts.hostname and not parts.query and not parts.fragment:
        path = parts.path.strip("/").removeprefix("datasets/")
        try:
            return f"{parts.scheme}://{parts.netloc}", validate_name(path)
        except UserError:
            pass
    raise UserError(
        f"{target[:200]!r}: a results repo is http(s)://HOST[:PORT]/NS/NAME (a dcreg serve) or "
        "hf://datasets/ORG/NAME"
    )


class ResultsRepoSource:
    """The records of a results repo (see the module docstring)."""

    def __init__(self, target: str):
        self.endpoint, self.repo = parse_results_repo(target)
        self.label = f"results repo {target}"

    def files(self) -> Iterator[tuple[str, bytes | Exception]]:
        from huggingface_hub import snapshot_download

        from ..store.hub import HubStore

        hub = HubStore(self.endpoint)
        api = hub._api
        what = f"results repo {self.repo} on {self.endpoint}"
        sha = hub._call(what, api.repo_info, self.repo, repo_type="dataset").sha
        entries = hub._call(
            what, api.list_repo_tree, self.repo, repo_type="dataset", revision=sha, recursive=True
        )
        wanted: list[str] = []
        for e in entries:
            path = getattr(e, "path", "")
            size = getattr(e, "size", None)
            if not isinstance(path, str) or not is_record_path(path):
                continue  # README.md, folders
            if not isinstance(size, int) or size > MAX_RECORD_BYTES:
                yield path, UserError(f"{path[:200]}: {size} bytes, above the 1 MiB cap of a record")
                continue
            wanted.append(path)
        if not wanted:
            return
        with tempfile.TemporaryDirectory(prefix="dcreg-leaderboard-") as tmp:
            hub._call(
                what,
                snapshot_download,
                self.repo,
                repo_type="dataset",
                revision=sha,
                allow_patterns=wanted,
                local_dir=tmp,
                endpoint=self.endpoint,
                token=hub._auth_token,
            )
            root = Path(tmp)
            for path in wanted:
                try:
                    with open(root / path, "rb") as f:
                        data = f.read(MAX_RECORD_BYTES + 1)
                except OSError as exc:
                    yield path, exc
                    continue
                yield path, data
