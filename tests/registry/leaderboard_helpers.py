"""A results directory (cell files as ``harness sweep`` writes them, torch-free) and a local
store holding most of its artifacts, for the leaderboard tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dcregistry.artifact import build_artifact
from dcregistry.records import EvalRecord, RankBlock
from dcregistry.store import LocalStore

HOSTILE = '<script>window.__pwned=1</script>"\'><img src=x onerror="window.__pwned=2">\x07'
P_NOAUG = "dc-noaug@0123456789ab"
P_DSA = "dsa@ba9876543210"


def digits_set(out: Path, *, ipc: int, seed: int, method: str, **extra) -> Path:
    rng = np.random.default_rng(seed)
    md = {
        "dataset": "digits",
        "image_shape": [1, 8, 8],
        "ipc": ipc,
        "method": method,
        "method_config": {
            "wall_time_s": 12.5 + seed,
            "peak_memory_bytes": 50 << 20,
            "peak_memory_kind": "rss",
        },
        "pixel_space": {"kind": "unit"},
        "label_kind": "hard",
        "seed": seed,
        "license": "cc-by-4.0",
        "created_at": "2026-01-01T00:00:00Z",
        **extra,
    }
    build_artifact(
        out,
        {
            "images": rng.uniform(0, 1, (10 * ipc, 1, 8, 8)).astype(np.float32),
            "labels": np.repeat(np.arange(10), ipc).astype(np.int64),
        },
        md,
    )
    return out


def cell_json(
    *,
    digest: str,
    ref: str | None,
    method: str,
    ipc: int,
    pid: str,
    seed: int,
    acc: float,
    rank=None,
    device="cpu:1threads",
) -> dict:
    rec = EvalRecord(
        artifact={"ref": ref, "digest": digest, "dataset": "digits", "method": method, "ipc": ipc},
        protocol={
            "id": pid,
            "name": pid.split("@")[0],
            "hash": pid.split("@")[1],
            "content": {"arch": "convnet", "epochs": 2},
        },
        seeds=[seed],
        accuracies=[acc],
        mean=acc,
        std=0.0,
        device=device,
        harness_version="0.1.0",
        rank=rank,
        wall_time_s=1.0,
        created_at="2026-01-02T00:00:00Z",
    )
    return rec.to_json() | {
        "status": "done",
        "cell": {"artifact": digest, "protocol": pid, "seed": seed},
        "sweep": {"name": "t", "hash": "0" * 12},
        "env": {
            "python": "3.11",
            "harness": "0.1.0",
            "torch": None,
            "numpy": None,
            "cpu": "x",
            "gpu": None,
            "threads": 1,
        },
    }


def write_cell(results: Path, d: dict) -> Path:
    art = d["artifact"]
    path = (
        results
        / art["dataset"]
        / f"ipc{art['ipc']}"
        / art["digest"][7:]
        / d["cell"]["protocol"]
        / f"seed{d['cell']['seed']}.json"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(d, indent=2, sort_keys=True) + "\n")
    return path


def rank_block(set_acc: float) -> RankBlock:
    return RankBlock(
        lam=0.5, labels="hard", set_acc=[set_acc], random_acc=[0.3], set_hard_acc=[set_acc], full_acc=[0.95]
    )


#: (name, method, ipc, seed, {protocol: [accuracy per eval seed]}); the last set is not pushed.
SETS = [
    ("lab/digits-random-ipc1", "random", 1, 0, {P_NOAUG: [0.40, 0.44, 0.42], P_DSA: [0.50, 0.52, 0.54]}),
    ("lab/digits-herding-ipc1", "herding", 1, 1, {P_NOAUG: [0.55, 0.57, 0.56], P_DSA: [0.60, 0.61, 0.62]}),
    ("lab/digits-random-ipc5", "random", 5, 2, {P_NOAUG: [0.70, 0.72, 0.74]}),
    ("lab/digits-herding-ipc5", HOSTILE, 5, 3, {P_NOAUG: [0.80, 0.82, 0.81]}),
    ("lab/digits-gone", "kcenter", 5, 4, {P_NOAUG: [0.60, 0.62]}),
]


def make_results(
    root: Path, *, rank_for: str = "lab/digits-herding-ipc1"
) -> tuple[Path, Path, dict[str, str]]:
    """(results dir, store dir, name -> digest); ``rank_for``'s dc-noaug cells carry a rank block."""
    store = LocalStore(root / "store")
    results = root / "results"
    digests = {}
    for name, method, ipc, seed, protos in SETS:
        extra = {
            "title": f"Set {HOSTILE}",
            "description": f"A card with {HOSTILE} [x](javascript:window.__pwned=3)",
        }
        art = digits_set(
            root / "src" / name.replace("/", "_"),
            ipc=ipc,
            seed=seed,
            method=method if method.isalnum() else "herding",
            **extra,
        )
        if name == "lab/digits-gone":
            from dcregistry.artifact import open_artifact

            digest = open_artifact(art).digest
        else:
            digest = store.push(art, name).digest
        digests[name] = digest
        for pid, accs in protos.items():
            for s, acc in enumerate(accs):
                rank = rank_block(acc) if name == rank_for and pid == P_NOAUG else None
                write_cell(
                    results,
                    cell_json(
                        digest=digest,
                        ref=f"{name}@v1",
                        method=method,
                        ipc=ipc,
                        pid=pid,
                        seed=s,
                        acc=acc,
                        rank=rank,
                    ),
                )
    return results, root / "store", digests


#: the smallest PNG (1x1, grey): a table's plot in tests
TINY_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010800000000"
    "3a7e9b550000000a49444154789c636800000082008177cd72b60000000049454e44ae426082"
)


def table_json(
    name: str = "dc-demo", *, title: str = "Demo table", digest: str | None = None, **over
) -> dict:
    """A rendered paper table (``harness-table-results/1``) of 2 x 2 positions."""
    cell = {"n": 3, "expected": 3, "metric": "accuracy", "missing": [], "failed": []}
    doc = {
        "kind": "harness-table-results/1",
        "table": name,
        "title": title,
        "reference": "A paper, Table 1",
        "dataset": "digits",
        "budget": "quick",
        "rows": ["1", "10"],
        "columns": ["random", "dc"],
        "notes": ["digits is not mnist"],
        "findings": [],
        "missing": [],
        "cells": [
            {**cell, "row": "1", "column": "random", "mean": 70.0, "std": 1.0, "artifact": digest},
            {
                **cell,
                "row": "1",
                "column": "dc",
                "mean": 90.0,
                "std": 0.5,
                "published": {"mean": 91.7, "std": None},
                "delta": -1.7,
            },
            {**cell, "row": "10", "column": "random", "mean": 88.0, "std": 0.4},
            {
                **cell,
                "row": "10",
                "column": "dc",
                "mean": None,
                "std": None,
                "n": 0,
                "missing": ["set dc ipc 10 not condensed yet"],
            },
        ],
    }
    doc.update(over)
    return doc
