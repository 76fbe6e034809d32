"""``dcbench-kcenter``: DC-Bench's Table 9 (K-Center on raw image features vs ConvNet embeddings)."""

from __future__ import annotations

from harness.sweep.spec import CondenseEntry, ProtocolEntry

from . import TABLES
from .base import Position, Published, TableDef

# Evaluated as Table 4's "dsa" column (dcbench-dsa), where Table 9's embedding column comes from.
TEMPLATE = """
[[sweep]]
name = "kcenter"
protocols = ["dcbench-dsa"]

# embedding: DC-Bench's K-Center (a ConvNet trained one epoch embeds every image; `embed` left at
# its default, so these are the very sets dcbench-aug's K-Center row makes)
[[sweep.condense]]
method = "kcenter"
ipc = [1, 10, 50]

# raw input: k-means on the flattened pixels
[[sweep.condense]]
method = "kcenter"
ipc = [1, 10, 50]
options = { embed = "raw" }
"""

IPCS = ("1", "10", "50")
COLUMNS = ("raw input", "embedding")


def place(entry: CondenseEntry, proto: ProtocolEntry, part: str) -> list[Position]:
    raw = dict(entry.options).get("embed") == "raw"
    return [(str(entry.ipc), COLUMNS[0] if raw else COLUMNS[1])]


#: Table 9 (accuracy %, no std given): dataset -> IPC -> (raw input, embedding).
_TABLE9 = {
    "cifar10": {"1": (21.86, 25.16), "10": (32.21, 41.49), "50": (47.00, 56.00)},
    "cifar100": {"1": (6.74, 10.89), "10": (20.08, 25.04), "50": (35.15, 38.64)},
    "tinyimagenet": {"1": (1.98, 3.03), "10": (6.88, 11.38), "50": (17.85, 22.02)},
}
PUBLISHED: dict[str, dict[Position, Published]] = {
    ds: {(ipc, col): Published(v) for ipc, vals in rows.items() for col, v in zip(COLUMNS, vals, strict=True)}
    for ds, rows in _TABLE9.items()
}

TABLE = TABLES.register(
    "dcbench-kcenter",
    TableDef(
        name="dcbench-kcenter",
        title="K-Center on raw pixels vs ConvNet embeddings (test accuracy %, ConvNet, DSA)",
        reference="Cui et al.: DC-BENCH (NeurIPS 2022 Datasets and Benchmarks), appendix Table 9",
        template=TEMPLATE,
        rows=IPCS,
        columns=COLUMNS,
        row_header="IPC",
        place=place,
        published=PUBLISHED,
        source="DC-Bench appendix Table 9 (means only; its embedding column equals Table 4's "
        "K-Center DSA column)",
        paper_dataset="cifar10",
        paper_setup="DSA augmentation, 1000 epochs; k-means 300 iterations; the embedding ConvNet "
        "trained one epoch (3 layers for CIFAR, 4 for TinyImageNet)",
        plot="ipc-lines",
        notes=(
            "raw input: `kcenter` with `embed=raw` (k-means on the flattened normalized pixels); "
            "embedding: `embed=convnet`, the default (the same sets as dcbench-aug's K-Center row)",
            "the embedding ConvNet's depth follows the image size as DC-Bench's does (3 layers up to "
            "32 px, 4 up to 64 px: TinyImageNet's 4-layer net)",
        ),
    ),
)
