"""What a table costs: cells per budget and a time estimate on digits (2-core CPU).

The estimate is a model, not a measurement of each budget: condensation seconds per iteration
and evaluation seconds per epoch measured on this project's 2-core CPU (digits at 32x32, ConvNet;
the README's condensation table and a ``smoke`` run of every table, see README "Paper tables"),
scaled by iterations, epochs, seeds, batches per epoch, image area and a per-network factor. Treat it as the
order of magnitude; a results directory with done cells gives the measured wall times instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.sweep.spec import CondenseEntry, SweepSpec

__all__ = ["Cost", "estimate"]

#: Seconds per outer iteration at IPC 1 / 10 / 50 (digits 32x32, ConvNet, 2 cores; README's
#: condensation table; IPC 50 extrapolated from the per-IPC outer/inner loops).
S_PER_ITER = {
    "dc": {1: 7.7, 10: 108.0, 50: 540.0},
    "dsa": {1: 7.2, 10: 104.0, 50: 520.0},
    "dm": {1: 3.0, 10: 0.9, 50: 1.5},
    "mtt": {1: 12.0, 10: 15.0, 50: 30.0},
}
#: Seconds of a selection (embedding training, k-means, counting; README's table).
SELECTION_S = {"random": 3.0, "herding": 30.0, "kcenter": 40.0, "forgetting": 20.0}
#: Seconds per epoch of one evaluation run with one 256-image batch (ConvNet; smoke runs and the
#: README's "1000-epoch dsa evaluation ~5 min per run at IPC 10").
EVAL_S_PER_BATCH_EPOCH = 0.25
#: Relative cost of a network against ConvNet (rough; a 32x32 forward/backward on 2 cores).
ARCH_FACTOR = {
    "mlp": 0.3,
    "lenet": 0.3,
    "alexnet": 2.0,
    "vgg11": 4.0,
    "resnet18": 8.0,
    "resnet18-bn": 8.0,
    # measured: DC IPC 1 with convnet-np at 32x32, one thread, 38 s/iter (against ~7.7)
    "convnet-np": 5.0,
    # measured: one SGD step on 100 1-channel 32x32 images, one thread, niced under load:
    # ConvNet 1.0 s, ResNet18 5.4 s, ResNet152 46 s, ViT 8.3 s (at 8x8: 0.12 / 0.39 / 3.6 / 0.62 s)
    "resnet152": 45.0,
    "vit": 8.0,
}


def arch_factor(name: str) -> float:
    return ARCH_FACTOR.get(name, ARCH_FACTOR.get(name.split("-")[0], 1.0))


#: Seconds a fresh worker or set pays once (imports, data loading).
SETUP_S = 5.0
DEFAULT_ITERATIONS = {"dc": 1000, "dsa": 1000, "dm": 20000, "mtt": 5000}


@dataclass
class Cost:
    condense_cells: int = 0
    eval_cells: int = 0
    condense_s: float = 0.0
    eval_s: float = 0.0

    @property
    def total_s(self) -> float:
        return self.condense_s + self.eval_s


def _per_ipc(table: dict[int, float], ipc: int) -> float:
    keys = sorted(table)
    k = min(keys, key=lambda x: abs(math.log(x) - math.log(max(1, ipc))))
    return table[k]


def _area(e: CondenseEntry) -> float:
    """Cost relative to 32x32 (digits' native size is 8x8); fixed overheads keep it >= 0.15."""
    return max(0.15, ((e.image_size or 8) / 32) ** 2)


def condense_s(e: CondenseEntry) -> float:
    return SETUP_S + (_condense_s(e) - SETUP_S) * _area(e)


def _condense_s(e: CondenseEntry) -> float:
    if e.method == "ors":  # `candidates` short trainings of a network on a random set
        opts = dict(e.options)
        n, epochs = int(opts.get("candidates", 10)), int(opts.get("epochs", 50))
        return SETUP_S + n * eval_s(e.ipc * 10, epochs, e.model)
    if e.method in SELECTION_S:
        opts = dict(e.options)
        base = SELECTION_S[e.method]
        if e.method == "forgetting":
            base *= int(opts.get("epochs", 20)) / 20
        return SETUP_S + base
    its = e.iterations if e.iterations is not None else DEFAULT_ITERATIONS.get(e.method, 1000)
    spi = _per_ipc(S_PER_ITER.get(e.method, S_PER_ITER["dc"]), e.ipc)
    init_s = SELECTION_S.get(e.init, 0.0) if e.init else 0.0  # --init SELECTION: run in-process first
    if e.method == "mtt":  # the experts: num_experts x expert_train_epochs epochs of the full set
        opts = dict(e.options)
        spi_experts = int(opts.get("num_experts", 100)) * int(opts.get("expert_train_epochs", 50)) * 2.0
        return SETUP_S + init_s + spi_experts + its * spi
    return SETUP_S + init_s + its * spi * arch_factor(e.model)


def eval_s(n_images: int, epochs: int, arch: str) -> float:
    batches = max(1, math.ceil(n_images / 256))
    return 1.0 + (epochs + 1) * batches * EVAL_S_PER_BATCH_EPOCH * arch_factor(arch)


def estimate(specs: list[SweepSpec], num_classes: int = 10, done: set[tuple[str, ...]] | None = None) -> Cost:
    """Cells and seconds of a table's specs on one worker (see the module docstring). ``done``:
    the sets (``(recipe id,)``) and evaluation cells (``(recipe id, protocol id, seed)``) that
    exist already (another table's), costing nothing; those counted here are added to it."""
    cost = Cost()
    seen: set[tuple[str, ...]] = set() if done is None else done
    for spec in specs:
        for e in spec.condense:
            if (e.id,) not in seen:  # a recipe shared by two parts (or tables) is made once
                seen.add((e.id,))
                cost.condense_cells += 1
                cost.condense_s += condense_s(e)
            for pe in spec.protocols:
                p = pe.protocol()
                seeds = spec.seeds if spec.seeds is not None else p.seeds
                new = [s for s in seeds if (e.id, p.id, str(s)) not in seen]
                seen.update((e.id, p.id, str(s)) for s in new)
                cost.eval_cells += len(new)
                cost.eval_s += len(new) * eval_s(e.ipc * num_classes, p.epochs, p.arch) * _area(e)
    return cost


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


#: Wall seconds of ``harness table run NAME --budget smoke`` measured on 2026-12-03 on this
#: project's 2-core CPU (1-min load average about 1-2 from other jobs), a fresh process per
#: table, one worker, the tables run one after the other in this order into one results directory
#: and store (so later tables reused the sets earlier ones made: "reused").
SMOKE_MEASURED = {
    "dc-coreset": (16.3, ""),
    "dcbench-aug": (13.2, "all 6 sets reused from dc-coreset"),
    "dc-cross-arch": (91.0, ""),
    "dc-activation": (10.2, ""),
    "dc-pooling": (10.6, ""),
    "dc-normalization": (10.9, ""),
    "dc-depth": (13.3, ""),
    "dc-width": (10.5, ""),
    "dcbench-optim": (7.5, "sets and the SGD cells reused"),
    "dcbench-ipc": (5.0, "sets and cells reused"),
    "dc-distance": (7.6, ""),
    # run niced (nice -n 19) at a 1-min load average of about 5, after dcbench-aug's smoke run
    "dcbench-init": (22.5, "niced, load ~5; the 3 real-init sets reused from dcbench-aug, 6 made"),
    "dcbench-kcenter": (11.5, "niced, load ~5; the embedding set reused from dcbench-aug, the raw one made"),
    "dcbench-transfer": (79.3, "niced, load ~5; sets and ConvNet cells reused, 6 ResNet152 cells ~9 s each"),
    # niced at a 1-min load average of about 3, a fresh store holding one imported 10-image DD set
    "dc-vs-dd": (
        12.4,
        "niced, load ~3; 1 DC set made, 8 cells (one imported DD set); DD cells not estimated",
    ),
    "dc-nas": (19.2, "niced, load ~3; 3 sets made, 27 cells"),
}
