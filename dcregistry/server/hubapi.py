"""The part of the Hugging Face Hub HTTP API that ``huggingface_hub`` uses for dataset repos.

Endpoints (``{repo}`` = ``{ns}/{name}``): repo create and info, list, preupload, the git-lfs
batch API with upload/verify URLs served here, NDJSON commits, refs, tags, commit history, tree
listing, paths-info, ``resolve`` downloads (ETag, ``X-Repo-Commit``, ``X-Linked-Etag``,
``X-Linked-Size``, Range) and YAML validation. No Xet: LFS transfers are plain ``basic`` PUTs.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, quote

import yaml
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from .auth import TokenAuth, WriteDenied
from .backend import (
    MAX_COMMIT_BODY,
    MAX_LFS_OBJECT,
    Commit,
    Entry,
    HubError,
    RepoBackend,
    check_path,
    check_repo,
    is_lfs,
    iter_ndjson,
)

LFS_JSON = "application/vnd.git-lfs+json"
OCTETS = "application/octet-stream"
#: Signed LFS upload URLs stay valid this long (seconds).
UPLOAD_URL_TTL = 3600
_URL_SECRET = secrets.token_bytes(32)


def _sign(repo: str, oid: str, size: int, exp: int) -> str:
    msg = f"{repo}\n{oid}\n{size}\n{exp}".encode()
    return hmac.new(_URL_SECRET, msg, hashlib.sha256).hexdigest()


class CreateRepoBody(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = Field(max_length=200)
    organization: str | None = Field(default=None, max_length=200)
    type: str | None = Field(default=None, max_length=20)


class PreuploadFile(BaseModel):
    model_config = ConfigDict(extra="allow")
    path: str = Field(max_length=1024)
    size: int = Field(ge=0)
    sample: str | None = Field(default=None, max_length=4096)


class PreuploadBody(BaseModel):
    model_config = ConfigDict(extra="allow")
    files: list[PreuploadFile] = Field(max_length=1000)


class LfsObject(BaseModel):
    model_config = ConfigDict(extra="allow")
    oid: str = Field(max_length=64)
    size: int = Field(ge=0)


class LfsBatchBody(BaseModel):
    model_config = ConfigDict(extra="allow")
    operation: str = Field(max_length=20)
    objects: list[LfsObject] = Field(max_length=1000)
    transfers: list[str] | None = Field(default=None, max_length=10)
    hash_algo: str | None = Field(default="sha256", max_length=20)


class TagBody(BaseModel):
    model_config = ConfigDict(extra="allow")
    tag: str = Field(max_length=200)
    message: str | None = Field(default=None, max_length=10_000)


class YamlBody(BaseModel):
    model_config = ConfigDict(extra="allow")
    content: str = Field(max_length=1 << 20)
    repoType: str | None = Field(default=None, max_length=20)


def _hex64(oid: str) -> bool:
    return len(oid) == 64 and all(c in "0123456789abcdef" for c in oid)


async def read_capped(request: Request, cap: int) -> bytes:
    """The request body, refusing more than ``cap`` bytes (413) before reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > cap):
        raise HubError(413, f"request body larger than {cap} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise HubError(413, f"request body larger than {cap} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def hub_router(backend: RepoBackend, auth: TokenAuth, public_url: str | None = None) -> APIRouter:
    """A router serving ``backend`` with writes guarded by ``auth``."""
    router = APIRouter()

    def base(request: Request) -> str:
        return (public_url or str(request.base_url)).rstrip("/")

    def write_guard(authorization: str | None) -> None:
        auth.check_write(authorization)

    def repo_info(request: Request, name: str, commit: Commit, full: bool = True) -> dict[str, Any]:
        when = commit.created_at
        out: dict[str, Any] = {
            "id": name,
            "_id": name,
            "author": name.split("/")[0],
            "sha": commit.oid,
            "private": False,
            "disabled": False,
            "gated": False,
            "downloads": 0,
            "likes": 0,
            "tags": backend.card_tags(commit),
            "createdAt": when,
            "lastModified": when,
        }
        if full:
            tree = backend.tree(commit)
            out["siblings"] = [
                {
                    "rfilename": e.path,
                    "size": e.size,
                    "blobId": e.git_oid,
                    **(
                        {"lfs": {"sha256": e.sha256, "size": e.size, "pointerSize": len(_pointer(e))}}
                        if e.lfs
                        else {}
                    ),
                }
                for e in tree.values()
            ]
            if commit.metadata:
                from ..card import front_matter

                try:
                    out["cardData"] = front_matter(dict(commit.metadata))
                except (KeyError, TypeError, ValueError):
                    pass
        return out

    # ----------------------------------------------------------------------------- repos
    @router.post("/api/repos/create")
    def create_repo(
        request: Request, body: CreateRepoBody, authorization: str | None = Header(default=None)
    ) -> JSONResponse:
        write_guard(authorization)
        if (body.type or "model") != "dataset":
            raise HubError(400, "this server hosts dataset repos only (repo_type='dataset')")
        if body.organization:
            name = check_repo(body.organization, body.name)
        elif "/" in body.name:
            name = check_repo(*body.name.split("/", 1))
        else:
            raise HubError(400, "give the repo as ORG/NAME (organization is required here)")
        url = f"{base(request)}/datasets/{name}"
        if not backend.create(name):
            return JSONResponse(
                {"error": "You already created this dataset repo", "url": url}, status_code=409
            )
        return JSONResponse({"url": url, "name": name, "id": name})

    @router.get("/api/datasets")
    def list_datasets(
        request: Request,
        author: str | None = Query(default=None, max_length=200),
        search: str | None = Query(default=None, max_length=200),
        filter: list[str] | None = Query(default=None, max_length=20),
        limit: int | None = Query(default=None, ge=1, le=100_000),
    ) -> list[dict[str, Any]]:
        out = []
        for name in backend.names():
            if author and name.split("/")[0] != author:
                continue
            if search and search.lower() not in name:
                continue
            info = repo_info(request, name, backend.head(name), full=False)
            if filter and not set(filter) <= set(info["tags"]):
                continue
            out.append(info)
            if limit and len(out) >= limit:
                break
        return out

    @router.get("/api/datasets/{ns}/{name}")
    def dataset_info(request: Request, ns: str, name: str) -> dict[str, Any]:
        repo = check_repo(ns, name)
        return repo_info(request, repo, backend.head(repo))

    @router.get("/api/datasets/{ns}/{name}/revision/{rev}")
    def dataset_info_rev(request: Request, ns: str, name: str, rev: str) -> dict[str, Any]:
        repo = check_repo(ns, name)
        return repo_info(request, repo, backend.resolve(repo, rev))

    @router.get("/api/datasets/{ns}/{name}/refs")
    def refs(ns: str, name: str) -> dict[str, Any]:
        return backend.refs(check_repo(ns, name))

    @router.get("/api/datasets/{ns}/{name}/commits/{rev}")
    def commits(ns: str, name: str, rev: str) -> list[dict[str, Any]]:
        return backend.history(check_repo(ns, name), rev)

    # ------------------------------------------------------------------------------ trees
    def _listing(repo: str, rev: str, path: str, recursive: bool) -> list[dict[str, Any]]:
        commit = backend.resolve(repo, rev)
        tree = backend.tree(commit)
        prefix = "" if not path else check_path(path.rstrip("/")) + "/"
        if path and path.rstrip("/") in tree:
            return [tree[path.rstrip("/")].to_json()]
        files = [e for p, e in tree.items() if p.startswith(prefix)]
        if path and not files:
            raise HubError(404, f"{path} does not exist at {rev}", "EntryNotFound")
        out: dict[str, dict[str, Any]] = {}
        for e in files:
            rest = e.path[len(prefix) :].split("/")
            for depth in range(1, len(rest)):
                folder = prefix + "/".join(rest[:depth])
                if recursive or depth == 1:
                    out.setdefault(
                        folder,
                        {
                            "type": "directory",
                            "path": folder,
                            "size": 0,
                            "oid": _folder_oid(commit.oid, folder),
                        },
                    )
            if recursive or len(rest) == 1:
                out[e.path] = e.to_json()
        return [out[k] for k in sorted(out)]

    @router.get("/api/datasets/{ns}/{name}/tree/{rev}")
    def tree_root(
        ns: str, name: str, rev: str, recursive: bool = False, expand: bool = False
    ) -> list[dict[str, Any]]:
        return _listing(check_repo(ns, name), rev, "", recursive)

    @router.get("/api/datasets/{ns}/{name}/tree/{rev}/{path:path}")
    def tree_path(
        ns: str, name: str, rev: str, path: str, recursive: bool = False, expand: bool = False
    ) -> list[dict[str, Any]]:
        return _listing(check_repo(ns, name), rev, path, recursive)

    @router.post("/api/datasets/{ns}/{name}/paths-info/{rev}")
    async def paths_info(request: Request, ns: str, name: str, rev: str) -> list[dict[str, Any]]:
        repo = check_repo(ns, name)
        body = await read_capped(request, 1 << 20)
        ctype = request.headers.get("content-type", "")
        if "json" in ctype:
            import json

            try:
                data = json.loads(body or b"{}")
            except (ValueError, RecursionError):
                raise HubError(400, "body is not valid JSON") from None
            paths = data.get("paths") if isinstance(data, dict) else None
        else:
            try:
                paths = parse_qs(body.decode("utf-8"), max_num_fields=1100).get("paths")
            except (UnicodeDecodeError, ValueError):
                raise HubError(400, "body is not a valid form") from None
        if isinstance(paths, str):
            paths = [paths]
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths) or len(paths) > 1000:
            raise HubError(400, "give 'paths': a list of at most 1000 file paths")

        def work() -> list[dict[str, Any]]:
            commit = backend.resolve(repo, rev)
            tree = backend.tree(commit)
            out = []
            for p in paths:
                p = check_path(p.rstrip("/"))
                if p in tree:
                    out.append(tree[p].to_json())
                elif any(q.startswith(p + "/") for q in tree):
                    out.append({"type": "directory", "path": p, "size": 0, "oid": _folder_oid(commit.oid, p)})
            return out

        return await run_in_threadpool(work)

    # --------------------------------------------------------------------------- download
    @router.head("/datasets/{ns}/{name}/resolve/{rev}/{path:path}", include_in_schema=False)
    @router.get("/datasets/{ns}/{name}/resolve/{rev}/{path:path}")
    async def resolve_file(request: Request, ns: str, name: str, rev: str, path: str) -> Response:
        repo = check_repo(ns, name)
        check_path(path)
        hit = backend.cached(repo, rev)  # hot path: memory only, no thread hop
        if hit is not None:
            commit, tree = hit
        else:
            commit = await run_in_threadpool(backend.resolve, repo, rev)
            tree = await run_in_threadpool(backend.tree, commit)
        entry = tree.get(path)
        if entry is None or entry.source is None:
            raise HubError(404, f"{path} does not exist at {rev} of {repo}", "EntryNotFound")
        try:
            st = os.stat(entry.source)
        except OSError:  # the version went away (rm/gc) while its commit was cached
            backend.forget_commit(repo, commit.oid)
            raise HubError(
                404, f"{path} is no longer available at {rev} of {repo}", "EntryNotFound"
            ) from None
        etag = entry.sha256 if entry.lfs else entry.git_oid
        headers = {
            "etag": f'"{etag}"',
            "X-Repo-Commit": commit.oid,
            "Accept-Ranges": "bytes",
            "Cache-Control": "public, max-age=31536000, immutable" if rev == commit.oid else "no-cache",
        }
        if entry.lfs:
            headers["X-Linked-Etag"] = f'"{entry.sha256}"'
            headers["X-Linked-Size"] = str(entry.size)
        range_header = request.headers.get("range")
        rng = _single_range(range_header, st.st_size)
        if rng == "invalid":  # ignored, as RFC 9110 says: the whole file
            range_header = rng = None
            request.scope["headers"] = [(k, v) for k, v in request.scope["headers"] if k.lower() != b"range"]
        if st.st_size <= SMALL_FILE and (range_header is None or rng is not None):
            # small files from memory: no thread hop; other range forms go to FileResponse
            data = _small_file(entry.source, st)
            body_of: Callable[[bytes], bytes] = lambda b: b"" if request.method == "HEAD" else b  # noqa: E731
            if rng == "unsatisfiable":
                return Response(status_code=416, headers={"Content-Range": f"bytes */{len(data)}"})
            if isinstance(rng, tuple):
                a, b = rng
                return Response(
                    body_of(data[a:b]),
                    status_code=206,
                    media_type=OCTETS,
                    headers={
                        **headers,
                        "Content-Length": str(b - a),
                        "Content-Range": f"bytes {a}-{b - 1}/{len(data)}",
                    },
                )
            return Response(
                body_of(data), media_type=OCTETS, headers={**headers, "Content-Length": str(len(data))}
            )
        return FileResponse(
            entry.source,
            headers=headers,
            stat_result=st,
            media_type="application/octet-stream",
            content_disposition_type="inline",
            filename=path.rsplit("/", 1)[-1],
        )

    # ----------------------------------------------------------------------------- upload
    @router.post("/api/datasets/{ns}/{name}/preupload/{rev}")
    def preupload(
        ns: str, name: str, rev: str, body: PreuploadBody, authorization: str | None = Header(default=None)
    ) -> dict[str, Any]:
        write_guard(authorization)
        repo = check_repo(ns, name)
        commit = backend.resolve(repo, rev)
        tree = backend.tree(commit)
        files = []
        for f in body.files:
            path = check_path(f.path)
            lfs = is_lfs(path, f.size)
            item: dict[str, Any] = {
                "path": path,
                "uploadMode": "lfs" if lfs else "regular",
                "shouldIgnore": False,
            }
            have = tree.get(path)
            if have is not None:
                item["oid"] = have.sha256 if lfs else have.git_oid
            files.append(item)
        return {"files": files, "commitOid": commit.oid}

    @router.post("/datasets/{ns}/{name}.git/info/lfs/objects/batch")
    def lfs_batch(
        request: Request,
        ns: str,
        name: str,
        body: LfsBatchBody,
        authorization: str | None = Header(default=None),
    ) -> JSONResponse:
        write_guard(authorization)
        repo = check_repo(ns, name)
        backend.require(repo)
        if body.operation != "upload":
            raise HubError(400, "only the 'upload' operation is served; download through resolve")
        if body.hash_algo not in (None, "sha256"):
            raise HubError(400, "hash_algo must be sha256")
        if backend.is_results(repo):
            refused = {
                "code": 422,
                "message": "a results repo takes small inline record files, no LFS objects",
            }
            return JSONResponse(
                {
                    "transfer": "basic",
                    "objects": [{"oid": o.oid[:64], "size": o.size, "error": refused} for o in body.objects],
                    "hash_algo": "sha256",
                },
                media_type=LFS_JSON,
            )
        objects = []
        root = f"{base(request)}/datasets/{repo}.git/info/lfs"
        for obj in body.objects:
            if not _hex64(obj.oid):
                objects.append(
                    {
                        "oid": obj.oid[:64],
                        "size": obj.size,
                        "error": {"code": 422, "message": "oid must be a 64-hex sha256"},
                    }
                )
                continue
            if obj.size > MAX_LFS_OBJECT:
                objects.append(
                    {
                        "oid": obj.oid,
                        "size": obj.size,
                        "error": {"code": 422, "message": f"larger than {MAX_LFS_OBJECT} bytes"},
                    }
                )
                continue
            item: dict[str, Any] = {"oid": obj.oid, "size": obj.size, "authenticated": True}
            if not backend.has_object(repo, obj.oid, obj.size):
                # basic-transfer PUTs carry no Authorization header (they target presigned URLs
                # on the Hub): the URL is signed with a per-process secret and expires.
                exp = int(time.time()) + UPLOAD_URL_TTL
                sig = _sign(repo, obj.oid, obj.size, exp)
                item["actions"] = {
                    "upload": {
                        "href": f"{root}/objects/{obj.oid}/{obj.size}?exp={exp}&sig={sig}",
                        "header": {},
                    },
                    "verify": {"href": f"{root}/verify", "header": {}},
                }
            objects.append(item)
        return JSONResponse(
            {"transfer": "basic", "objects": objects, "hash_algo": "sha256"}, media_type=LFS_JSON
        )

    @router.put("/datasets/{ns}/{name}.git/info/lfs/objects/{oid}/{size}")
    async def lfs_upload(
        request: Request,
        ns: str,
        name: str,
        oid: str,
        size: int,
        exp: int = Query(default=0),
        sig: str = Query(default="", max_length=64),
    ) -> dict[str, Any]:
        repo = check_repo(ns, name)
        if auth.read_only:
            auth.check_write(None)
        if exp < time.time() or not hmac.compare_digest(sig.encode(), _sign(repo, oid, size, exp).encode()):
            raise WriteDenied(401, "upload URL signature is invalid or expired; ask the LFS batch API again")
        if not _hex64(oid) or size < 0 or size > MAX_LFS_OBJECT:
            raise HubError(400, "upload URL needs a 64-hex sha256 oid and a size within the limit")
        await run_in_threadpool(backend.require, repo)
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) != size):
            raise HubError(400, f"Content-Length {declared[:20]!r} is not the declared size {size}")
        tmp = backend.new_upload()
        h = hashlib.sha256()
        got = 0
        # Writing, hashing and fsyncing happen in worker threads, UPLOAD_BATCH bytes at a time, so
        # a multi-GB upload never blocks the event loop (and every other request) on the disk.
        f = await run_in_threadpool(open, tmp, "xb")
        try:
            batch: list[bytes] = []
            pending = 0
            async for chunk in request.stream():
                got += len(chunk)
                if got > size:
                    raise HubError(
                        400, f"upload is larger than the declared {size} bytes; nothing was stored"
                    )
                batch.append(chunk)
                pending += len(chunk)
                if pending >= UPLOAD_BATCH:
                    await run_in_threadpool(_write_hashing, f, h, batch)
                    batch, pending = [], 0
            await run_in_threadpool(_write_hashing, f, h, batch)
            await run_in_threadpool(_sync_close, f)
            await run_in_threadpool(backend.finish_upload, tmp, oid, size, h.hexdigest(), got)
        except ClientDisconnect:
            raise HubError(400, "client disconnected during the upload; nothing was stored") from None
        finally:
            if not f.closed:
                await run_in_threadpool(f.close)
            if tmp.exists():
                await run_in_threadpool(os.unlink, tmp)
        return {"oid": oid, "size": size}

    @router.post("/datasets/{ns}/{name}.git/info/lfs/verify")
    def lfs_verify(
        ns: str, name: str, body: LfsObject, authorization: str | None = Header(default=None)
    ) -> dict[str, Any]:
        write_guard(authorization)
        repo = check_repo(ns, name)
        if not _hex64(body.oid) or not backend.has_object(repo, body.oid, body.size):
            raise HubError(404, f"object {body.oid[:12]} ({body.size} bytes) was not uploaded")
        return {"oid": body.oid, "size": body.size}

    @router.post("/api/datasets/{ns}/{name}/commit/{rev}")
    async def commit(
        request: Request, ns: str, name: str, rev: str, authorization: str | None = Header(default=None)
    ) -> dict[str, Any]:
        write_guard(authorization)
        repo = check_repo(ns, name)
        body = await read_capped(request, MAX_COMMIT_BODY)
        done = await run_in_threadpool(lambda: backend.commit(repo, rev, list(iter_ndjson(body))))
        return {
            "success": True,
            "commitOid": done.oid,
            "commitUrl": f"{base(request)}/datasets/{repo}/commit/{done.oid}",
            "hookOutput": "",
        }

    # ------------------------------------------------------------------------------- tags
    @router.post("/api/datasets/{ns}/{name}/tag/{rev}")
    def create_tag(
        ns: str, name: str, rev: str, body: TagBody, authorization: str | None = Header(default=None)
    ) -> dict[str, Any]:
        write_guard(authorization)
        backend.create_tag(check_repo(ns, name), rev, body.tag)
        return {"success": True}

    @router.delete("/api/datasets/{ns}/{name}/tag/{tag}")
    def delete_tag(
        ns: str, name: str, tag: str, authorization: str | None = Header(default=None)
    ) -> dict[str, Any]:
        write_guard(authorization)
        backend.delete_tag(check_repo(ns, name), tag)
        return {"success": True}

    # ------------------------------------------------------------------------------- misc
    @router.post("/api/validate-yaml")
    def validate_yaml(body: YamlBody) -> dict[str, Any]:
        text = body.content
        if text.startswith("---"):
            end = text.find("\n---", 3)
            if end < 0:
                raise HubError(400, "README.md front matter has no closing '---'")
            try:
                data = yaml.safe_load(text[3:end])
            except (yaml.YAMLError, RecursionError):
                raise HubError(400, "README.md front matter is not valid YAML") from None
            if data is not None and not isinstance(data, dict):
                raise HubError(400, "README.md front matter must be a YAML mapping")
        return {"errors": [], "warnings": []}

    @router.get("/api/whoami-v2")
    def whoami(authorization: str | None = Header(default=None)) -> dict[str, Any]:
        write_guard(authorization)
        return {"type": "user", "name": "dcreg", "auth": {"type": "access_token"}}

    @router.get("/api/dcreg/health")
    def health() -> dict[str, Any]:
        return {"ok": True, "read_only": auth.read_only, "time": time.time()}

    return router


#: Bytes of an LFS upload collected before one worker-thread write.
UPLOAD_BATCH = 4 << 20


def _write_hashing(f: Any, h: Any, chunks: list[bytes]) -> None:
    for c in chunks:
        h.update(c)
        f.write(c)


def _sync_close(f: Any) -> None:
    f.flush()
    os.fsync(f.fileno())
    f.close()


#: Files up to this size are served from memory (cached by path, mtime and size).
SMALL_FILE = 256 << 10
_SMALL: dict[tuple[str, int, int], bytes] = {}


def _small_file(path: Any, st: os.stat_result) -> bytes:
    key = (str(path), st.st_mtime_ns, st.st_size)
    data = _SMALL.get(key)
    if data is None:
        with open(path, "rb") as f:
            data = f.read(SMALL_FILE + 1)
        if len(_SMALL) > 1024:
            _SMALL.clear()
        _SMALL[key] = data
    return data


_RANGE = re.compile(r"bytes=([0-9]{0,19})-([0-9]{0,19})")


def _single_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """(start, end) of a single ``bytes=a-b`` range; "unsatisfiable"; "invalid" for a
    syntactically invalid one, which RFC 9110 says to ignore (``bytes=5-3``, ``bytes=x-``); None
    for none or a multi-range form (answered by the file response)."""
    if not header:
        return None
    text = header.strip()
    m = _RANGE.fullmatch(text)
    if m is None:
        return None if text.startswith("bytes=") and "," in text else "invalid"
    first, last = m.groups()
    if first == "":
        if last == "":
            return "invalid"
        n = int(last)
        if n == 0:
            return "unsatisfiable"
        start, end = max(size - n, 0), size
    else:
        start = int(first)
        if last != "" and int(last) < start:
            return "invalid"
        end = size if last == "" else min(int(last) + 1, size)
    if start >= size:
        return "unsatisfiable"
    return start, end


def _pointer(e: Entry) -> bytes:
    from .backend import lfs_pointer

    return lfs_pointer(e.sha256, e.size)


def _folder_oid(commit: str, folder: str) -> str:
    return hashlib.sha1(f"dcreg-tree\n{commit}\n{quote(folder)}\n".encode()).hexdigest()
