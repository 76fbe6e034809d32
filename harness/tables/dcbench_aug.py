"""``dcbench-aug``: DC-Bench's Table 4 (method x IPC x evaluation augmentation)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from statistics import median
from typing import Any

from harness.sweep.spec import CondenseEntry, ProtocolEntry

from . import TABLES
from .base import Position, Published, TableDef, published_grid

TEMPLATE = """
[[sweep]]
name = "aug"
protocols = ["dcbench-none", "dcbench-imagenet", "dcbench-randaug", "dcbench-autoaug", "dcbench-dsa"]

[[sweep.condense]]
method = ["random", "kcenter", "dc", "dsa", "dm", "mtt"]
ipc = [1, 10, 50]
"""

METHODS = ("random", "kcenter", "dc", "dsa", "dm", "mtt")
IPCS = (1, 10, 50)
COLUMNS = ("none", "imagenet", "randaug", "autoaug", "dsa")
ROWS = tuple(f"{m} {k}" for m in METHODS for k in IPCS)


def place(entry: CondenseEntry, proto: ProtocolEntry, part: str) -> list[Position]:
    aug = proto.name.removeprefix("dcbench-")
    return [(f"{entry.method} {entry.ipc}", aug)]


#: The appendix's Table 4 (accuracy % ± std), per dataset, method and augmentation column, IPC 1
#: 10 50 in each string; `-` where the extracted table has no value (KIP: not a method here).
_TABLE4 = {
    "cifar10": {
        "random": [
            "15.06±0.60 25.67±0.36 44.59±0.32",
            "15.07±0.27 29.22±0.33 50.00±0.48",
            "14.58±0.54 26.59±0.58 47.36±0.52",
            "13.78±0.69 25.32±0.67 42.47±0.57",
            "15.4±0.28 31.00±0.48 50.55±0.32",
        ],
        "kcenter": [
            "23.34±0.90 36.43±0.63 48.71±0.33",
            "25.92±1.12 39.46±0.59 55.53±0.51",
            "21.99±0.53 38.18±1.52 53.09±0.41",
            "18.5±0.62 33.01±0.69 47.62±0.53",
            "25.16±0.45 41.49±0.73 56.00±0.29",
        ],
        "dc": [
            "28.08±0.80 44.43±0.85 53.29±0.92",
            "25.70±0.82 46.67±0.43 55.04±0.20",
            "27.39±0.81 47.65±0.36 54.82±0.31",
            "22.51±0.91 43.13±0.80 51.49±0.42",
            "29.34±0.37 50.99±0.62 56.81±0.44",
        ],
        "dsa": [
            "27.75±0.54 43.54±0.37 54.25±0.57",
            "25.81±0.66 47.84±0.41 59.11±0.57",
            "26.71±0.57 47.78±0.57 56.15±0.71",
            "24.75±0.98 41.75±0.81 51.98±0.51",
            "27.76±0.47 52.96±0.41 60.28±0.37",
        ],
        "dm": [
            "26.15±0.80 42.45±0.43 56.54±0.41",
            "24.54±0.67 45.67±0.55 60.42±0.42",
            "24.96±0.89 44.95±0.53 60.17±0.43",
            "21.06±2.03 44.55±0.97 57.56±0.42",
            "26.45±0.39 47.64±0.55 61.99±0.33",
        ],
        "mtt": [
            "39.30±1.14 53.49±0.74 62.24±0.52",
            "28.23±2.09 56.86±0.57 65.67±0.75",
            "31.57±1.41 57.87±0.93 66.38±0.44",
            "23.57±1.45 47.11±0.98 61.25±0.76",
            "44.19±1.18 63.66±0.38 70.28±0.61",
        ],
    },
    "cifar100": {
        "random": [
            "4.28±0.20 14.53±0.27 29.50±0.26",
            "4.67±0.15 17.1±0.36 34.24±0.23",
            "4.60±0.17 16.44±0.30 31.94±0.26",
            "4.49±0.13 14.93±0.24 30.31±0.31",
            "5.30±0.23 18.64±0.25 34.66±0.41",
        ],
        "kcenter": [
            "- - -",
            "9.25±0.19 23.56±0.19 37.73±0.34",
            "9.14±0.23 23.48±0.19 36.19±0.32",
            "8.60±0.32 20.67±0.23 33.79±0.37",
            "10.89±0.17 25.04±0.30 38.64±0.43",
        ],
        "dc": [
            "12.55±0.37 25.36±0.28 29.74±0.34",
            "11.46±0.28 25.51±0.36 24.72±0.34",
            "12.98±0.42 27.96±0.30 27.54±0.42",
            "12.93±0.24 25.87±0.53 25.87±0.18",
            "13.66±0.29 28.42±0.29 30.56±0.56",
        ],
        "dsa": [
            "- - -",
            "11.50±0.15 28.38±0.32 40.26±0.34",
            "12.61±0.33 29.78±0.29 40.81±0.27",
            "13.03±0.33 27.58±0.25 38.11±0.54",
            "13.73±0.45 32.23±0.35 43.13±0.33",
        ],
        "dm": [
            "- - -",
            "7.52±0.22 26.5±0.13 40.45±0.32",
            "8.75±0.30 28.15±0.32 40.69±0.35",
            "7.85±0.44 26.66±0.25 38.81±0.31",
            "11.20±0.27 29.23±0.26 42.32±0.37",
        ],
        "mtt": [
            "16.69±0.64 31.76±0.54 43.04±0.48",
            "11.55±0.33 30.46±0.37 41.55±0.26",
            "10.87±0.34 34.37±0.36 44.73±0.33",
            "10.65±0.35 29.53±0.41 38.84±0.26",
            "22.3±0.55 38.18±0.42 46.32±0.26",
        ],
    },
    "tinyimagenet": {
        "random": [
            "1.42±0.08 4.70±0.18 13.98±0.28",
            "1.45±0.05 6.15±0.11 17.39±0.21",
            "1.50±0.08 5.66±0.16 16.44±0.25",
            "1.37±0.08 5.27±0.19 15.00±0.32",
            "1.65±0.11 6.88±0.25 18.62±0.22",
        ],
        "kcenter": [
            "- - -",
            "2.68±0.18 10.17±0.20 20.47±0.23",
            "2.53±0.11 9.40±0.22 19.79±0.46",
            "2.34±0.15 8.63±0.18 17.75±0.18",
            "3.03±0.12 11.38±0.26 22.02±0.40",
        ],
        "dc": [
            "5.26±0.19 11.12±0.28 11.19±0.27",
            "4.02±0.13 9.95±0.24 9.26±0.37",
            "4.80±0.09 12.16±0.20 12.303±0.19",
            "4.18±0.21 9.86±0.22 9.33±0.13",
            "5.27±0.10 12.83±0.14 12.66±0.36",
        ],
        "dsa": [
            "5.48±0.14 12.43±0.29 21.41±0.25",
            "4.19±0.10 12.53±0.24 22.47±0.37",
            "5.23±0.32 14.46±0.23 22.98±0.35",
            "5.38±0.11 14.18±0.14 20.00±0.29",
            "5.67±0.14 16.34±0.21 25.31±0.22",
        ],
        "dm": [
            "3.73±0.22 12.06±0.43 20.93±0.32",
            "3.15±0.19 12.43±0.31 22.19±0.34",
            "3.65±0.21 13.04±0.18 22.03±0.22",
            "3.70±0.16 11.76±0.17 19.31±0.33",
            "3.82±0.21 13.51±0.31 22.76±0.28",
        ],
        "mtt": [
            "- - -",
            "5.13±0.30 16.89±0.15 25.33±0.31",
            "5.92±0.16 17.31±0.31 26.49±0.32",
            "5.44±0.23 14.97±0.38 23.30±0.18",
            "8.27±0.36 20.11±0.16 28.16±0.45",
        ],
    },
}


def _published() -> dict[str, dict[Position, Published]]:
    return published_grid(_TABLE4, COLUMNS, IPCS)


@dataclass(frozen=True)
class _Pub:  # a published value read like one of our cells
    mean: float | None


def findings(cells: Mapping[Position, Any], label: str) -> list[str]:
    """Does evaluation augmentation move results more than the gaps between methods? Per IPC:
    each method's spread over the augmentations (max - min, points) against the gaps between two
    methods under one augmentation, and the method pairs whose order an augmentation flips."""
    from itertools import combinations

    out = []
    for k in IPCS:
        grid = {
            (m, a): float(c.mean)
            for m in METHODS
            for a in COLUMNS
            if (c := cells.get((f"{m} {k}", a))) is not None and c.mean is not None
        }
        spread = {}
        for m in METHODS:
            vals = [v for (m2, _), v in grid.items() if m2 == m]
            if len(vals) > 1:
                spread[m] = max(vals) - min(vals)
        gaps, flips, pairs = [], 0, 0
        for m1, m2 in combinations(METHODS, 2):
            diffs = [grid[(m1, a)] - grid[(m2, a)] for a in COLUMNS if (m1, a) in grid and (m2, a) in grid]
            if not diffs:
                continue
            pairs += 1
            gaps += [abs(d) for d in diffs]
            flips += min(diffs) < 0 < max(diffs)
        if not spread or not gaps:
            continue
        a_med = median(spread.values())
        top = max(spread, key=spread.__getitem__)
        smaller = sum(g < a_med for g in gaps)
        out.append(
            f"{label}, IPC {k}: the evaluation augmentation moves a method by {a_med:.1f} points (median "
            f"over {len(spread)} methods; most: {top}, {spread[top]:.1f}); {smaller} of {len(gaps)} gaps "
            f"between two methods under one augmentation are smaller than that (median gap "
            f"{median(gaps):.1f}); the augmentation flips the order of {flips} of {pairs} method pairs"
        )
    return out


TABLE = TABLES.register(
    "dcbench-aug",
    TableDef(
        name="dcbench-aug",
        title="Evaluation augmentation x method x IPC (test accuracy %, ConvNet)",
        reference="Cui et al.: DC-BENCH (NeurIPS 2022 Datasets and Benchmarks), appendix Table 4",
        template=TEMPLATE,
        rows=ROWS,
        columns=COLUMNS,
        row_header="method IPC",
        place=place,
        published=_published(),
        source="DC-Bench appendix Table 4 (KIP rows left out: not a method of this harness; "
        "cells the extracted PDF lacks are not shown)",
        paper_dataset="cifar10",
        paper_setup="evaluation 300 epochs without augmentation, 1000 with; DC 1000 iterations, DM 20000",
        plot="bars",
        findings=lambda res: (
            findings(res.cells, res.dataset)
            + findings(
                {p: _Pub(v.mean) for p, v in res.table.published.get("cifar10", {}).items()},
                "cifar10 (paper)",
            )
        ),
    ),
)
