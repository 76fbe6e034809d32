"""The Hub-store clients against a hostile server on 127.0.0.1: commit ids and ETags shaped like
paths, control characters in tag names, a ranged download that never advances, a tampered
file. Every case ends in exit 1 with one line, and nothing outside the client's own cache is
written; a Hugging Face token never reaches a server that is not the Hub."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from .conftest import dcreg

GOOD = "c0ffee" + "0" * 34


class Hostile:
    """What the server answers; every request's path and Authorization header are recorded."""

    def __init__(self, root: Path):
        self.root = root
        self.tags: list[tuple[str, str]] = [("v1", GOOD)]
        self.head = GOOD
        self.headers: dict[str, str] = {}
        self.files: dict[str, bytes] = {}
        self.short: set[str] = set()  # files answered with fewer bytes than announced, forever
        self.seen: list[tuple[str, str | None]] = []


def _handler(state: Hostile):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def _send(
            self, status: int, body: bytes, headers: dict[str, str] | None = None, length: int | None = None
        ) -> None:
            self.send_response(status)
            for k, v in {**state.headers, **(headers or {})}.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body) if length is None else length))
            self.end_headers()
            self.wfile.write(body)

        def do_HEAD(self):
            self.do_GET()

        def do_GET(self):
            state.seen.append((self.path, self.headers.get("Authorization")))
            if self.path.endswith("/refs"):
                doc = {
                    "branches": [{"name": "main", "ref": "refs/heads/main", "targetCommit": state.head}],
                    "tags": [{"name": n, "ref": f"refs/tags/{n}", "targetCommit": c} for n, c in state.tags],
                    "converts": [],
                    "pullRequests": [],
                }
                self._send(200, json.dumps(doc).encode(), {"Content-Type": "application/json"})
                return
            if "/resolve/" in self.path:
                name = self.path.rsplit("/", 1)[1]
                data = state.files.get(name)
                if data is None:
                    self._send(404, b"{}", {"X-Error-Code": "EntryNotFound"})
                    return
                rng = self.headers.get("Range")
                if name in state.short:
                    if rng:  # a 206 that starts where asked and carries nothing
                        start = int(rng[6:].split("-")[0])
                        self._send(
                            206,
                            b"",
                            {"Content-Range": f"bytes {start}-{start}/{len(data)}", "ETag": '"same"'},
                            length=0,
                        )
                    else:
                        self._send(200, data[:10], {"ETag": '"same"'}, length=len(data))
                        self.close_connection = True
                    return
                self._send(200, data)
                return
            self._send(404, b"{}")

    return H


@pytest.fixture
def hostile(tmp_path, monkeypatch, make_artifact):
    state = Hostile(tmp_path)
    art = make_artifact(seed=77)
    for f in ("manifest.json", "README.md", "data.safetensors"):
        state.files[f] = (art.path / f).read_bytes()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DCREG_HOME", str(tmp_path / "dcreg-home"))
    monkeypatch.setenv("HF_TOKEN", "hf_canary_token_must_not_leave")
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    monkeypatch.delenv("DCREG_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    yield state
    httpd.shutdown()
    httpd.server_close()


def _files_outside_cache(root: Path) -> set[str]:
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if not str(p.relative_to(root)).startswith(("cache", "served", "make_artifact"))
    }


def _one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 1, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    for n in needles:
        assert n in lines[0], err


@pytest.mark.parametrize(
    "commit",
    ["{root}/pwned-by-commit", "../../../../pwned-by-commit", "refs/../../x", "C0FFEE" + "0" * 34, "abc"],
)
def test_a_commit_id_that_is_not_40_hex_is_refused(hostile, tmp_path, commit):
    bad = commit.format(root=tmp_path)
    hostile.tags = [("v1", bad)]
    before = _files_outside_cache(tmp_path)
    code, _, err = dcreg("show", "lab/x", "--store", hostile.url)
    _one_line_error(code, err, "not a 40-hex commit id")
    code, _, err = dcreg("pull", "lab/x", "-o", tmp_path / "out", "--store", hostile.url)
    _one_line_error(code, err, "not a 40-hex commit id")
    assert _files_outside_cache(tmp_path) == before
    assert not (tmp_path / "pwned-by-commit").exists()


def test_path_shaped_etags_and_commit_headers_never_become_paths(hostile, tmp_path):
    hostile.headers = {
        "ETag": f'"{tmp_path}/pwned-by-etag"',
        "X-Repo-Commit": "../../../../pwned",
        "X-Linked-Etag": '"../../pwned-linked"',
    }
    before = _files_outside_cache(tmp_path)
    code, out, err = dcreg("pull", "lab/x", "-o", tmp_path / "out", "--store", hostile.url)
    assert code == 0, err
    after = _files_outside_cache(tmp_path)
    assert after - before == {"out", "out/manifest.json", "out/README.md", "out/data.safetensors"}
    assert not list(tmp_path.rglob("pwned*"))
    cache_files = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert cache_files and all(".." not in str(p) for p in cache_files)


@pytest.mark.parametrize("tag", ["best\x00", "v1\n", "x\x1b[31m"])
def test_a_tag_name_with_control_characters_is_refused(hostile, tmp_path, tag):
    hostile.tags = [("v1", GOOD), (tag, GOOD)]
    code, _, err = dcreg("show", "lab/x", "--store", hostile.url)
    _one_line_error(code, err, "control characters")


def test_a_ranged_download_that_never_advances_is_given_up(hostile, tmp_path):
    hostile.short = {"data.safetensors"}
    code, _, err = dcreg("pull", "lab/x", "-o", tmp_path / "out", "--store", hostile.url)
    _one_line_error(code, err, "data.safetensors")
    assert not (tmp_path / "out").exists()
    gets = [p for p, _ in hostile.seen if p.endswith("/data.safetensors")]
    assert 1 < len(gets) <= 5, gets  # bounded attempts


def test_a_tampered_file_is_refused_and_not_kept(hostile, tmp_path):
    data = bytearray(hostile.files["data.safetensors"])
    data[-1] ^= 0xFF
    hostile.files["data.safetensors"] = bytes(data)
    code, _, err = dcreg("pull", "lab/x", "-o", tmp_path / "out", "--store", hostile.url)
    _one_line_error(code, err, "hashes to")
    assert not (tmp_path / "out").exists()
    assert all(p.read_bytes() != bytes(data) for p in (tmp_path / "cache").rglob("*") if p.is_file())


def test_the_hugging_face_token_never_reaches_another_server(hostile, tmp_path, monkeypatch):
    dcreg("pull", "lab/x", "-o", tmp_path / "out", "--store", hostile.url)
    assert hostile.seen, "the client made no request"
    assert all(auth is None for _, auth in hostile.seen), hostile.seen
    monkeypatch.setenv("DCREG_TOKEN", "lab-token")
    hostile.seen.clear()
    dcreg("show", "lab/x", "--store", hostile.url)
    assert {auth for _, auth in hostile.seen} == {"Bearer lab-token"}


def test_tokens_never_go_over_plain_http_except_to_loopback(monkeypatch):
    from dcregistry.store.hub import HubStore

    monkeypatch.setenv("DCREG_TOKEN", "lab-token")
    monkeypatch.setenv("HF_TOKEN", "hf-token")
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    remote = HubStore("http://registry.lab.example:8008")
    assert remote._token is None and remote.token_withheld and remote._auth_token is False
    assert HubStore("https://registry.lab.example")._token == "lab-token"
    assert HubStore("http://127.0.0.1:8008")._token == "lab-token"
    assert HubStore("https://huggingface.co")._token == "hf-token"
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.mirror.example")
    assert HubStore()._token == "hf-token"  # the endpoint the user set gets the HF token
    assert HubStore("https://other.example")._token == "lab-token"


def test_eval_record_on_a_hub_store_is_refused_before_any_training(hostile, monkeypatch, capsys):
    """The Hub keeps no annotations: `harness eval --record` says so before it trains a network."""
    pytest.importorskip("torch")
    import harness.engine.evaluate as evaluate_mod
    from tests.harness.cli_helpers import run_harness

    def no_training(*a, **k):
        raise AssertionError("trained before refusing")

    monkeypatch.setattr(evaluate_mod, "evaluate", no_training)
    code, _, err = run_harness(
        [
            "eval",
            "lab/x",
            "--store",
            hostile.url,
            "--record",
            "--protocol",
            "dc-noaug",
            "--device",
            "cpu",
            "-q",
        ],
        capsys,
    )
    _one_line_error(code, err, "--record", "annotate")
