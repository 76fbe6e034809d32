"""A real `dcreg serve` on 127.0.0.1 (random port, subprocess) and helpers to talk to it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from dcregistry.cli import cli, io_cmds, serve_cmd, store_cmds  # noqa: F401 (registers commands)
from dcregistry.cli.common import run_cli

TOKEN = "test-token-5f2c9a"


@dataclass
class Server:
    url: str
    home: Path
    token: str
    proc: subprocess.Popen

    def store(self):
        from dcregistry.store.local import LocalStore

        return LocalStore(self.home)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path, token_file: Path | None, log: Path, extra: list[str] = ()) -> Server:
    """`dcreg serve` in a subprocess (``extra``: more serve options); returns once
    /api/dcreg/health answers."""
    for _ in range(3):
        port = free_port()
        args = [
            sys.executable,
            "-c",
            "from dcregistry.cli import main; main()",
            "serve",
            "--port",
            str(port),
            "--home",
            str(home),
            "--log-level",
            "warning",
        ]
        if token_file is not None:
            args += ["--token-file", str(token_file)]
        args += list(extra)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        proc = subprocess.Popen(args, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"{url}/api/dcreg/health", timeout=1).status_code == 200:
                    return Server(url, home, TOKEN, proc)
            except httpx.HTTPError:
                time.sleep(0.1)
        proc.kill()
        proc.wait()
    raise RuntimeError(f"dcreg serve did not start: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("serve")
    token_file = root / "token"
    token_file.write_text(TOKEN + "\n")
    srv = start_server(root / "home", token_file, root / "server.log")
    try:
        yield srv
    finally:
        srv.proc.terminate()
        try:
            srv.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            srv.proc.kill()
            srv.proc.wait()
        assert TOKEN not in (root / "server.log").read_text(errors="replace")


@pytest.fixture
def client_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: Server) -> Path:
    """A client with its own DCREG_HOME and Hub cache, holding the server's token."""
    monkeypatch.setenv("DCREG_HOME", str(tmp_path / "client-home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("DCREG_TOKEN", server.token)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("DCREG_STORE", raising=False)
    return tmp_path


def dcreg(*args: object) -> tuple[int, str, str]:
    """Run ``dcreg ARGS`` in-process; (exit code, stdout, stderr)."""
    with CliRunner().isolation() as (out, err, _):
        code = run_cli(cli, "dcreg", [str(a) for a in args])
    return code, out.getvalue().decode(), err.getvalue().decode()


def store_state(home: Path) -> dict[str, bytes]:
    """Every file that makes up the served store's versions, tags and blobs (content included)."""
    out = {}
    for sub in ("repos", "blobs"):
        base = home / sub
        for p in sorted(base.rglob("*")) if base.is_dir() else []:
            if p.is_file():
                out[str(p.relative_to(home))] = p.read_bytes()
    return out
