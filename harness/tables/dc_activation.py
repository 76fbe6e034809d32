"""``dc-activation``: the DC paper's Table T6 (Cross-activation of ConvNet variants, IPC 1)."""

from __future__ import annotations

from . import TABLES
from .base import ABLATION_QUICK, cross_table

TABLE = TABLES.register(
    "dc-activation",
    cross_table(
        "dc-activation",
        "Cross-activation performance of DC sets, IPC 1 (test accuracy %; ConvNet variants)",
        "Zhao, Mopuri, Bilen: Dataset Condensation with Gradient Matching (ICLR 2021), Table T6",
        {
            "Sigmoid": "convnet-sigmoid",
            "ReLU": "convnet-relu",
            "LeakyReLU": "convnet-leakyrelu",
            "Swish": "convnet-swish",
        },
        quick=ABLATION_QUICK,
    ),
)
