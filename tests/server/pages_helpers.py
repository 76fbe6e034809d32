"""Fixtures for the browse-page tests: a small store, and a real uvicorn server on 127.0.0.1
serving ``pages_router`` from a tiny FastAPI app (the full ``dcreg serve`` app includes the same
router)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from dcregistry.artifact import build_artifact
from dcregistry.catalog import get_dataset_info
from dcregistry.records import Baseline, EvalRecord
from dcregistry.store import LocalStore

HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned=2">'


def cifar_like(tmp: Path, name: str, *, ipc: int, seed: int, method: str, **extra) -> Path:
    """A CIFAR-10-shaped, normalized artifact with smooth per-class colours (visible in a grid)."""
    info = get_dataset_info("cifar10")
    rng = np.random.default_rng(seed)
    k = info.num_classes
    base = rng.uniform(0.1, 0.9, size=(k, 3, 1, 1)).astype(np.float32)
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float32) / 31.0
    images = []
    for c in range(k):
        for _ in range(ipc):
            unit = np.clip(
                base[c] * (0.6 + 0.4 * xx) + 0.2 * yy + 0.05 * rng.standard_normal((3, 32, 32)), 0, 1
            )
            images.append(unit)
    unit = np.stack(images).astype(np.float32)
    mean = np.asarray(info.mean, np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(info.std, np.float32).reshape(1, 3, 1, 1)
    md = {
        "dataset": "cifar10",
        "image_shape": [3, 32, 32],
        "ipc": ipc,
        "method": method,
        "method_config": {},
        "label_kind": "hard",
        "seed": seed,
        "license": "mit",
        "pixel_space": {"kind": "normalized", "mean": list(info.mean), "std": list(info.std)},
        "created_at": "2026-01-01T00:00:00Z",
        **extra,
    }
    out = tmp / name
    build_artifact(
        out, {"images": (unit - mean) / std, "labels": np.repeat(np.arange(k), ipc).astype(np.int64)}, md
    )
    return out


EVAL_RECORD = EvalRecord(
    artifact={"ref": "lab/cifar-dc@v2", "dataset": "cifar10", "method": "dc", "ipc": 2},
    protocol={
        "id": "dc-noaug@0123456789ab",
        "name": "dc-noaug",
        "content": {"arch": "convnet", "augmentation": "none", "epochs": 300},
    },
    seeds=[0, 1, 2],
    accuracies=[0.441, 0.452, 0.447],
    mean=0.4467,
    std=0.0045,
    baseline=Baseline(ipc=2, accuracies=[0.25, 0.27], mean=0.26, std=0.01, delta=0.1867),
    device="cpu:2threads",
).to_json()


@pytest.fixture
def page_store(tmp_path: Path) -> LocalStore:
    """Two names: lab/cifar-dc (v1, v2 tagged 'paper', an eval result; a hostile description)
    and lab/digits-random."""
    store = LocalStore(tmp_path / "home")
    src = tmp_path / "src"
    src.mkdir()
    store.push(cifar_like(src, "a", ipc=2, seed=1, method="dc"), "lab/cifar-dc")
    v2 = cifar_like(
        src,
        "b",
        ipc=2,
        seed=2,
        method="dc",
        title="DC on CIFAR-10 " + HOSTILE,
        description=f"Made for the page test. {HOSTILE} "
        "[click me](javascript:window.__pwned=3) "
        "[the paper](https://openreview.net/forum?id=mSAKhLYLSsl)",
        source={
            "file_name": "res_DC_CIFAR10_ConvNet_2ipc.pt",
            "sha256": "0" * 64,
            "url": "https://example.org/res.pt",
        },
    )
    store.push(v2, "lab/cifar-dc", tags=["paper"])
    store.annotate("lab/cifar-dc@v2", "eval", EVAL_RECORD)
    rng = np.random.default_rng(0)
    digits = build_artifact(
        src / "d",
        {
            "images": rng.uniform(0, 1, (10, 1, 8, 8)).astype(np.float32),
            "labels": np.arange(10, dtype=np.int64),
        },
        {
            "dataset": "digits",
            "image_shape": [1, 8, 8],
            "ipc": 1,
            "method": "random",
            "method_config": {},
            "pixel_space": {"kind": "unit"},
            "label_kind": "hard",
            "seed": 0,
            "license": "cc-by-4.0",
            "created_at": "2026-01-01T00:00:00Z",
        },
    )
    store.push(digits.path, "lab/digits-random")
    return store


class ServerHandle:
    def __init__(self, base_url: str, cache):
        self.base_url, self.cache = base_url, cache


@pytest.fixture
def pages_server(page_store: LocalStore) -> Iterator[ServerHandle]:
    """uvicorn serving a FastAPI app with only the pages router, on 127.0.0.1 and a free port."""
    import uvicorn
    from fastapi import FastAPI

    from dcregistry.server.pages import GridCache, pages_router

    cache = GridCache()
    app = FastAPI()
    app.include_router(pages_router(page_store, cache=cache))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield ServerHandle(f"http://127.0.0.1:{port}", cache)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def find_chromium() -> str | None:
    """A Chromium/Chrome executable: $DCREG_CHROMIUM, then the usual names on PATH."""
    env = os.environ.get("DCREG_CHROMIUM")
    if env:
        return env if Path(env).is_file() else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None
