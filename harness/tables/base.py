"""A shipped table: a sweep-spec template (TOML) plus the paper's layout, published numbers and
budgets; :meth:`TableDef.specs` turns it into the :class:`~harness.sweep.spec.SweepSpec` s that
``harness table run`` plans and runs through the sweep API.

The template is TOML with one ``[[sweep]]`` table per group of sets evaluated under the same
protocols (each a sweep spec without ``store``; its ``[[sweep.condense]]`` tables are the spec's
``[[condense]]`` grids). A table places each (condensed set, protocol) pair of its specs at one or
more (row, column) positions of the paper's layout (:attr:`TableDef.place`).

Budgets (``smoke`` | ``quick`` | ``paper``) are overrides of the template: IPCs kept, seeds,
evaluation epochs, iterations per method (``dc`` or ``dc@10``) and method options. ``paper``
keeps the published values (the methods' default iterations, the protocols' own epochs and five
seeds).
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dcregistry.errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from harness.sweep.spec import CondenseEntry, ProtocolEntry, SweepSpec

if TYPE_CHECKING:
    from harness.sweep.plan import PlannedArtifact

__all__ = [
    "TableError",
    "TableNeedsError",
    "Budget",
    "BUDGETS",
    "BUDGET_NAMES",
    "Published",
    "TableDef",
    "Position",
    "TABLE_DATASETS",
    "CONDENSE_NAME",
    "balanced_max_ipc",
    "ABLATION_QUICK",
]


class TableError(UserError):
    """A table was asked for something it does not have (budget, dataset, results)."""


class TableNeedsError(UserError):
    """The table's cells need something the harness cannot make (exit 1, never faked)."""


#: The datasets ``--dataset`` takes (the catalog's; `digits` is the offline default).
TABLE_DATASETS = ("digits", "mnist", "fashionmnist", "svhn", "cifar10", "cifar100", "tinyimagenet")

#: Push name of every table's condensed sets: without the sweep name, so that a set with the same
#: recipe (dataset, method, IPC, seed, options, network, iterations, image size) is made once and
#: shared by every table and part that asks for it.
CONDENSE_NAME = "tables/{method}-{dataset}-ipc{ipc}-s{seed}-{id}"


@dataclass(frozen=True)
class Budget:
    """Overrides of a table's template (None: keep the template's / the published value)."""

    name: str
    description: str
    ipcs: tuple[int, ...] | None = None  # keep only these IPCs (None: all of the template's)
    seeds: tuple[int, ...] | None = None  # evaluation seeds (None: the protocols' own, 5)
    epochs: int | None = None  # evaluation epochs of every protocol (None: the protocol's own)
    iterations: Mapping[str, int] = field(default_factory=dict)  # "dc" / "dc@10" -> iterations
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # method -> options
    image_size: int | None = 32  # digits only: the size its 8x8 images are resized to

    def iterations_for(self, method: str, ipc: int) -> int | None:
        its = self.iterations
        return its.get(f"{method}@{ipc}", its.get(method))


_NO_COMPILE = {"compile": False}  # torch.compile costs more than a few iterations save

BUDGETS: dict[str, Budget] = {
    "smoke": Budget(
        "smoke",
        "does every cell run: IPC 1 only, 1 seed, 1+1 evaluation epochs, 1-2 iterations",
        ipcs=(1,),
        seeds=(0,),
        epochs=1,
        iterations={"dc": 1, "dsa": 1, "dm": 2, "mtt": 1},
        options={
            "dc": {**_NO_COMPILE, "batch_real": 8},
            "dsa": {**_NO_COMPILE, "batch_real": 8},
            "dm": {**_NO_COMPILE, "batch_real": 8},
            "mtt": {
                "num_experts": 1,
                "expert_train_epochs": 2,
                "max_start_epoch": 1,
                "expert_epochs": 1,
                "syn_steps": 2,
            },
            "forgetting": {"epochs": 1},
            "ors": {"candidates": 2, "epochs": 1},
            "kcenter": {"n_init": 1, "max_iter": 20},
        },
        image_size=None,  # digits at its native 8x8 (tables whose networks need more say so)
    ),
    "quick": Budget(
        "quick",
        "sized for ~30 min per table on digits with 2 cores: IPC 1 and 10, 3 seeds, 50+1 "
        "evaluation epochs, short condensation budgets (DC/DSA 50 | 2, DM 200 | 100, MTT 20 | 10 "
        "iterations at IPC 1 | 10; ORS 10 candidates x 20 passes), digits at 32x32",
        ipcs=(1, 10),
        seeds=(0, 1, 2),
        epochs=50,
        # measured on digits at 32x32, 2 cores: DC/DSA ~4 s/iteration at IPC 1 and ~110 s at IPC
        # 10, MTT ~8 and ~20 s (20 student steps), DM well under 1 s
        iterations={
            "dc@1": 50,
            "dsa@1": 50,
            "dm@1": 200,
            "mtt@1": 20,
            "dc@10": 2,
            "dsa@10": 2,
            "dm@10": 100,
            "mtt@10": 10,
        },
        options={
            "mtt": {"num_experts": 3, "expert_train_epochs": 6, "max_start_epoch": 4, "expert_epochs": 2},
            "ors": {"epochs": 20},  # 10 candidates x 20 passes
        },
    ),
    "paper": Budget(
        "paper",
        "the published budgets: the methods' default iterations, the protocols' own epochs and "
        "seeds (days of CPU; meant for a GPU)",
    ),
}
BUDGET_NAMES = tuple(BUDGETS)


@dataclass(frozen=True)
class Published:
    """A published number (accuracy %, std when the paper gives one) and where it comes from."""

    mean: float
    std: float | None = None


#: Where a (set, protocol) pair goes: (row, column) labels of the table.
Position = tuple[str, str]
#: ``place(entry, protocol entry, part name)`` -> the positions of that pair (none: not shown).
Placer = Callable[[CondenseEntry, ProtocolEntry, str], list[Position]]
#: ``place_artifact(set, protocol entry, part name)``: the same for a set a part's ``artifacts``
#: (references or store queries) resolved to, rather than one its ``[[sweep.condense]]`` made.
ArtifactPlacer = Callable[["PlannedArtifact", ProtocolEntry, str], list[Position]]


@dataclass(frozen=True)
class TableDef:
    """One shipped table (see the module docstring)."""

    name: str
    title: str
    reference: str  # paper and table
    template: str  # TOML: [[sweep]] tables
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    place: Placer
    row_header: str = ""
    #: dataset -> (row, column) -> published value; `source` says where the numbers come from
    published: Mapping[str, Mapping[Position, Published]] = field(default_factory=dict)
    source: str = ""
    paper_dataset: str = "mnist"  # the paper's dataset of this table (digits is compared to it)
    paper_setup: str = ""  # the paper's setting (epochs, IPC), for the "differs" note
    plot: str | None = None  # "ipc-lines" | "heatmap" | "bars" | "cost-scatter" (time vs accuracy)
    needs: str | None = None  # set when the harness cannot make the cells
    notes: tuple[str, ...] = ()
    #: rewrites of the parsed template for a dataset (e.g. MNIST's DC augmentation protocol)
    for_dataset: Callable[[dict[str, Any], str], None] | None = None
    whole_dataset: bool = False  # the template's `ipc = "whole"` cells: the class-balanced maximum
    cap_ipc: bool = False  # drop cells whose IPC exceeds the dataset's smallest class
    #: per-budget changes of this table (e.g. which IPCs `quick` keeps): budget -> Budget fields
    budget_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: what a position shows (a name of harness.tables.metrics.METRICS; None: accuracy everywhere)
    metric: Callable[[Position], str] | None = None
    #: sentences read off the results (``TableResults`` -> lines), rendered under "Findings"
    findings: Callable[[Any], list[str]] | None = None
    #: where a part's ``artifacts`` sets go (None: such sets are not shown)
    place_artifact: ArtifactPlacer | None = None
    #: what the cells need that the harness cannot make, checked now: ``(dataset, store)`` -> None
    #: (there) or what is missing and how to get it (``run``/``render`` exit 1 with it)
    requires: Callable[[str, str | None], str | None] | None = None
    #: a derived layout: the collected cells (``TableResults``, at the positions ``place`` gives)
    #: -> the displayed cells (rows x columns), e.g. a ranking correlation over architectures
    derive: Callable[[Any], Mapping[Position, Any]] | None = None

    def check_needs(self, dataset: str = "digits", store: str | None = None) -> None:
        """Raise TableNeedsError when the table cannot be made (statically, or not with ``store``)."""
        if self.needs:
            raise TableNeedsError(f"table {self.name} needs {self.needs}")
        missing = self.requires(dataset, store) if self.requires is not None else None
        if missing:
            raise TableNeedsError(f"table {self.name} needs {missing}")

    def metric_of(self, pos: Position) -> str:
        """The metric shown at ``pos``."""
        return "accuracy" if self.metric is None else self.metric(pos)

    def budget(self, budget: Budget) -> Budget:
        """``budget`` with this table's changes."""
        import dataclasses

        changes = self.budget_overrides.get(budget.name)
        if not changes:
            return budget
        said = "; ".join(_describe_change(k, v) for k, v in changes.items())
        return dataclasses.replace(budget, **changes, description=f"{budget.description}; this table: {said}")

    # ---------------------------------------------------------------- specs
    def parsed(self) -> dict[str, Any]:
        try:
            return tomllib.loads(self.template)
        except tomllib.TOMLDecodeError as exc:  # a bug in the shipped table
            raise RuntimeError(f"table {self.name}: template is not TOML ({exc})") from None

    def specs(
        self, budget: Budget, dataset: str = "digits", store: str | None = None, data_root: str | None = None
    ) -> list[SweepSpec]:
        """The table's sweep specs for a budget and dataset (validated)."""
        if self.needs:
            raise TableNeedsError(f"table {self.name} needs {self.needs}")
        if dataset not in TABLE_DATASETS:
            raise TableError(f"unknown dataset {dataset!r} for a table (known: {', '.join(TABLE_DATASETS)})")
        budget = self.budget(budget)
        doc = self.parsed()
        if self.for_dataset is not None:
            self.for_dataset(doc, dataset)
        out = []
        for i, sweep in enumerate(doc.get("sweep", [])):
            out.append(self._spec(sweep, i, budget, dataset, store, data_root))
        return out

    def _spec(
        self,
        sweep: dict[str, Any],
        i: int,
        budget: Budget,
        dataset: str,
        store: str | None,
        data_root: str | None,
    ) -> SweepSpec:
        s = copy.deepcopy(sweep)
        s["name"] = f"{self.name}-{s.get('name', i)}-{dataset}-{budget.name}"
        if budget.seeds is not None:
            s["seeds"] = list(budget.seeds)
        if budget.epochs is not None:
            s["protocols"] = [
                {**({"name": p} if isinstance(p, str) else p), "epochs": budget.epochs}
                for p in s["protocols"]
            ]
        if store is not None:
            s["store"] = store
        cond = []
        cap = balanced_max_ipc(dataset, data_root) if self.cap_ipc else None
        for table in s.pop("condense", []):
            for cell in _grid(table):
                ipc = cell["ipc"]
                if ipc == "whole":
                    cell["ipc"] = balanced_max_ipc(dataset, data_root)
                elif budget.ipcs is not None and ipc not in budget.ipcs:
                    continue
                elif cap is not None and ipc > cap:
                    continue
                cell["dataset"] = dataset
                if dataset == "digits" and "image_size" not in cell and budget.image_size:  # else 8x8
                    cell["image_size"] = budget.image_size
                cell.setdefault("name", CONDENSE_NAME)
                method = cell["method"]
                its = budget.iterations_for(method, cell["ipc"]) if ipc != "whole" else None
                if its is not None:
                    cell["iterations"] = its
                opts = {**budget.options.get(method, {}), **cell.get("options", {})}
                if opts:
                    cell["options"] = opts
                cond.append(cell)
        if cond:
            s["condense"] = cond
        try:
            return SweepSpec.from_json(s, f"table {self.name}")
        except UserError as exc:
            raise TableError(str(exc)) from None

    def published_for(self, dataset: str) -> tuple[str, Mapping[Position, Published]]:
        """(the dataset the published numbers are for, the numbers) to show beside ``dataset``."""
        if dataset in self.published:
            return dataset, self.published[dataset]
        if dataset == "digits" and self.paper_dataset in self.published:
            return self.paper_dataset, self.published[self.paper_dataset]
        return dataset, {}


def _describe_change(key: str, value: Any) -> str:
    """One budget field a table changes, in words (for the rendered "budget" note)."""
    if key == "image_size":
        return f"digits at {value}x{value}" if value else "digits at its native 8x8"
    if key == "epochs":
        return f"{value}+1 evaluation epochs"
    if key == "iterations":
        return ", ".join(f"{k.replace('@', ' at IPC ')}: {v} iterations" for k, v in value.items())
    return f"{key} {value}"


def _grid(table: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A condense table's cells (lists under method, ipc, seed and model make the grid)."""
    import itertools

    keys = ("method", "ipc", "seed", "model")
    axes = [v if isinstance(v := table.get(k, 0 if k == "seed" else "convnet"), list) else [v] for k in keys]
    base = {k: v for k, v in table.items() if k not in keys}
    return [{**copy.deepcopy(base), **dict(zip(keys, c, strict=True))} for c in itertools.product(*axes)]


def balanced_max_ipc(dataset: str, data_root: str | None = None) -> int:
    """The largest class-balanced IPC of ``dataset``'s training split (the smallest class): the
    "whole dataset" row, as close to the whole set as a class-balanced artifact gets."""
    from collections import Counter

    from harness.data import load_dataset

    labels = load_dataset(dataset, "train", data_root).labels.tolist()
    return min(Counter(labels).values())


def pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f}"


def parse_published(text: str) -> list[Published | None]:
    """``"15.06±0.60 25.67±0.36 -"`` -> Published values (``-``: not given)."""
    out: list[Published | None] = []
    for tok in text.split():
        if tok == "-":
            out.append(None)
            continue
        mean, _, std = tok.partition("±")
        out.append(Published(float(mean), float(std) if std else None))
    return out


#: ``quick`` for the ConvNet ablations (T6-T10): 16x16 (the smallest size depth 4 takes) and 30
#: DC iterations (~2 s each at IPC 1 on one thread), so the five tables' 20 sets fit in about 30
#: minutes together
ABLATION_QUICK: Mapping[str, Any] = {"image_size": 16, "iterations": {"dc@1": 30}}


def published_grid(
    table: Mapping[str, Mapping[str, Any]], columns: tuple[str, ...], ipcs: tuple[int, ...]
) -> dict[str, dict[Position, Published]]:
    """dataset -> method -> one ``"m±s m±s -"`` string per column (a value per IPC) as
    ``{dataset: {("<method> <ipc>", column): Published}}`` (``-``: not given)."""
    out: dict[str, dict[Position, Published]] = {}
    for ds, methods in table.items():
        d = out.setdefault(ds, {})
        for m, cols in methods.items():
            for col, text in zip(columns, cols, strict=True):
                for k, v in zip(ipcs, parse_published(text), strict=True):
                    if v is not None:
                        d[(f"{m} {k}", col)] = v
    return out


def cross_table(
    name: str,
    title: str,
    reference: str,
    variants: Mapping[str, str],
    *,
    method: str = "dc",
    ipc: int = 1,
    protocol: str = "dc-noaug",
    row_header: str = "condensed with",
    notes: tuple[str, ...] = (),
    smoke_image_size: int | None = None,
    quick: Mapping[str, Any] | None = None,
) -> TableDef:
    """A square "condensed with X, evaluated with Y" table (DC Tables 2, T6-T10): one set per
    network variant (``label -> model name``), each evaluated with every variant (the protocol's
    ``arch`` override). ``quick``: this table's changes of the ``quick`` budget (Budget fields)."""
    labels = {model: label for label, model in variants.items()}
    protos = ", ".join(f'{{ name = "{protocol}", arch = "{m}" }}' for m in variants.values())
    models = ", ".join(f'"{m}"' for m in variants.values())
    template = (
        f'[[sweep]]\nname = "cross"\nprotocols = [{protos}]\n\n'
        f'[[sweep.condense]]\nmethod = "{method}"\nipc = {ipc}\nmodel = [{models}]\n'
    )

    def place(entry: CondenseEntry, proto: ProtocolEntry, part: str) -> list[Position]:
        arch = dict(proto.overrides).get("arch", "convnet")
        return [(labels[entry.model], labels[arch])]

    def for_dataset(doc: dict[str, Any], dataset: str) -> None:
        if dataset == "mnist" and protocol == "dc-noaug":  # DC's MNIST sets: DC augmentation
            for p in doc["sweep"][0]["protocols"]:
                p["name"] = "dc-mnist"

    return TableDef(
        name=name,
        title=title,
        reference=reference,
        template=template,
        rows=tuple(variants),
        columns=tuple(variants),
        row_header=row_header,
        place=place,
        paper_dataset="mnist",
        paper_setup=f"{method.upper()} at IPC {ipc}, 1000 iterations; evaluation 300 epochs (MNIST: DC augmentation)",
        plot="heatmap",
        for_dataset=for_dataset,
        notes=("the seeds give these tables' captions only, not their numbers: no published values", *notes),
        budget_overrides={
            **({"smoke": {"image_size": smoke_image_size}} if smoke_image_size else {}),
            **({"quick": dict(quick)} if quick else {}),
        },
    )
