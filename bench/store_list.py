"""Startup + query cost of ``dcreg list`` with a metadata filter over a store of many versions.

Builds (once; reused when ``--store`` already holds it) a local store with ``--versions``
versions spread over ``--names`` names: a few real artifacts are pushed, then the other versions
are added through the store's own blob and version-file API as manifests that reuse those blobs
with varied metadata (method, ipc, seed), which is all ``list`` reads. Then times, in this
process and against baselines measured here and now (so a loaded machine shifts all alike):

    python -c pass                               (interpreter start: the floor)
    dcreg list dataset=digits method=dc 'ipc<=2' (the console script, a whole process)
    LocalStore.list(...)                         (the same query in-process, warm)

    python bench/store_list.py                    # 2,000 versions in a temp dir
    python bench/store_list.py --store /tmp/s2k   # keep the store for reruns
    python bench/store_list.py --versions 10000   # a bigger store
Prints medians, the ratios, and whether the whole process is within the aim: at most 4x a bare
``python -c pass`` (so the figure does not depend on how fast the machine is).
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dcregistry.canonical import canonical_json
from dcregistry.store import LocalStore
from dcregistry.store.layout import VersionRecord

QUERY = ["dataset=digits", "method=dc", "ipc<=2"]
AIM_RATIO = 4.0
METHODS = ("random", "dc", "dsa", "dm", "mtt")


def build(root: Path, versions: int, names: int) -> LocalStore:
    """A store with ``versions`` versions over ``names`` names (reuses what is already there)."""
    import numpy as np

    from dcregistry.artifact import build_artifact

    store = LocalStore(root)
    have = len(store.layout.scan())
    if have >= versions:
        return store
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        md = {
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
        }
        art = build_artifact(
            Path(tmp) / "a",
            {"images": rng.random((10, 1, 8, 8), dtype=np.float32), "labels": np.arange(10, dtype=np.int64)},
            md,
        )
        base = store.push(art.path, "bench/n0000")
    manifest = store.manifest(base.ref)
    per_name = -(-versions // names)
    todo = versions - len(store.layout.scan())
    t0 = time.perf_counter()
    made = 0
    with store.layout.locked():
        for n in range(names):
            name = f"bench/n{n:04d}"
            start = store.layout.allocated(name) + 1
            for v in range(start, per_name + 1):
                if made >= todo:
                    break
                m = copy.deepcopy(manifest)
                i = n * per_name + v
                m["metadata"].update(method=METHODS[i % len(METHODS)], ipc=1 + i % 5, seed=i)
                hexd = store.blobs.put_bytes(canonical_json(m))
                store.layout.write_version(name, v, VersionRecord(f"sha256:{hexd}", "2026-01-01T00:00:00Z"))
                made += 1
    print(f"built {made} versions in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return store


def median_runs(cmds: list[list[str]], env: dict[str, str], repeat: int) -> list[float]:
    """Median wall time of each command, the commands run in turn (so a load change hits all)."""
    times: list[list[float]] = [[] for _ in cmds]
    for _ in range(repeat):
        for i, cmd in enumerate(cmds):
            t0 = time.perf_counter()
            subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
            times[i].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", type=Path, default=None, help="Store directory (kept).")
    ap.add_argument("--versions", type=int, default=2_000)
    ap.add_argument("--names", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    tmp = None
    if args.store is None:
        tmp = tempfile.TemporaryDirectory()
        args.store = Path(tmp.name) / "store"
    store = build(args.store, args.versions, args.names)
    env = {**os.environ, "DCREG_HOME": str(args.store), "PYTHONDONTWRITEBYTECODE": "0"}
    dcreg = Path(sys.executable).with_name("dcreg")
    cmd = (
        [str(dcreg)] if dcreg.exists() else [sys.executable, "-c", "from dcregistry.cli import main; main()"]
    )
    cmd += ["list", *QUERY]
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)  # builds the index once
    n_hits = len(store.list(query=QUERY))

    floor, whole = median_runs([[sys.executable, "-c", "pass"], cmd], env, args.repeat)
    inproc = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        store.list(query=QUERY)
        inproc.append(time.perf_counter() - t0)
    inner = statistics.median(inproc)
    print(
        f"store: {len(store.layout.scan())} versions, {args.names} names; query "
        f"{' '.join(QUERY)} -> {n_hits} rows"
    )
    print(f"python -c pass          {floor * 1000:7.1f} ms")
    print(
        f"dcreg list (process)    {whole * 1000:7.1f} ms   {whole / floor:5.2f}x python start, "
        f"{whole / inner:5.1f}x in-process"
    )
    print(f"LocalStore.list (warm)  {inner * 1000:7.1f} ms")
    print(
        f"aim: whole process <= {AIM_RATIO:g}x python start: {'yes' if whole <= AIM_RATIO * floor else 'no'} "
        f"(startup beyond the interpreter: {(whole - floor - inner) * 1000:.1f} ms)"
    )
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
