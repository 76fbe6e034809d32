"""``dc-pooling``: the DC paper's Table T7 (Cross-pooling of ConvNet variants, IPC 1)."""

from __future__ import annotations

from . import TABLES
from .base import ABLATION_QUICK, cross_table

TABLE = TABLES.register(
    "dc-pooling",
    cross_table(
        "dc-pooling",
        "Cross-pooling performance of DC sets, IPC 1 (test accuracy %; ConvNet variants)",
        "Zhao, Mopuri, Bilen: Dataset Condensation with Gradient Matching (ICLR 2021), Table T7",
        {"None": "convnet-np", "MaxPooling": "convnet-mp", "AvgPooling": "convnet-ap"},
        quick=ABLATION_QUICK,
    ),
)
