"""A local HTTP file server with Range support (and a switch that drops a connection midway),
small files in the real published formats, and a catalog pointing at them."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest


@dataclass
class FileServer:
    root: Path
    base_url: str = ""
    drop_once: set = field(default_factory=set)  # paths whose first GET dies halfway
    requests: list = field(default_factory=list)  # (path, Range header or None, status)
    etags: bool = True  # send a strong ETag and honour If-Range (off: no validator at all)


def _handler(state: FileServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def do_GET(self):
            rel = self.path.lstrip("/")
            target = state.root / rel
            rng = self.headers.get("Range")
            if ".." in rel or not target.is_file():
                state.requests.append((self.path, rng, 404))
                self.send_error(404)
                return
            data = target.read_bytes()
            etag = f'"{hashlib.sha256(data).hexdigest()[:16]}"'
            start, status = 0, 200
            if rng and self.headers.get("If-Range") not in (None, etag) and state.etags:
                rng = None  # the file changed since the client's copy: the whole file, 200
            if rng:
                start = int(rng.removeprefix("bytes=").split("-")[0])
                if start >= len(data):
                    state.requests.append((self.path, rng, 416))
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206
            body = data[start:]
            state.requests.append((self.path, rng, status))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            if state.etags:
                self.send_header("ETag", etag)
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            if self.path in state.drop_once:
                state.drop_once.discard(self.path)
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)  # the server dies mid-transfer
                return
            self.wfile.write(body)

    return Handler


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[FileServer]:
    root = tmp_path / "served"
    root.mkdir()
    state = FileServer(root)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cifar(n_per_class: int, seed: int):
    import torch

    g = torch.Generator().manual_seed(seed)
    images = torch.randn(10 * n_per_class, 3, 32, 32, generator=g)
    labels = torch.arange(10).repeat_interleave(n_per_class)
    return images, labels


def write_dc_pt(folder: Path, ipc: int = 2, experiments: int = 2) -> Path:
    """``res_DC_CIFAR10_ConvNet_{ipc}ipc.pt`` exactly as DC's main.py saves it."""
    import torch

    data = [list(_cifar(ipc, seed)) for seed in range(experiments)]
    accs = {"ConvNet": [np.float64(0.281), np.float64(0.285)]}
    path = folder / f"res_DC_CIFAR10_ConvNet_{ipc}ipc.pt"
    torch.save({"data": data, "accs_all_exps": accs}, path)
    return path


def write_mtt(folder: Path, ipc: int = 1) -> list[Path]:
    """MTT/DATM's images_best.pt, labels_best.pt, lr_best.pt."""
    import torch

    images, labels = _cifar(ipc, 7)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(images, folder / "images_best.pt")
    torch.save(labels, folder / "labels_best.pt")
    torch.save(torch.tensor(0.0123), folder / "lr_best.pt")
    return [folder / n for n in ("images_best.pt", "labels_best.pt", "lr_best.pt")]


def write_kip_npz(folder: Path, ipc: int = 1) -> Path:
    """KIP's .npz: NHWC float images, centered one-hot labels."""
    rng = np.random.default_rng(3)
    n = 10 * ipc
    labels = np.full((n, 10), -0.1, dtype=np.float32)
    labels[np.arange(n), np.repeat(np.arange(10), ipc)] = 0.9
    path = folder / f"ConvNet_ssize{n}_zca_nol_noaug_ckpt1000.npz"
    np.savez(path, images=rng.standard_normal((n, 32, 32, 3)).astype(np.float32), labels=labels)
    return path


def catalog_text(entries: list[dict]) -> str:
    """A catalog TOML with the given entries (dicts of top-level keys + source + files)."""
    lines = ["schema = 1", ""]
    for e in entries:
        lines.append("[[sets]]")
        for k, v in e.items():
            if k in ("source", "files"):
                continue
            lines.append(f"{k} = {v!r}" if not isinstance(v, bool) else f"{k} = {str(v).lower()}")
        lines.append("[sets.source]")
        for k, v in e["source"].items():
            lines.append(f"{k} = {v!r}")
        for f in e["files"]:
            lines.append("[[sets.files]]")
            for k, v in f.items():
                lines.append(f"{k} = {v!r}")
        lines.append("")
    return "\n".join(lines).replace("'", '"')
