"""``dc-width``: the DC paper's Table T10 (Cross-width of ConvNet variants, IPC 1)."""

from __future__ import annotations

from . import TABLES
from .base import ABLATION_QUICK, cross_table

TABLE = TABLES.register(
    "dc-width",
    cross_table(
        "dc-width",
        "Cross-width performance of DC sets, IPC 1 (test accuracy %; ConvNet variants)",
        "Zhao, Mopuri, Bilen: Dataset Condensation with Gradient Matching (ICLR 2021), Table T10",
        {"W32": "convnet-w32", "W64": "convnet-w64", "W128": "convnet-w128", "W256": "convnet-w256"},
        quick=ABLATION_QUICK,
    ),
)
