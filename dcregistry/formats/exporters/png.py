"""``png``: a labelled image grid, one row per class."""

from __future__ import annotations

from pathlib import Path

from ...artifact import Artifact
from ..grid import save_grid_png
from . import EXPORTERS


def write_png(art: Artifact, out: Path, max_per_class: int = 10) -> list[str]:
    """A labelled image grid (one row per class), de-normalized for viewing."""
    return save_grid_png(art, out, max_per_class)


EXPORTERS.register("png", write_png)
