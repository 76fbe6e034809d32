"""``dc-cross-arch``: the DC paper's Table 2 (sets condensed with one network, trained on six)."""

from __future__ import annotations

from . import TABLES
from .base import cross_table

TABLE = TABLES.register(
    "dc-cross-arch",
    cross_table(
        "dc-cross-arch",
        "Cross-architecture generalization of DC sets, IPC 1 (test accuracy %)",
        "Zhao, Mopuri, Bilen: Dataset Condensation with Gradient Matching (ICLR 2021), Table 2",
        {
            "MLP": "mlp",
            "ConvNet": "convnet",
            "LeNet": "lenet",
            "AlexNet": "alexnet",
            "VGG": "vgg11",
            "ResNet": "resnet18",
        },
        row_header="condensed with \\ evaluated with",
        smoke_image_size=32,  # VGG11's five poolings need 32x32
        # at 32x32 on one thread ResNet18 costs ~50 s per DC iteration and ~80 s per 50-epoch
        # evaluation run: 10 iterations and 20 epochs keep the table near 20-30 min on 2 workers
        quick={"iterations": {"dc@1": 10}, "epochs": 20},
    ),
)
