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
        # ResNet18 costs ~26 s per DC iteration at 32x32 on 2 cores: 20 iterations keep ~30 min
        quick={"iterations": {"dc@1": 20}},
    ),
)
