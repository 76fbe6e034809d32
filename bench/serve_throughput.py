"""Throughput of `dcreg serve`: cached `resolve` requests/s under concurrent clients, and the
time to pull a ~10 MB artifact through it, each against an in-process local-store baseline.

Server: a real `dcreg serve` subprocess on 127.0.0.1 (random port, temp store). Baselines, in
this process, on the same files: reading the file from the local store's snapshot (for
`resolve`) and `LocalStore.pull` (for the pull). Timings on a shared machine are noisy, so the
script prints ratios against baselines measured in the same run.

    python bench/serve_throughput.py                     # 8 clients x 200 requests, 10 MB pull
    python bench/serve_throughput.py --clients 32 --requests 100 --mb 50
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from dcregistry.artifact import build_artifact
from dcregistry.catalog import get_dataset_info
from dcregistry.store.hub import HubStore
from dcregistry.store.local import LocalStore

TOKEN = "bench-token"


def make_artifact(out: Path, mb: float) -> Path:
    """A cifar10-shaped float32 artifact of about ``mb`` megabytes."""
    info = get_dataset_info("cifar10")
    per_image = 3 * 32 * 32 * 4
    ipc = max(1, int(mb * 1e6 / per_image / 10))
    rng = np.random.default_rng(0)
    tensors = {
        "images": rng.standard_normal((10 * ipc, 3, 32, 32)).astype(np.float32),
        "labels": np.repeat(np.arange(10), ipc).astype(np.int64),
    }
    md = {
        "dataset": "cifar10",
        "image_shape": [3, 32, 32],
        "ipc": ipc,
        "method": "random",
        "method_config": {},
        "label_kind": "hard",
        "seed": 0,
        "license": "cc-by-4.0",
        "pixel_space": {"kind": "normalized", "mean": list(info.mean), "std": list(info.std)},
        "created_at": "2026-01-01T00:00:00Z",
    }
    return build_artifact(out, tensors, md).path


def start_server(home: Path, token_file: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from dcregistry.cli import main; main()",
            "serve",
            "--port",
            str(port),
            "--home",
            str(home),
            "--token-file",
            str(token_file),
            "--log-level",
            "warning",
        ],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/api/dcreg/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("dcreg serve did not start")


def hammer(url: str, clients: int, requests: int) -> float:
    """Requests/s of ``clients`` threads each GETting ``url`` ``requests`` times (keep-alive)."""
    errors: list[str] = []
    barrier = threading.Barrier(clients + 1)

    def worker() -> None:
        with httpx.Client(timeout=30) as c:
            barrier.wait()
            for _ in range(requests):
                r = c.get(url)
                if r.status_code != 200:
                    errors.append(str(r.status_code))

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    dt = time.perf_counter() - t0
    if errors:
        raise SystemExit(f"{len(errors)} requests failed, e.g. {errors[0]}")
    return clients * requests / dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=200, help="per client")
    ap.add_argument("--mb", type=float, default=10.0, help="artifact size for the pull")
    ap.add_argument("--pulls", type=int, default=3)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        (tmp / "token").write_text(TOKEN)
        art = make_artifact(tmp / "art", args.mb)
        size = sum(p.stat().st_size for p in art.iterdir())
        proc, url = start_server(tmp / "home", tmp / "token")
        try:
            HubStore(url, TOKEN, cache_dir=tmp / "push-cache").push(art, "bench/set")
            head = httpx.head(f"{url}/datasets/bench/set/resolve/v1/README.md")
            commit = head.headers["x-repo-commit"]
            resolve_url = f"{url}/datasets/bench/set/resolve/{commit}/README.md"

            # resolve: server vs reading the same file from the local store in-process
            local = LocalStore(tmp / "home")
            snap = local.open("bench/set@v1", verify=False).path / "README.md"
            n = args.clients * args.requests
            t0 = time.perf_counter()
            for _ in range(n):
                local.resolve("bench/set@v1")
                snap.read_bytes()
            base_rps = n / (time.perf_counter() - t0)
            hammer(resolve_url, min(args.clients, 4), 20)  # warm-up
            rps = hammer(resolve_url, args.clients, args.requests)

            # pull: through the server (fresh Hub cache each time) vs LocalStore.pull
            served, base = [], []
            for i in range(args.pulls):
                t0 = time.perf_counter()
                HubStore(url, cache_dir=tmp / f"cache{i}").pull("bench/set@v1", tmp / f"srv{i}")
                served.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                local.pull("bench/set@v1", tmp / f"loc{i}")
                base.append(time.perf_counter() - t0)
        finally:
            proc.terminate()
            proc.wait(timeout=10)

    print(
        f"cached resolve (README.md at a commit, {args.clients} concurrent clients, "
        f"{n} requests): {rps:,.0f} req/s; baseline local resolve+read in-process: "
        f"{base_rps:,.0f}/s; ratio {rps / base_rps:.2f}x"
    )
    s, b = min(served), min(base)
    print(
        f"pull of a {size / 1e6:.1f} MB artifact (best of {args.pulls}): through dcreg serve "
        f"{s:.3f}s ({size / 1e6 / s:.0f} MB/s, sha256-verified); LocalStore.pull {b:.3f}s; "
        f"ratio {s / b:.2f}x the local time"
    )
    print("(timings from a shared machine: compare the ratios, not the absolute numbers)")


if __name__ == "__main__":
    main()
