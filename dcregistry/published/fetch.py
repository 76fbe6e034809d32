"""``dcreg fetch``: download a published set, check it, convert it, verify it (and push it).

Steps: download every file of the catalog entry into a download directory (kept, so a later
fetch resumes or reuses it) -> check each file's sha256 against the catalog when it is known (a
mismatch deletes the file and imports nothing) -> read it with the safe importers (one set per
experiment) -> write one artifact per set, all or nothing, with the source URL, file sha256 and
catalog entry recorded in ``metadata.source`` -> re-open and verify each artifact.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..artifact import Artifact, build_artifact, open_artifact
from ..errors import UserError
from .catalog import PublishedFile, PublishedSet
from .download import (
    check_sha256,
    gdrive_download,
    gdrive_file_id,
    gdrive_list_folder,
    hf_download,
    http_download,
    select_in_folder,
)

#: How long a fetch waits for another fetch of the same set to finish its downloads.
LOCK_TIMEOUT_S = 30 * 60


@dataclass
class FetchedFile:
    """A downloaded file: where it came from, where it is, its sha256."""

    name: str
    url: str
    path: Path
    sha256: str
    checked: bool  # the catalog knew the sha256 and it matched


@dataclass
class FetchResult:
    """What :func:`fetch_published` produced."""

    entry: PublishedSet
    files: list[FetchedFile]
    artifacts: list[Artifact]
    notes: list[str] = field(default_factory=list)


def default_download_dir(entry: PublishedSet) -> Path:
    """``$DCREG_HOME/downloads/<entry name>`` (next to the local store, reused across fetches)."""
    from ..store.local import default_root

    return default_root() / "downloads" / entry.name


def _remote_path(entry: PublishedSet, f: PublishedFile, path_in_source: str | None) -> str:
    if entry.needs_path and not path_in_source:
        raise UserError(
            f"{entry.name}: the publisher's folder layout is not documented, so the "
            f"set's location inside {entry.source_url} must be given: pass the "
            "folder holding " + ", ".join(x.file_name for x in entry.files) + " (e.g. --path CIFAR10/IPC10)"
        )
    if path_in_source:
        base = path_in_source.strip("/")
        if not base or any(p in ("", ".", "..") for p in base.split("/")) or "\\" in base:
            raise UserError(f"--path {path_in_source!r}: give a relative folder path without '..'")
        return f"{base}/{f.file_name}"
    return str(f.path)


def download_files(
    entry: PublishedSet, download_dir: Path, *, path_in_source: str | None = None, progress: bool = False
) -> list[FetchedFile]:
    """Download (or reuse) every file of ``entry`` into ``download_dir`` and check sha256s."""
    download_dir.mkdir(parents=True, exist_ok=True)
    kind = entry.source["kind"]
    listing: list[tuple[str, str]] | None = None
    out: list[FetchedFile] = []
    for f in entry.files:
        dest = download_dir / f.file_name
        if kind in ("https", "gdrive-file"):
            url = str(f.url)
        elif kind == "hf":
            remote = _remote_path(entry, f, path_in_source)
            rev = entry.source.get("revision") or "main"
            url = f"https://huggingface.co/datasets/{entry.source['repo']}/blob/{rev}/{remote}"
        else:  # gdrive-folder
            remote = _remote_path(entry, f, path_in_source)
            url = f"{entry.source['url']}#{remote}"
        if not dest.is_file() or (f.sha256 and _stale(dest, f.sha256)):
            if kind == "https":
                http_download(url, dest, expected_size=f.size, progress=progress)
            elif kind == "gdrive-file":
                gdrive_download(gdrive_file_id(url), dest, progress=progress, expected_size=f.size)
            elif kind == "hf":
                hf_download(
                    entry.source["repo"],
                    remote,
                    dest,
                    revision=entry.source.get("revision"),
                    progress=progress,
                    expected_size=f.size,
                )
            else:
                if listing is None:
                    listing = gdrive_list_folder(entry.source["url"])
                file_id = select_in_folder(listing, remote, entry.source["url"])
                gdrive_download(file_id, dest, progress=progress, expected_size=f.size)
        if f.size is not None and dest.stat().st_size != f.size:
            size = dest.stat().st_size
            dest.unlink()
            raise UserError(
                f"{entry.name}: {f.file_name} has {size} bytes, the catalog says "
                f"{f.size}; the download was deleted and nothing was imported"
            )
        sha = check_sha256(
            dest, f.sha256, f"{entry.name}: {f.file_name}", on_mismatch=lambda p: p.unlink(missing_ok=True)
        )
        out.append(FetchedFile(f.file_name, url, dest, sha, bool(f.sha256)))
    return out


def _stale(dest: Path, sha: str) -> bool:
    from ..canonical import sha256_file

    return sha256_file(dest)[0] != sha


def convert(
    entry: PublishedSet,
    files: list[FetchedFile],
    out_dir: Path,
    *,
    exp: int | None = None,
    overwrite: bool = False,
) -> tuple[list[Artifact], list[str]]:
    """Read the downloaded files with the safe importers and write verified artifacts."""
    from ..formats import ImportOptions, read_sets
    from ..formats.importers import output_dirs

    notes: list[str] = []
    first = files[0]
    fmt = entry.format
    options = ImportOptions(
        dataset=entry.dataset,
        pixel_space=entry.pixel_space,
        method=entry.method,
        ipc=entry.ipc,
        license=entry.license,
        url=first.url,
        title=entry.title,
        exp=exp,
    )
    if exp is not None and fmt != "dc-pt":
        raise UserError("--exp only applies to sets in the dc-pt format")
    work = Path(tempfile.mkdtemp(prefix=".dcreg-fetch-", dir=first.path.parent))
    try:
        if fmt == "mtt":
            source_path, read_fmt = first.path.parent, "mtt"
            images = [f for f in files if f.name.startswith("images_")]
            if images:
                source_path = images[0].path
        else:
            source_path, read_fmt = first.path, fmt
        sets = read_sets(source_path, read_fmt, options, notes)
        by_name = {f.name: f for f in files}
        for s in sets:
            src = dict(s.metadata.get("source") or {})
            main = by_name.get(src["file_name"], first) if "file_name" in src else first
            src.update(
                {
                    "file_name": main.name,
                    "sha256": main.sha256,
                    "url": main.url,
                    "format": fmt,
                    "catalog": entry.name,
                    "page": entry.page,
                    "files": {f.name: {"sha256": f.sha256, "url": f.url} for f in files},
                    "sha256_checked": all(f.checked for f in files),
                }
            )
            s.metadata["source"] = src
            if entry.citation:
                s.metadata["citation"] = entry.citation
        targets = output_dirs(out_dir, sets)
        for t in targets:
            if t.exists() and any(t.iterdir()) and not overwrite:
                raise UserError(f"{t} exists and is not empty; choose another -o or pass --overwrite")
        staged = [build_artifact(work / f"set{i}", s.tensors, s.metadata) for i, s in enumerate(sets)]
        artifacts = []
        for art, target in zip(staged, targets, strict=True):
            if target.exists():
                shutil.rmtree(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            art.path.rename(target)
            artifacts.append(open_artifact(target, verify=True))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return artifacts, notes


def fetch_published(
    entry: PublishedSet,
    out_dir: str | Path,
    *,
    download_dir: str | Path | None = None,
    path_in_source: str | None = None,
    exp: int | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> FetchResult:
    """Download, check, convert and verify the published set ``entry`` into ``out_dir``."""
    from filelock import FileLock, Timeout

    ddir = Path(download_dir) if download_dir is not None else default_download_dir(entry)
    try:
        ddir.mkdir(parents=True, exist_ok=True)
        # Two fetches of one set must not append to the same .part file.
        with FileLock(str(ddir / ".fetch.lock"), timeout=LOCK_TIMEOUT_S):
            files = download_files(entry, ddir, path_in_source=path_in_source, progress=progress)
    except Timeout:
        raise UserError(
            f"another fetch of {entry.name} is downloading into {ddir}; wait for it to finish"
        ) from None
    except OSError as exc:
        raise UserError(f"cannot write downloads to {ddir}: {exc.strerror or exc}") from None
    try:
        artifacts, notes = convert(entry, files, Path(out_dir), exp=exp, overwrite=overwrite)
    except OSError as exc:
        raise UserError(f"cannot write the artifact(s) at {out_dir}: {exc.strerror or exc}") from None
    if not all(f.checked for f in files):
        notes.append(
            f"{entry.name}: the catalog records no sha256 for "
            + ", ".join(f"{f.name} (got {f.sha256})" for f in files if not f.checked)
            + "; add it to the catalog to pin the file"
        )
    return FetchResult(entry, files, artifacts, notes)


def push_fetched(result: FetchResult, name: str, store: Any) -> list[Any]:
    """Push the fetched artifacts: ``name`` for one, ``name-e0``, ``name-e1``... for several."""
    from ..refs import validate_name

    validate_name(name)
    arts = result.artifacts
    names = [name] if len(arts) == 1 else [f"{name}-e{i}" for i in range(len(arts))]
    for n in names:
        validate_name(n)
    return [store.push(a.path, n) for a, n in zip(arts, names, strict=True)]
