"""``dc-vs-dd``: the DC paper's Table 3 (DC vs Dataset Distillation, test accuracy) and T14 (10
images per class condensed with LeNet, tested on several networks), where a DD set is imported.

The harness has no DD method: the DD column evaluates the DD sets the store holds for the dataset
(``dcreg import FILE --format npz --method dd --dataset D`` then ``dcreg push``; a store query on
method and dataset), beside DC sets the table condenses itself with LeNet at the same IPCs. Both
are trained on each network of T14 through the protocol's ``arch`` override. Without a DD set
for the dataset the table exits 1 saying how to import one (nothing planned or written).
"""

from __future__ import annotations

from typing import Any

from harness.sweep.plan import PlannedArtifact
from harness.sweep.spec import CondenseEntry, ProtocolEntry

from . import TABLES
from .base import Position, TableDef

#: label -> network the sets are evaluated with (T14's "various architectures"; LeNet first: the
#: network both DC's Table 3 sets and DD's MNIST sets were made with)
ARCHS = {"LeNet": "lenet", "AlexNet": "alexnet", "ConvNet": "convnet", "MLP": "mlp"}
IPCS = (1, 10)
LABELS = {model: label for label, model in ARCHS.items()}
ROWS = tuple(f"{k} / {label}" for k in IPCS for label in ARCHS)
DD_QUERY = "method=dd dataset={dataset}"

_PROTOCOLS = ", ".join(f'{{ name = "dc-noaug", arch = "{m}" }}' for m in ARCHS.values())
TEMPLATE = f"""
# DC sets condensed with LeNet (T14), evaluated on every network
[[sweep]]
name = "dc"
protocols = [{_PROTOCOLS}]

[[sweep.condense]]
method = "dc"
ipc = [{", ".join(map(str, IPCS))}]
model = "lenet"

# the imported DD sets of the dataset (the query's dataset is filled in per dataset)
[[sweep]]
name = "dd"
artifacts = [{{ query = "{DD_QUERY.format(dataset="digits")}" }}]
protocols = [{_PROTOCOLS}]
"""


def _arch(proto: ProtocolEntry) -> str:
    return LABELS[str(dict(proto.overrides).get("arch", "convnet"))]


def place(entry: CondenseEntry, proto: ProtocolEntry, part: str) -> list[Position]:
    return [(f"{entry.ipc} / {_arch(proto)}", "DC")]


def place_artifact(art: PlannedArtifact, proto: ProtocolEntry, part: str) -> list[Position]:
    """A DD set at one of the table's IPCs (others: not shown, see the findings)."""
    return [(f"{art.ipc} / {_arch(proto)}", "DD")] if art.ipc in IPCS else []


def _for_dataset(doc: dict[str, Any], dataset: str) -> None:
    doc["sweep"][1]["artifacts"] = [{"query": DD_QUERY.format(dataset=dataset)}]
    if dataset == "mnist":  # DC's MNIST sets: DC augmentation
        for sweep in doc["sweep"]:
            for p in sweep["protocols"]:
                p["name"] = "dc-mnist"


def import_hint(dataset: str, store: str | None = None) -> str:
    """How to put a DD set for ``dataset`` into the store (one line)."""
    at = f" --store {store}" if store else ""
    return (
        f"an imported DD set for {dataset} in the store (the harness has no DD method): "
        f"`dcreg import FILE.npz --format npz --method dd --dataset {dataset} -o DIR` "
        f"(images + labels arrays), then `dcreg push DIR -n NS/NAME{at}`"
    )


def dd_sets(dataset: str, store: str | None = None) -> list[Any]:
    """The DD versions the store holds for ``dataset``."""
    from dcregistry.store import get_store

    return list(get_store(store).list(query=DD_QUERY.format(dataset=dataset)))


def requires(dataset: str, store: str | None) -> str | None:
    return None if dd_sets(dataset, store) else import_hint(dataset, store)


def findings(res: Any) -> list[str]:
    """Which DD sets were found, and DC − DD where both columns hold a number."""
    out = []
    digests = {c.digest for c in res.cells.values() if c.column == "DD" and c.digest}
    ipcs = sorted({int(c.row.split(" / ")[0]) for c in res.cells.values() if c.column == "DD" and c.expected})
    lacking = [k for k in IPCS if k not in ipcs]
    if digests or lacking:
        out.append(
            f"DD sets in the store at IPC {', '.join(map(str, ipcs)) or 'none of ' + '/'.join(map(str, IPCS))}"
            + (f"; none at IPC {', '.join(map(str, lacking))} (its DD cells stay empty)" if lacking else "")
        )
    gaps = []
    for r in ROWS:
        dc, dd = res.cells.get((r, "DC")), res.cells.get((r, "DD"))
        if dc is not None and dd is not None and dc.mean is not None and dd.mean is not None:
            gaps.append(f"{r} {dc.mean - dd.mean:+.1f}")
    if gaps:
        out.append("DC − DD (points): " + ", ".join(gaps))
    return out


TABLE = TABLES.register(
    "dc-vs-dd",
    TableDef(
        name="dc-vs-dd",
        title="Comparison to Dataset Distillation (DD, Wang et al. 2018): test accuracy %",
        reference="Zhao, Mopuri, Bilen: Dataset Condensation with Gradient Matching (ICLR 2021), "
        "Table 3 (and T14: 10 images/class condensed with LeNet, tested on several networks)",
        template=TEMPLATE,
        rows=ROWS,
        columns=("DD", "DC"),
        row_header="IPC / evaluated with",
        place=place,
        place_artifact=place_artifact,
        requires=requires,
        paper_dataset="mnist",
        paper_setup="10 images per class, DC condensed with LeNet (1000 iterations); evaluation 300 "
        "epochs (MNIST: DC augmentation)",
        plot="bars",
        for_dataset=_for_dataset,
        findings=findings,
        # LeNet's second 5x5 convolution needs 16x16 (digits is 8x8)
        budget_overrides={"smoke": {"image_size": 16}},
        notes=(
            "the seeds give these tables' captions only, not their numbers: no published values",
            "DD: the DD sets imported into the store for the dataset (`method=dd`), evaluated as they "
            "are (their own image size and pixel space); sets at other IPCs are not shown, and several "
            "sets at one IPC share its cells (values over every set and seed)",
            "DC: condensed with LeNet by this table at the budget's IPCs (the paper's is 10); the rows "
            "`10 / LeNet` are Table 3's, the `10 / *` rows T14's; IPC 1 is ours",
        ),
    ),
)
