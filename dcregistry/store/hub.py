"""The Hugging Face Hub store: one dataset repo per artifact name, one commit per version.

Works against the real Hub or any endpoint speaking its API (``dcreg serve``). A version
``vN`` is a commit titled ``dcreg vN sha256:<digest>`` holding ``manifest.json``,
``data.safetensors``, ``README.md`` (the artifact, byte for byte) and ``preview/train.parquet``
(an 8-bit view for ``datasets`` and the dataset viewer, declared in the card's ``configs``),
tagged ``vN`` (plus user tags). Version numbers are allocated with optimistic concurrency: the
commit names the head it was built on (``parent_commit``) and is retried when another push got
there first. ``pull``/``open`` download with dcregistry's own bounded downloader into its own
cache (:mod:`dcregistry.store.hubcache`: paths are built from values the client checked, never
from a server's headers) and check every file's sha256 against the manifest before anything is
returned. Every commit id, tag and file name a server answers is validated like a local one.

Tokens: the Hugging Face token (``HF_TOKEN``, or the saved login) goes only to the Hub itself or
to the ``HF_ENDPOINT`` the user set; any other server gets ``DCREG_TOKEN`` (or the token passed
in), and no token is ever sent over plain http except to this machine (loopback).
Environment: ``HF_ENDPOINT`` (default https://huggingface.co), ``HF_TOKEN``, ``DCREG_TOKEN``,
``HF_HUB_OFFLINE`` (resolve and open from the cache only), ``HF_HUB_CACHE``/``HF_HOME`` (the
cache lives in ``dcreg/`` under it). Tokens never appear in messages.
"""

from __future__ import annotations

import builtins
import hashlib
import io
import json
import os
import random
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar
from urllib.parse import urlparse

from ..artifact import MANIFEST_FILE, manifest_digest, open_artifact
from ..errors import (
    IntegrityError,
    InvalidReferenceError,
    NotFoundError,
    UnsupportedOperationError,
    UserError,
)
from ..hubformat import (
    BRANCH,
    PREVIEW_FILE,
    REPO_TYPE,
    commit_title,
    parse_commit_title,
    tag_version,
    version_tag,
)
from ..manifest import FileEntry, Manifest, holds_artifact, manifest_bytes
from ..refs import (
    LATEST,
    Ref,
    has_control_chars,
    is_commit_id,
    is_hub_repo,
    parse_name_ref,
    parse_ref,
    validate_name,
    validate_tag,
)
from ..transfer import is_loopback
from .base import PushResult, RefLike, VerifyReport, VersionCheck, VersionInfo, WritableStore
from .hubcache import HubCache
from .select import select_version

if TYPE_CHECKING:
    from ..artifact import Artifact

__all__ = ["HubStore", "HubError", "HubUnsupportedError", "DEFAULT_ENDPOINT", "PREVIEW_FILE", "is_hub_spec"]

DEFAULT_ENDPOINT = "https://huggingface.co"
#: Commit attempts when other pushes keep moving the head.
PUSH_ATTEMPTS = 12
_P = ParamSpec("_P")
_T = TypeVar("_T")


class HubError(UserError):
    """The Hub (or a ``dcreg serve`` endpoint) refused a request or could not be reached."""


class HubUnsupportedError(UnsupportedOperationError):
    """The operation does not exist on a Hub store (e.g. rm, gc, annotations)."""


def is_hub_spec(spec: str) -> bool:
    """Whether a store value names a Hub store: ``hf``, ``hub``, ``hf://...`` or an http(s) URL."""
    return spec in ("hf", "hub") or spec.startswith(("hf://", "http://", "https://"))


def _is_real_hub(endpoint: str) -> bool:
    host = urlparse(endpoint).hostname or ""
    return host == "huggingface.co" or host.endswith(".huggingface.co") or host == "hf.co"


def _hub() -> ModuleType:
    """Import huggingface_hub (lazily: `dcreg list` on a local store never pays for it)."""
    import huggingface_hub
    import huggingface_hub.constants
    import huggingface_hub.errors
    import huggingface_hub.utils

    if not os.environ.get("DCREG_DEBUG"):
        # Failures surface as one HubError line; the client's retry warnings would add a dozen.
        # (Its own verbosity setting, applied after import: it overrides a plain setLevel.)
        # (ignore: huggingface_hub leaves set_verbosity_error unannotated)
        huggingface_hub.utils.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    return huggingface_hub


class HubStore(WritableStore):
    """Artifacts as dataset repos on a Hub endpoint (see the module docstring). It can read and
    write; annotations and maintenance (rm, gc) are a local store's (:meth:`require` says so)."""

    refusal_hints = {
        "annotate": "annotations (recorded evaluations) live in a local store; "
        "pull the version and record the result there",
        "maintain": "versions on a Hub store are not removed by dcreg (delete the vN tag or the "
        "repo on the Hub itself), and it has nothing to collect",
    }
    unsupported_error = HubUnsupportedError

    def __init__(
        self,
        endpoint: str | None = None,
        token: str | None = None,
        *,
        cache_dir: str | Path | None = None,
        offline: bool | None = None,
    ):
        endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
        parsed = urlparse(endpoint)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise HubError(f"Hub endpoint {endpoint[:80]!r} is not an http(s) URL")
        self.endpoint = endpoint
        self.location = endpoint
        self.real_hub = _is_real_hub(endpoint)
        user_endpoint = (os.environ.get("HF_ENDPOINT") or "").rstrip("/")
        #: whether the Hugging Face token may go here: the Hub, or the endpoint the user set
        self.hf_token_ok = self.real_hub or (bool(user_endpoint) and endpoint == user_endpoint)
        if token is None:
            token = os.environ.get("HF_TOKEN") if self.hf_token_ok else os.environ.get("DCREG_TOKEN")
        self.insecure = parsed.scheme == "http" and not is_loopback(parsed.hostname)
        self.token_withheld = bool(token) and self.insecure
        self._token = None if self.insecure else (token or None)  # never printed (see __repr__)
        if offline is None:
            offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
        self.offline = offline
        if cache_dir is None:
            cache_dir = os.environ.get("HF_HUB_CACHE") or (
                Path(os.environ["HF_HOME"]) / "hub"
                if os.environ.get("HF_HOME")
                else Path.home() / ".cache" / "huggingface" / "hub"
            )
        cache_dir = Path(cache_dir).expanduser()
        # one cache per endpoint: the same repo id on two servers is two repos
        tag = hashlib.sha1(endpoint.encode()).hexdigest()[:12]
        self.cache_dir = cache_dir / "dcreg" / f"{parsed.hostname}-{parsed.port or ''}-{tag}"
        self._cache = HubCache(self.cache_dir)
        if not self.real_hub:
            # dcreg serve offers no Xet storage: plain LFS uploads/downloads only
            os.environ["HF_HUB_DISABLE_XET"] = "1"
            try:
                _hub().constants.HF_HUB_DISABLE_XET = True
            except ImportError:
                pass
        self._api_obj: Any = None

    def __repr__(self) -> str:
        return f"HubStore({self.endpoint!r})"

    @property
    def _auth_token(self) -> str | bool | None:
        # On the Hub (or the user's HF_ENDPOINT) without HF_TOKEN, huggingface_hub's saved login
        # (`hf auth login`) is used; other endpoints never get it (False: send no token at all).
        if self._token:
            return self._token
        return None if self.hf_token_ok and not self.insecure else False

    def _headers(self) -> dict[str, str]:
        """The Authorization header for our own downloads from the endpoint (origin only)."""
        token = self._token
        if token is None and self.hf_token_ok and not self.insecure:
            try:
                token = _hub().get_token()
            except Exception:
                token = None
        return {"Authorization": f"Bearer {token}"} if token else {}

    # ----------------------------------------------------------------------------- plumbing
    @property
    def _api(self) -> Any:
        if self._api_obj is None:
            from .. import __version__

            self._api_obj = _hub().HfApi(
                endpoint=self.endpoint,
                token=self._auth_token,
                library_name="dcregistry",
                library_version=__version__,
            )
        return self._api_obj

    def _call(self, what: str, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Run a huggingface_hub call, turning its errors into one-line HubErrors (no token)."""
        if self.offline:
            raise HubError(f"{what}: offline (HF_HUB_OFFLINE is set) and not in the cache")
        hh = _hub()
        errors = hh.errors
        try:
            return fn(*args, **kwargs)
        except errors.RevisionNotFoundError:
            raise NotFoundError(f"{what}: no such revision on {self.endpoint}") from None
        except errors.EntryNotFoundError:
            raise NotFoundError(f"{what}: no such file on {self.endpoint}") from None
        except errors.RepositoryNotFoundError:
            raise NotFoundError(
                f"{what}: no such dataset repo on {self.endpoint} (or it is "
                "private and the token cannot read it)"
            ) from None
        except errors.HfHubHTTPError as exc:
            raise self._http_error(what, exc) from None
        except Exception as exc:
            if not isinstance(exc, (OSError, ValueError)) and not _is_network_error(exc):
                raise
            text = str(exc) or type(exc).__name__
            if self._token and self._token in text:
                text = type(exc).__name__
            raise HubError(
                f"{what}: cannot talk to {self.endpoint} ({type(exc).__name__}: {text.splitlines()[0][:200]})"
            ) from None

    def _http_error(self, what: str, exc: Any) -> UserError:
        resp = getattr(exc, "response", None)
        status = getattr(resp, "status_code", None)
        detail = ""
        try:
            detail = str(resp.json().get("error", ""))[:300] if resp is not None else ""
        except Exception:
            detail = ""
        if self._token:
            detail = detail.replace(self._token, "***")
        if status == 401:
            how = (
                "set HF_TOKEN to a token with write access"
                if self.hf_token_ok
                else "set DCREG_TOKEN to the server's token (HF_TOKEN goes only to the Hub "
                "or the HF_ENDPOINT you set)"
            )
            if self.token_withheld:
                how = "the token was not sent because the endpoint is plain http; use https"
            return HubError(
                f"{what}: {self.endpoint} refused the credentials (401): "
                f"{_which_token(self._token, self.hf_token_ok)}; {how}"
            )
        if status == 403:
            return HubError(f"{what}: {self.endpoint} forbids it (403){': ' + detail if detail else ''}")
        if status in (409, 412):
            return _Conflict(f"{what}: {detail or 'conflict'}")
        return HubError(f"{what}: {self.endpoint} answered {status}{': ' + detail if detail else ''}")

    def _file_url(self, repo: str, commit: str, filename: str) -> str:
        from urllib.parse import quote

        return f"{self.endpoint}/datasets/{quote(repo, safe='/')}/resolve/{commit}/{quote(filename)}"

    def _fetch_manifest_bytes(self, repo: str, commit: str) -> bytes:
        from ..manifest import MAX_MANIFEST_BYTES
        from ..transfer import fetch_bytes

        def status(code: int, _body: str) -> None:
            if code == 404:
                raise NotFoundError(f"{repo}@{commit[:12]}: no manifest.json on {self.endpoint}")
            if code in (401, 403):
                raise HubError(
                    f"{repo}@{commit[:12]}: {self.endpoint} refused the download ({code}): "
                    f"{_which_token(self._token, self.hf_token_ok)}"
                )

        return self._net(
            f"{repo}@{commit[:12]}: download manifest.json",
            fetch_bytes,
            self._file_url(repo, commit, MANIFEST_FILE),
            max_bytes=MAX_MANIFEST_BYTES,
            headers=self._headers(),
            on_status=status,
        )

    def _net(self, what: str, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Our own transfers: their failures as one HubError line (no token in it)."""
        from ..transfer import DownloadError

        try:
            return fn(*args, **kwargs)
        except DownloadError as exc:
            text = str(exc)
            if self._token:
                text = text.replace(self._token, "***")
            raise HubError(f"{what}: {text}") from None

    def _manifest_at(self, repo: str, oid: str) -> Manifest:
        fetch = None if self.offline else (lambda: self._fetch_manifest_bytes(repo, oid))
        return self._cache.manifest(repo, oid, fetch)

    # ------------------------------------------------------------------------------ parsing
    @staticmethod
    def _parse(ref: RefLike) -> tuple[str, Literal["latest", "version", "tag", "digest", "rev"], Any]:
        """(repo id, selector, value) with selector latest|version|tag|digest|rev."""
        if isinstance(ref, VersionInfo):
            return ref.name, "version", ref.version
        if isinstance(ref, str):
            if ref.startswith("hf://"):
                r = parse_ref(ref)
            else:  # a Hub store's references are always names (a same-named directory is not asked)
                r = parse_name_ref(ref)
        else:
            r = ref
        if r.kind == "hub":
            if r.value is None:
                return str(r.name), "latest", None
            v = tag_version(str(r.value))
            return (str(r.name), "version", v) if v is not None else (str(r.name), "rev", str(r.value))
        if r.kind != "name":
            raise InvalidReferenceError(
                f"{r} is a directory, not a store reference "
                "(use ns/name[@v3|@tag|@sha256:..] or hf://datasets/ORG/NAME@vN)"
            )
        return str(r.name), r.selector, r.value

    # ---------------------------------------------------------------------------- versions
    def _refs(self, repo: str) -> tuple[dict[int, str], dict[str, str], str | None]:
        """(version -> commit, user tag -> commit, head of main) from the Hub, every commit id
        and tag name checked before use (a hostile server's answer is refused, exit 1)."""
        refs = self._call(f"{repo}: list refs", self._api.list_repo_refs, repo, repo_type=REPO_TYPE)
        versions: dict[int, str] = {}
        tags: dict[str, str] = {}
        for t in refs.tags:
            name, oid = getattr(t, "name", None), getattr(t, "target_commit", None)
            if not isinstance(name, str) or has_control_chars(name) or len(name) > 256:
                raise HubError(
                    f"{repo}: {self.endpoint} answered a tag name that is not text without "
                    f"control characters ({str(name)[:40]!r}); refusing its answer"
                )
            if not is_commit_id(oid):
                raise HubError(
                    f"{repo}: {self.endpoint} answered {str(oid)[:60]!r} as the commit of "
                    f"tag {name[:64]!r}, which is not a 40-hex commit id; refusing its answer"
                )
            v = tag_version(name)
            if v is not None:
                versions[v] = oid
            elif _is_user_tag(name):
                tags[name] = oid  # tags that are not dcreg tags (e.g. 'release/1') are not ours
        head = next((b.target_commit for b in refs.branches if b.name == BRANCH), None)
        if head is not None and not is_commit_id(head):
            raise HubError(
                f"{repo}: {self.endpoint} answered {str(head)[:60]!r} as the head of main, "
                "which is not a 40-hex commit id; refusing its answer"
            )
        self._cache.save_refs(repo, versions, tags)
        return versions, tags, head

    def _cached_refs(self, repo: str) -> tuple[dict[int, str], dict[str, str]]:
        """What the cache remembers of ``repo``'s refs (for offline use)."""
        return self._cache.load_refs(repo)

    def _find(self, ref: RefLike) -> tuple[str, int, str, Manifest, dict[str, str], dict[int, str]]:
        """(repo, version, commit, manifest, user tags, versions) of the version ``ref`` names."""
        repo, selector, value = self._parse(ref)
        if self.offline:
            versions, tags = self._cached_refs(repo)
        else:
            versions, tags, _ = self._refs(repo)
        if not versions:
            raise NotFoundError(
                f"{repo} has no dcreg version (no vN tag) on {self.endpoint}"
                + (" in the local Hub cache (offline)" if self.offline else "")
            )
        version = self._revision(repo, str(value), versions, tags) if selector in ("tag", "rev") else None
        if version is None:
            version = select_version(
                (_HubVersion(self, repo, v, o, tags, versions) for v, o in versions.items()),
                Ref("name", repo, "tag" if selector == "rev" else selector, value),
            ).version
        oid = versions[version]
        return repo, version, oid, self._manifest_at(repo, oid), tags, versions

    def _revision(
        self, repo: str, rev: str, versions: Mapping[int, str], tags: Mapping[str, str]
    ) -> int | None:
        """The version a Hub revision names when it is a commit id or ``main`` (the highest
        version on that commit); None where it is a tag, which :func:`select_version` picks
        (NotFoundError for a tag or commit that carries no version)."""
        if rev == LATEST:
            return None
        if rev in tags:
            oid = tags[rev]
        elif is_commit_id(rev):
            oid = rev
        elif rev == "main" and not self.offline:
            oid = self._refs(repo)[2] or ""
        else:
            return None  # no such revision: selection reports the missing tag
        hits = [v for v, o in versions.items() if o == oid]
        if not hits:
            raise NotFoundError(f"{repo}@{rev} is not a dcreg version (no vN tag on commit {oid[:12]})")
        return None if rev in tags else max(hits)

    def _info(
        self,
        repo: str,
        version: int,
        oid: str,
        manifest: Mapping[str, Any],
        tags: Mapping[str, str],
        versions: Mapping[int, str],
    ) -> VersionInfo:
        md = manifest["metadata"] if isinstance(manifest.get("metadata"), dict) else {}
        return VersionInfo(
            repo,
            version,
            manifest_digest(manifest),
            _tags_on(version, oid, tags, versions),
            md.get("created_at"),
            dict(md),
        )

    def resolve(self, ref: RefLike) -> VersionInfo:
        """The version ``ref`` names: ``ns/name[@vN|@tag|@sha256:..]`` or ``hf://datasets/ORG/NAME@rev``."""
        repo, version, oid, manifest, tags, versions = self._find(ref)
        return self._info(repo, version, oid, manifest, tags, versions)

    def manifest(self, ref: RefLike) -> Manifest:
        """The manifest of the version ``ref`` names."""
        return self._find(ref)[3]

    def commit_of(self, ref: RefLike) -> str:
        """The commit id holding the version ``ref`` names."""
        return self._find(ref)[2]

    # ------------------------------------------------------------------------- open / pull
    def _fetch_verified(
        self, repo: str, version: int, oid: str, manifest: Mapping[str, Any], progress: bool = False
    ) -> dict[str, Path]:
        """Every manifest file at ``oid``, from the cache or downloaded, sha256 and size checked."""
        from ..transfer import download

        out = {}
        for fname, entry in sorted(manifest["files"].items()):
            label = f"{repo}@v{version}: {fname} from {self.endpoint}"

            def fetch(part: Path, fname: str = fname, entry: FileEntry = entry) -> None:
                self._net(
                    f"{repo}@v{version}: download {fname}",
                    download,
                    self._file_url(repo, oid, fname),
                    part,
                    max_bytes=entry["size"],
                    expected_size=entry["size"],
                    headers=self._headers(),
                    progress=progress,
                    label=fname,
                )

            out[fname] = self._cache.blob(
                entry["sha256"], entry["size"], None if self.offline else fetch, label
            )
        return out

    def _snapshot(
        self, repo: str, version: int, oid: str, manifest: Mapping[str, Any], progress: bool = False
    ) -> Path:
        return self._cache.snapshot(manifest, self._fetch_verified(repo, version, oid, manifest, progress))

    def open(self, ref: RefLike, verify: bool = True) -> Artifact:
        """The version as an Artifact read from the cache, every file verified first."""
        repo, version, oid, manifest, _, _ = self._find(ref)
        art = open_artifact(self._snapshot(repo, version, oid, manifest), verify=verify)
        if manifest_digest(art.manifest) != manifest_digest(manifest):
            raise IntegrityError(
                f"{repo}@v{version}: the cached snapshot differs from the version "
                f"resolved; delete {self.cache_dir} and retry"
            )
        return art

    def pull(self, ref: RefLike, out_dir: str | Path | None = None, *, progress: bool = False) -> Path:
        """Copy the version to ``out_dir`` (default ``./<name>-v<N>``), verified before it appears."""
        from ..fsio import staged_dir

        repo, version, oid, manifest, _, _ = self._find(ref)
        out = Path(out_dir) if out_dir is not None else Path(f"{repo.split('/')[1]}-v{version}")
        if out.exists() and out.is_dir() and any(out.iterdir()):
            if holds_artifact(out, manifest_digest(manifest)):
                return out
            raise UserError(f"{out} exists and is not empty; choose another output directory")
        if out.exists() and not out.is_dir():
            raise UserError(f"{out} exists and is not a directory; choose another output directory")
        files = self._fetch_verified(repo, version, oid, manifest, progress)
        with staged_dir(out) as tmp:
            for fname, src in files.items():
                shutil.copyfile(src, tmp / fname)
            (tmp / MANIFEST_FILE).write_bytes(manifest_bytes(manifest))
            art = open_artifact(tmp, verify=True)
            if manifest_digest(art.manifest) != manifest_digest(manifest):
                raise IntegrityError(f"{repo}@v{version}: pulled files do not reproduce the digest")
        return out

    # -------------------------------------------------------------------------------- push
    def push(
        self, path: str | Path, name: str, tags: Sequence[str] = (), *, progress: bool = False
    ) -> PushResult:
        """Commit the artifact at ``path`` as the next version of repo ``name`` (tag vN + ``tags``)."""
        validate_name(name)
        tags = tuple(dict.fromkeys(_user_tag(t) for t in tags))
        if self.offline:
            raise HubError("push needs the network, but HF_HUB_OFFLINE is set")
        art = open_artifact(path, verify=True)
        digest = manifest_digest(art.manifest)
        preview = preview_parquet(art)
        hh = _hub()
        self._call(f"{name}: create repo", self._api.create_repo, name, repo_type=REPO_TYPE, exist_ok=True)
        for attempt in range(PUSH_ATTEMPTS):
            versions, _, head = self._refs(name)
            known = self._history(name) if head else {}
            live = {v: d for v, d in known.items() if v in versions}
            same = sorted(v for v, d in live.items() if d == digest)
            if same:
                version, oid, created = same[0], versions[same[0]], False
                break
            version = max([*versions, *known, 0]) + 1
            ops = [
                hh.CommitOperationAdd(path_in_repo=f, path_or_fileobj=str(Path(art.path) / f))
                for f in sorted([*art.manifest["files"], MANIFEST_FILE])
            ]
            ops.append(hh.CommitOperationAdd(path_in_repo=PREVIEW_FILE, path_or_fileobj=preview))
            try:
                with _progress(progress):
                    info = self._call(
                        f"{name}: commit v{version}",
                        self._api.create_commit,
                        name,
                        ops,
                        commit_message=commit_title(version, digest),
                        commit_description="Pushed by dcregistry.",
                        repo_type=REPO_TYPE,
                        parent_commit=head,
                    )
            except _Conflict:
                time.sleep(random.uniform(0.05, 0.3) * (attempt + 1))
                continue
            new_oid = getattr(info, "oid", None)
            if not is_commit_id(new_oid):
                raise HubError(
                    f"{name}: {self.endpoint} answered {str(new_oid)[:60]!r} as the new commit, "
                    "which is not a 40-hex commit id; refusing its answer"
                )
            oid = new_oid
            created = True
            after, _, _ = self._refs(name)
            assigned = [v for v, o in after.items() if o == oid]
            if assigned:  # dcreg serve tags versions itself (it may skip removed numbers)
                version = assigned[0]
            else:
                self._call(
                    f"{name}: tag v{version}",
                    self._api.create_tag,
                    name,
                    tag=version_tag(version),
                    revision=oid,
                    repo_type=REPO_TYPE,
                )
            break
        else:
            raise HubError(f"{name}: {PUSH_ATTEMPTS} attempts lost the race against other pushes; try again")
        for t in tags:
            self._set_tag(name, t, oid)
        return PushResult(name, version, digest, created, tags)

    def _history(self, repo: str) -> dict[int, str]:
        """version -> digest for every dcreg commit on main (from commit titles)."""
        commits = self._call(
            f"{repo}: list commits", lambda: list(self._api.list_repo_commits(repo, repo_type=REPO_TYPE))
        )
        out: dict[int, str] = {}
        for c in commits:
            parsed = parse_commit_title(c.title)
            if parsed:
                out.setdefault(*parsed)
        return out

    # -------------------------------------------------------------------------------- tags
    def tags(self, name: str) -> dict[str, int]:
        """Current tags of ``name`` -> version (``latest`` included)."""
        versions, tags = self._cached_refs(name) if self.offline else self._refs(name)[:2]
        if not versions:
            raise NotFoundError(f"{name} has no dcreg version on {self.endpoint}")
        by_oid = {o: v for v, o in versions.items()}
        out = {t: by_oid[o] for t, o in tags.items() if o in by_oid}
        out[LATEST] = max(versions)
        return dict(sorted(out.items()))

    def _set_tag(self, repo: str, tag: str, oid: str) -> None:
        _, tags, _ = self._refs(repo)
        if tags.get(tag) == oid:
            return
        if tag in tags:
            self._call(f"{repo}: move tag {tag}", self._api.delete_tag, repo, tag=tag, repo_type=REPO_TYPE)
        self._call(
            f"{repo}: tag {tag}", self._api.create_tag, repo, tag=tag, revision=oid, repo_type=REPO_TYPE
        )

    def tag(self, ref: RefLike, tag: str) -> VersionInfo:
        """Point user tag ``tag`` at the version ``ref`` names."""
        _user_tag(tag)
        repo, version, oid, _, _, _ = self._find(ref)
        self._set_tag(repo, tag, oid)
        return self.resolve(Ref("hub", repo, "tag", version_tag(version)))

    def untag(self, name: str, tag: str) -> int:
        """Remove user tag ``tag``; return the version it pointed at."""
        _user_tag(tag)
        current = self.tags(name)
        if tag not in current:
            raise NotFoundError(f"{name} has no tag {tag!r}")
        self._call(f"{name}: delete tag {tag}", self._api.delete_tag, name, tag=tag, repo_type=REPO_TYPE)
        return current[tag]

    def tag_log(self, name: str) -> builtins.list[dict[str, Any]]:
        """The Hub keeps no tag history: the current tags as ``set`` entries."""
        out = []
        for tag, version in self.tags(name).items():
            if tag != LATEST:
                out.append({"ts": None, "action": "set", "tag": tag, "version": version, "digest": None})
        return out

    # ------------------------------------------------------------------------------- list
    def list(
        self, name: str | None = None, query: Sequence[str] | str = (), all_versions: bool = False
    ) -> list[VersionInfo]:
        """Artifacts on the endpoint (repos whose card carries the ``dcreg`` tag) matching ``query``."""
        from .query import parse_terms

        terms = parse_terms(query)
        if name is not None:
            repos = [name]
        else:
            card_tags = ["dcreg"] + [
                str(t.value)
                for t in terms
                if t.field in ("dataset", "method")
                and t.op == "="
                and isinstance(t.value, str)
                and not any(c in t.value for c in "*?[")
            ]
            found = self._call("list datasets", lambda: list(self._api.list_datasets(filter=card_tags)))
            repos = sorted(d.id for d in found if isinstance(d.id, str) and is_hub_repo(d.id))
        out = []
        for repo in repos:
            try:
                versions, tags, _ = self._refs(repo)
            except NotFoundError:
                continue
            chosen = sorted(versions) if all_versions else sorted(versions)[-1:]
            for v in reversed(chosen) if not all_versions else chosen:
                manifest = self._manifest_at(repo, versions[v])
                info = self._info(repo, v, versions[v], manifest, tags, versions)
                if all(t.matches(info) for t in terms):
                    out.append(info)
        return out

    # ----------------------------------------------------------------------------- verify
    def verify(self, ref: RefLike) -> VersionInfo:
        """Download (through the cache) and re-hash every file of the version, then validate it."""
        repo, version, oid, manifest, tags, versions = self._find(ref)
        open_artifact(self._snapshot(repo, version, oid, manifest), verify=True)
        return self._info(repo, version, oid, manifest, tags, versions)

    def verify_all(self) -> VerifyReport:
        """Verify every version of every dcreg repo on the endpoint."""
        report = VerifyReport()
        for info in self.list(all_versions=True):
            try:
                self.verify(info)
                report.checks.append(VersionCheck(info, None))
            except UserError as exc:
                report.checks.append(VersionCheck(info, exc))
        return report

    # ------------------------------------------------------------------------- annotations
    def annotations(self, ref: RefLike, kind: str | None = None) -> builtins.list[dict[str, Any]]:
        """The Hub store keeps no annotations: always empty."""
        return []


# ------------------------------------------------------------------------------------ helpers
def _tags_on(version: int, oid: str, tags: Mapping[str, str], versions: Mapping[int, str]) -> tuple[str, ...]:
    """The tags version ``version`` (commit ``oid``) carries: user tags on its commit, and
    ``latest`` on the highest version."""
    names = [t for t, o in tags.items() if o == oid]
    if version == max(versions):
        names.append(LATEST)
    return tuple(sorted(names))


class _HubVersion:
    """A version on the Hub as :func:`~.select.select_version` sees it; its digest is read
    (from its manifest, through the cache) only when a digest prefix asks for it."""

    def __init__(
        self,
        store: HubStore,
        repo: str,
        version: int,
        oid: str,
        tags: Mapping[str, str],
        versions: Mapping[int, str],
    ):
        self.version = version
        self.oid = oid
        self.tags = _tags_on(version, oid, tags, versions)
        self._store = store
        self._repo = repo
        self._digest: str | None = None

    @property
    def digest(self) -> str:
        if self._digest is None:
            self._digest = manifest_digest(self._store._manifest_at(self._repo, self.oid))
        return self._digest


class _Conflict(HubError):
    """The head moved (409/412): another push won the race."""


def _which_token(token: str | None, real_hub: bool) -> str:
    if token:
        return "the token was refused"
    return "no HF_TOKEN set and no saved login accepted" if real_hub else "no token given"


def _raise(exc: BaseException) -> None:
    raise exc


def _is_network_error(exc: BaseException) -> bool:
    """Transport errors of the HTTP stacks huggingface_hub may use (httpx, httpx2, requests)."""
    return any(
        c.__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "requests", "urllib3")
        for c in type(exc).__mro__
    )


def _is_user_tag(tag: str) -> bool:
    try:
        _user_tag(tag)
    except UserError:
        return False
    return True


def _user_tag(tag: str) -> str:
    validate_tag(tag)
    if tag == LATEST:
        raise UserError("'latest' is automatic (the highest version); it cannot be set or removed by hand")
    return tag


class _progress:
    """Show huggingface_hub's upload bars only when asked."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.was_disabled = False

    def __enter__(self) -> None:
        utils = _hub().utils
        self.was_disabled = utils.are_progress_bars_disabled()
        if not self.enabled:
            utils.disable_progress_bars()

    def __exit__(self, *exc: Any) -> None:
        if not self.enabled and not self.was_disabled:
            _hub().utils.enable_progress_bars()


def preview_parquet(art: Artifact) -> bytes:
    """The 8-bit parquet preview (``image`` PNG, ``label`` ClassLabel) that ``datasets`` reads."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    from ..formats.grid import artifact_unit_images, display_labels, to_uint8_hwc

    unit, _ = artifact_unit_images(art)
    labels, _ = display_labels(art)
    pngs = []
    for img in unit:
        buf = io.BytesIO()
        Image.fromarray(to_uint8_hwc(img)).save(buf, format="PNG", optimize=False)
        pngs.append({"bytes": buf.getvalue(), "path": None})
    features = {
        "image": {"_type": "Image"},
        "label": {"_type": "ClassLabel", "names": list(art.metadata["class_names"])},
    }
    schema = pa.schema(
        [
            pa.field("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
            pa.field("label", pa.int64()),
        ],
        metadata={"huggingface": json.dumps({"info": {"features": features}})},
    )
    table = pa.table({"image": pngs, "label": [int(v) for v in labels]}, schema=schema)
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()
