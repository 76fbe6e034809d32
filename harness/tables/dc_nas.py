"""``dc-nas``: the DC paper's Table 4 (neural architecture search with proxy sets): each network of
a small ConvNet search space is trained on each proxy (a random set, a DC set, the whole
class-balanced training set) through the protocol's ``arch`` override, as ``cross_table`` does;
the shown cells are derived from those proxy x network cells (:func:`derive`):

- ``performance %``: the test accuracy, trained on the whole set, of the network the proxy ranks
  best (its mean accuracy over the seeds; ties: the first in the space's order);
- ``correlation``: Spearman's rank correlation across the networks between the proxy's mean
  accuracies and the whole set's (:func:`spearman`; ties get average ranks);
- ``time s``: the proxy's evaluation wall time summed over the networks and seeds (the cells'
  recorded wall times; the DC set's condensation is not in it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from harness.sweep.spec import CondenseEntry, ProtocolEntry

from . import TABLES
from .base import Position, TableDef

#: the search space: ConvNet depth x width (instance norm, ReLU, average pooling: ConvNet's own);
#: label -> model name. Depth 4 would need 16x16 images on digits (smoke runs at 8x8).
SPACE = {f"d{d} w{w}": f"convnet-d{d}-w{w}" for d in (1, 2, 3) for w in (32, 64, 128)}
LABELS = {model: label for label, model in SPACE.items()}
IPCS = (1, 10)  # the paper's proxies have 10 images per class (smoke: 1)
ROWS = ("random", "DC", "whole dataset")
WHOLE = "whole dataset"
MEASURES = {"performance %": "accuracy", "correlation": "spearman", "time s": "seconds"}
COLUMNS = tuple(MEASURES)

_PROTOCOLS = ", ".join(f'{{ name = "dc-noaug", arch = "{m}" }}' for m in SPACE.values())
TEMPLATE = f"""
# every network of the space trained on every proxy set
[[sweep]]
name = "proxies"
protocols = [{_PROTOCOLS}]

[[sweep.condense]]
method = ["random", "dc"]
ipc = [{", ".join(map(str, IPCS))}]

# the reference: the whole training set (class-balanced: the smallest class's count per class)
[[sweep.condense]]
method = "random"
ipc = "whole"
"""


def place(entry: CondenseEntry, proto: ProtocolEntry, part: str) -> list[Position]:
    """A proxy x network cell (the shown layout is :func:`derive`'s)."""
    row = WHOLE if entry.ipc not in IPCS else ("DC" if entry.method == "dc" else "random")
    return [(row, LABELS[str(dict(proto.overrides).get("arch", "convnet"))])]


def metric(pos: Position) -> str:
    return MEASURES.get(pos[1], "accuracy")  # the proxy x network cells: accuracy


def _ranks(xs: Sequence[float]) -> list[float]:
    """1-based ranks, ties given their average rank."""
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    ranks = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def _spearman_exact(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Pearson's correlation of the average ranks (None: a constant side)."""
    rx, ry = _ranks(xs), _ranks(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    sxx, syy = sum((a - mx) ** 2 for a in rx), sum((b - my) ** 2 for b in ry)
    return None if sxx == 0 or syy == 0 else sxy / math.sqrt(sxx * syy)


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman's rank correlation (ties: average ranks); None when it is undefined (fewer than
    two values, or one side constant). scipy.stats.spearmanr where scipy is installed."""
    if len(xs) != len(ys):
        raise ValueError(f"spearman: {len(xs)} against {len(ys)} values")
    if len(xs) < 2 or len(set(xs)) < 2 or len(set(ys)) < 2:
        return None
    try:
        from scipy.stats import spearmanr
    except ImportError:  # scikit-learn brings scipy; the exact fallback gives the same number
        return _spearman_exact(xs, ys)
    rho = float(spearmanr(xs, ys)[0])
    return None if math.isnan(rho) else rho


def _complete(cells: Mapping[str, Any]) -> bool:
    return len(cells) == len(SPACE) and all(c.values and len(c.values) == c.expected for c in cells.values())


def derive(res: Any) -> dict[Position, Any]:
    """The shown cells from the proxy x network cells (see the module docstring)."""
    from .render import TableCell

    src = res.cells
    whole = {a: src[(WHOLE, a)] for a in SPACE if (WHOLE, a) in src}
    whole_ok = _complete(whole)
    out: dict[Position, Any] = {}
    for proxy in ROWS:
        cells = {a: src[(proxy, a)] for a in SPACE if (proxy, a) in src}
        perf = TableCell(proxy, "performance %", metric="accuracy")
        corr = TableCell(proxy, "correlation", expected=1, metric="spearman")
        secs = TableCell(proxy, "time s", expected=1, metric="seconds")
        out.update({(proxy, c.column): c for c in (perf, corr, secs)})
        if not cells:  # not in this budget
            perf.expected = corr.expected = secs.expected = 0
            continue
        for a, c in cells.items():
            secs.missing += [f"{a}: {m}" for m in c.missing]
            secs.failed += [f"{a}: {m}" for m in c.failed]
        if not _complete(cells):
            perf.expected = 1
            for c in (perf, corr):
                c.missing.append("waits for the proxy's cells (see its time s)")
            continue
        if all(len(c.wall_times) == len(c.values) for c in cells.values()):
            secs.values = [sum(w for c in cells.values() for w in c.wall_times)]
        else:
            secs.missing.append("the cells recorded no wall time")
        means = {a: c.mean for a, c in cells.items()}
        best = max(SPACE, key=lambda a: means[a])  # max keeps the first of equals
        ref = whole.get(best)
        if ref is None:
            perf.expected = 1
            perf.missing.append(f"the whole dataset's {best} cell is not in this budget")
        else:
            perf.expected, perf.protocol, perf.digest = ref.expected, ref.protocol, ref.digest
            perf.values = list(ref.values)
            if len(ref.values) != ref.expected:
                perf.missing.append(f"waits for the whole dataset's {best} cell (the proxy's best)")
        if not whole_ok:
            corr.missing.append("waits for the whole dataset's cells")
            continue
        rho = spearman([means[a] for a in SPACE], [whole[a].mean for a in SPACE])
        if rho is None:
            corr.missing.append("undefined: the proxy's (or the whole set's) accuracies are all equal")
        else:
            corr.values = [rho]
    return out


def best_of(res: Any, proxy: str) -> str | None:
    """The network ``proxy`` ranks best in ``res``'s collected cells (None: not all there)."""
    cells = {a: res.source_cells.get((proxy, a)) for a in SPACE}
    if any(c is None or c.mean is None for c in cells.values()):
        return None
    return max(SPACE, key=lambda a: cells[a].mean)


def findings(res: Any) -> list[str]:
    picks = {p: best_of(res, p) for p in ROWS}
    if not any(picks.values()):
        return []
    return [
        "best-ranked network: "
        + "; ".join(f"{p}: {b}" for p, b in picks.items() if b)
        + f" (of the {len(SPACE)} in the space)"
    ]


TABLE = TABLES.register(
    "dc-nas",
    TableDef(
        name="dc-nas",
        title="Neural architecture search with proxy sets: performance, rank correlation, time",
        reference="Zhao, Mopuri, Bilen: Dataset Condensation with Gradient Matching (ICLR 2021), Table 4",
        template=TEMPLATE,
        rows=ROWS,
        columns=COLUMNS,
        row_header="proxy set",
        place=place,
        metric=metric,
        derive=derive,
        findings=findings,
        whole_dataset=True,
        paper_dataset="cifar10",
        paper_setup="720 ConvNets (depth, width, normalization, activation, pooling), proxies of 10 "
        "images per class trained 100/300 epochs, CIFAR-10",
        # the paper's proxies: IPC 10 (smoke keeps IPC 1; quick at 16x16 keeps it cheap)
        budget_overrides={"quick": {"ipcs": (10,), "image_size": 16}, "paper": {"ipcs": (10,)}},
        notes=(
            "the seeds give this table's caption only, not its numbers: no published values",
            f"search space: ConvNet depth 1-3 x width 32/64/128 ({len(SPACE)} networks: "
            + ", ".join(SPACE)
            + "), not the paper's 720; every one trained on every proxy under `dc-noaug`'s arch override",
            "performance %: the whole-set test accuracy of the network the proxy ranks best; "
            "correlation: Spearman's rank correlation of the proxy's accuracies with the whole set's "
            "across the networks; time s: the proxy's evaluation wall time over the networks and seeds "
            "(DC's condensation not included; memory: not recorded by the evaluation cells)",
            "random and DC proxies at the budget's IPC (10 as in the paper, smoke 1); whole dataset: a "
            "class-balanced random set of the smallest class's size per class (the reference ranking)",
        ),
    ),
)
