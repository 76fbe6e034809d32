"""``dc-normalization``: the DC paper's Table T8 (Cross-normalization of ConvNet variants, IPC 1)."""

from __future__ import annotations

from . import TABLES
from .base import ABLATION_QUICK, cross_table

TABLE = TABLES.register(
    "dc-normalization",
    cross_table(
        "dc-normalization",
        "Cross-normalization performance of DC sets, IPC 1 (test accuracy %; ConvNet variants)",
        "Zhao, Mopuri, Bilen: Dataset Condensation with Gradient Matching (ICLR 2021), Table T8",
        {
            "None": "convnet-nn",
            "BatchNorm": "convnet-bn",
            "LayerNorm": "convnet-ln",
            "InstanceNorm": "convnet-in",
            "GroupNorm": "convnet-gn",
        },
        quick=ABLATION_QUICK,
    ),
)
