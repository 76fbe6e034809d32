"""Helpers for the import/export tests: run `dcreg` in-process with its real exit-code mapping,
and write small files in the formats published condensed sets circulate in."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dcregistry.catalog import get_dataset_info


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def dcreg(capsys: pytest.CaptureFixture):
    """``dcreg(*args)`` -> CliResult, through ``run_cli`` (exit 0 ok / 1 user error / 2 bug)."""
    from dcregistry.cli import (
        cli,
        io_cmds,  # noqa: F401  (registers import/export)
    )
    from dcregistry.cli.common import run_cli

    def run(*args: Any) -> CliResult:
        capsys.readouterr()
        code = run_cli(cli, "dcreg", [str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def assert_one_line_error(result: CliResult, *needles: str) -> None:
    """Exit 1 with exactly one line on stderr (no traceback) containing every needle."""
    assert result.code == 1, (result.code, result.out, result.err)
    lines = [ln for ln in result.err.splitlines() if ln.strip()]
    assert len(lines) == 1, result.err
    assert lines[0].startswith("dcreg: error: "), lines[0]
    assert "Traceback" not in result.err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def nothing_written(parent: Path, name: str) -> bool:
    """No output ``name`` (or ``name-eN``) and no hidden staging leftovers in ``parent``."""
    if not parent.exists():
        return True
    return not [
        p
        for p in parent.iterdir()
        if p.name == name
        or p.name.startswith(name + "-e")
        or ".dcreg" in p.name
        or p.name.startswith(f".{name}.")
    ]


def balanced_labels(k: int, ipc: int) -> np.ndarray:
    return np.repeat(np.arange(k), ipc).astype(np.int64)


def normalized_images(n: int, shape=(3, 32, 32), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, *shape)).astype(np.float32)


def write_dc_pt(
    path: Path, experiments: list[tuple[np.ndarray, np.ndarray]], accs: dict | None = None, label_dtype=None
) -> Path:
    """A DC/DSA/DM ``res_*.pt``: {'data': [[images, labels], ...], 'accs_all_exps': ...}, with
    the reported accuracies as numpy float64 scalars the way the DC code stores them."""
    import torch

    data = []
    for images, labels in experiments:
        lab = torch.from_numpy(np.asarray(labels))
        if label_dtype is not None:
            lab = lab.to(label_dtype)
        data.append([torch.from_numpy(images.copy()), lab])
    if accs is None:
        accs = {"ConvNet": [np.float64(0.3 + 0.01 * i) for i in range(len(experiments))]}
    torch.save({"data": data, "accs_all_exps": accs}, path)
    return path


def write_mtt_dir(
    folder: Path, images: np.ndarray, labels: np.ndarray | None, lr: float | None, tag: str = "best"
) -> Path:
    """MTT/DATM outputs: images_{tag}.pt (+ labels_{tag}.pt, lr_{tag}.pt as saved by MTT)."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    torch.save(torch.from_numpy(images.copy()), folder / f"images_{tag}.pt")
    if labels is not None:
        torch.save(torch.from_numpy(np.asarray(labels).copy()), folder / f"labels_{tag}.pt")
    if lr is not None:
        # MTT's syn_lr is a learnable scalar tensor; saved detached on CPU.
        torch.save(torch.tensor(lr, requires_grad=True).detach(), folder / f"lr_{tag}.pt")
    return folder


class Payload:
    """Unpickling this object would run ``touch MARKER`` (the attack the importer must stop)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def cifar_stats() -> tuple[list[float], list[float]]:
    info = get_dataset_info("cifar10")
    return list(info.mean), list(info.std)
