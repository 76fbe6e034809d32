"""Shared fixtures: isolated stores and small valid artifacts built from random pixels."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dcregistry.artifact import Artifact, build_artifact

DIGITS_PIXEL_SPACE = {"kind": "normalized", "mean": [0.3052], "std": [0.3760]}


def artifact_tensors(
    ipc: int = 2, num_classes: int = 10, shape=(1, 8, 8), seed: int = 0, soft: bool = False
) -> dict[str, np.ndarray]:
    """Random images + class-balanced labels (grouped by class)."""
    rng = np.random.default_rng(seed)
    n = ipc * num_classes
    tensors = {"images": rng.standard_normal((n, *shape)).astype(np.float32)}
    labels = np.repeat(np.arange(num_classes), ipc).astype(np.int64)
    if soft:
        tensors["soft_labels"] = rng.standard_normal((n, num_classes)).astype(np.float32)
    else:
        tensors["labels"] = labels
    return tensors


def artifact_metadata(ipc: int = 2, seed: int = 0, **overrides: Any) -> dict:
    """Metadata for a digits-shaped artifact; ``overrides`` replace fields."""
    md = {
        "dataset": "digits",
        "image_shape": [1, 8, 8],
        "ipc": ipc,
        "method": "random",
        "method_config": {},
        "pixel_space": DIGITS_PIXEL_SPACE,
        "label_kind": "hard",
        "seed": seed,
        "license": "cc-by-4.0",
        "created_at": "2026-01-01T00:00:00Z",
    }
    md.update(overrides)
    return md


@pytest.fixture(autouse=True)
def harness_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Remembered strategy choices go to a per-test directory, never the user's cache."""
    path = tmp_path / "harness-cache"
    monkeypatch.setenv("HARNESS_CACHE", str(path))
    return path


@pytest.fixture(autouse=True)
def no_real_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hub stores built by a test never reach huggingface.co nor write the user's Hub cache."""
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-hub-cache"))
    for var in ("HF_TOKEN", "DCREG_TOKEN", "DCREG_STORE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def dcreg_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty local store root, also exported as $DCREG_HOME for CLI calls."""
    home = tmp_path / "dcreg-home"
    monkeypatch.setenv("DCREG_HOME", str(home))
    return home


@pytest.fixture
def make_artifact(tmp_path: Path) -> Callable[..., Artifact]:
    """Factory: ``make_artifact(ipc=2, seed=0, soft=False, **metadata_overrides)``."""
    counter = iter(range(10_000))

    def make(
        ipc: int = 2, seed: int = 0, soft: bool = False, out: Path | None = None, **overrides: Any
    ) -> Artifact:
        md = artifact_metadata(ipc=ipc, seed=seed, **overrides)
        if soft:
            md["label_kind"] = "soft"
        shape = tuple(md["image_shape"])
        tensors = artifact_tensors(
            ipc=ipc, shape=shape, seed=seed, soft=soft, num_classes=len(md.get("class_names", range(10)))
        )
        out = out or tmp_path / f"artifact-{next(counter)}"
        return build_artifact(out, tensors, md)

    return make


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray instance for the whole test run (2 CPUs, 2 logical GPUs), shut down at the
    end; tests that need Ray take this fixture (skipped where Ray is not installed)."""
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
