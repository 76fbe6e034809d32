"""Sweep test helpers: a local store with two small digits artifacts, specs, reading results."""

from __future__ import annotations

import json
from pathlib import Path

#: Two protocols of two training epochs: a cell takes well under a second.
PROTOCOLS = '[{ name = "dc-noaug", epochs = 2 }, { name = "dsa", epochs = 2 }]'
NAMES = ("me/digits-s0", "me/digits-s1")


def make_store(root: Path) -> tuple[Path, list[str]]:
    """A local store at ``root/store`` holding two digits IPC 1 random sets; returns (store,
    digests)."""
    from dcregistry.store import LocalStore
    from harness.methods.random import random_subset_artifact

    store = LocalStore(root / "store")
    digests = []
    for seed, name in enumerate(NAMES):
        art = random_subset_artifact(root / f"set{seed}", "digits", 1, seed)
        digests.append(store.push(art.path, name).digest)
    return root / "store", digests


def write_spec(
    path: Path,
    store: Path,
    *,
    name: str = "t",
    artifacts: str | None = None,
    extra: str = "",
    protocols: str = PROTOCOLS,
    seeds: str = "[0, 1, 2]",
) -> Path:
    """A spec file over the two store artifacts (by default one by name, one by query)."""
    arts = artifacts or f'["{NAMES[0]}", "name={NAMES[1]}"]'
    path.write_text(
        f'name = "{name}"\nartifacts = {arts}\nprotocols = {protocols}\n'
        + (f"seeds = {seeds}\n" if seeds else "")
        + f'store = "{store}"\n{extra}'
    )
    return path


def cell_files(results: Path) -> list[Path]:
    """Every cell file under a results directory (temp files excluded)."""
    return sorted(p for p in results.glob("*/ipc*/*/*/seed*.json"))


def accuracies(results: Path) -> dict[str, float]:
    """cell file (relative path) -> its accuracy."""
    out = {}
    for p in cell_files(results):
        d = json.loads(p.read_text())
        out[str(p.relative_to(results))] = d["accuracies"][0] if d["status"] == "done" else None
    return out


def comparable(results: Path) -> dict[str, dict]:
    """Every cell file's content less what differs between runs (times, dates, host)."""
    out = {}
    for p in cell_files(results):
        d = json.loads(p.read_text())
        for k in ("wall_time_s", "created_at", "host", "sweep", "env"):
            d.pop(k, None)
        out[str(p.relative_to(results))] = d
    return out


def run_sweep_in_process(spec: Path, results: Path, *args: str) -> None:
    """``harness sweep SPEC --results RESULTS --workers 1 -q ARGS`` in this process; must succeed."""
    import torch

    from harness.cli import main

    old = torch.get_num_threads()
    try:
        main(["sweep", str(spec), "--results", str(results), "--workers", "1", "-q", *args])
    except SystemExit as exc:
        assert exc.code == 0, f"sweep exited {exc.code}"
    finally:
        torch.set_num_threads(old)
