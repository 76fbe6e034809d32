"""``dc-depth``: the DC paper's Table T9 (Cross-depth of ConvNet variants, IPC 1)."""

from __future__ import annotations

from . import TABLES
from .base import ABLATION_QUICK, cross_table

TABLE = TABLES.register(
    "dc-depth",
    cross_table(
        "dc-depth",
        "Cross-depth performance of DC sets, IPC 1 (test accuracy %; ConvNet variants)",
        "Zhao, Mopuri, Bilen: Dataset Condensation with Gradient Matching (ICLR 2021), Table T9",
        {"D1": "convnet-d1", "D2": "convnet-d2", "D3": "convnet-d3", "D4": "convnet-d4"},
        smoke_image_size=16,  # depth 4 needs 16x16
        quick=ABLATION_QUICK,
    ),
)
