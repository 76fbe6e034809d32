"""The DC-Bench tables `dcbench-init` (Figure 6), `dcbench-kcenter` (Table 9) and
`dcbench-transfer` (Table 5): their published numbers are the seeds', and their cells are the
ones other tables make wherever the recipe is the same (so a smoke run reuses them)."""

from __future__ import annotations

import pytest

from harness.tables import get_budget, get_table

SMOKE = get_budget("smoke")


def _cells(name: str, budget: str = "smoke"):
    return [
        (e, p, s) for s in get_table(name).specs(get_budget(budget)) for e in s.condense for p in s.protocols
    ]


def test_init_table_cells_are_dcbench_augs_sets_for_real_and_carry_their_init_otherwise():
    t = get_table("dcbench-init")
    assert t.published == {} and any("no published values" in n for n in t.notes)
    entries = [e for s in t.specs(SMOKE) for e in s.condense]
    assert sorted((e.method, e.init or "real") for e in entries) == sorted(
        (m, i) for m in ("dc", "dsa", "dm") for i in ("real", "kcenter", "noise")
    )
    aug = {e.id for s in get_table("dcbench-aug").specs(SMOKE) for e in s.condense}
    assert {e.id for e in entries if e.init is None} <= aug  # made once, shared
    assert not {e.id for e in entries if e.init is not None} & aug
    assert {p.name for _, p, _ in _cells("dcbench-init")} == {"dcbench-dsa"}
    positions = {pos for e, p, part in _cells("dcbench-init") for pos in t.place(e, p, part)}
    assert positions == {(f"{m} 1", c) for m in ("dc", "dsa", "dm") for c in t.columns}


def test_kcenter_table_published_values_and_its_embedding_sets_are_dcbench_augs():
    t = get_table("dcbench-kcenter")
    assert t.paper_dataset == "cifar10"
    assert [
        (t.published["cifar10"][(k, "raw input")].mean, t.published["cifar10"][(k, "embedding")].mean)
        for k in ("1", "10", "50")
    ] == [(21.86, 25.16), (32.21, 41.49), (47.00, 56.00)]
    assert [t.published["cifar100"][(k, "raw input")].mean for k in ("1", "10", "50")] == [6.74, 20.08, 35.15]
    assert [t.published["tinyimagenet"][(k, "embedding")].mean for k in ("1", "10", "50")] == [
        3.03,
        11.38,
        22.02,
    ]
    # the embedding column is Table 4's K-Center DSA column
    aug = get_table("dcbench-aug").published
    for ds in ("cifar10", "tinyimagenet"):
        for k in ("1", "10", "50"):
            assert t.published[ds][(k, "embedding")].mean == aug[ds][(f"kcenter {k}", "dsa")].mean
    entries = [e for s in t.specs(get_budget("quick")) for e in s.condense]
    raw = [e for e in entries if dict(e.options).get("embed") == "raw"]
    assert len(raw) == 2 and len(entries) == 4  # quick: IPC 1 and 10
    aug_ids = {e.id for s in get_table("dcbench-aug").specs(get_budget("quick")) for e in s.condense}
    assert {e.id for e in entries if e not in raw} <= aug_ids


def test_transfer_table_evaluates_dcbench_augs_sets_on_five_networks():
    t = get_table("dcbench-transfer")
    assert t.columns == ("ConvNet", "MLP", "ResNet18", "ResNet152", "ViT")
    cells = _cells("dcbench-transfer")
    archs = {p.protocol().arch for _, p, _ in cells}
    assert archs == {"convnet", "mlp", "resnet18", "resnet152", "vit"}
    assert {p.name for _, p, _ in cells} == {"dcbench-dsa"}
    # the ConvNet column is dcbench-aug's DSA column: the same sets, the same protocol id
    aug = {(e.id, p.protocol().id) for e, p, _ in _cells("dcbench-aug")}
    conv = {(e.id, p.protocol().id) for e, p, _ in cells if p.protocol().arch == "convnet"}
    assert conv and conv <= aug
    # smoke and quick keep digits at 8x8 (ResNet152 at 32x32 would make `quick` half a day)
    for b in ("smoke", "quick"):
        assert {e.image_size for e, _, _ in _cells("dcbench-transfer", b)} == {None}
    assert {e.image_size for e, _, _ in _cells("dcbench-transfer", "paper")} == {32}
    pub = t.published["cifar10"]
    assert pub[("random 1", "ConvNet")].mean == 15.40 and pub[("random 50", "ResNet152")].std == 2.31
    assert pub[("dm 50", "ConvNet")].mean == 61.99 and pub[("dm 50", "ViT")].mean == 45.22
    assert pub[("mtt 10", "ResNet18")].mean == 45.22 and pub[("mtt 50", "ViT")].mean == 47.72
    assert pub[("dc 1", "ViT")].std is None  # cut off in the extraction: mean only
    assert len(pub) == 90 and "cifar100" not in t.published
    assert ("mtt 50", "ConvNet") not in t.published["tinyimagenet"]
    # each ConvNet value is Table 4's DSA column (how the shifted cells were checked)
    aug_pub = get_table("dcbench-aug").published
    for ds, cells_ in t.published.items():
        for (row, col), v in cells_.items():
            if col == "ConvNet":
                assert v.mean == aug_pub[ds][(row, "dsa")].mean, (ds, row)


@pytest.mark.parametrize("arch", ["resnet152", "vit", "mlp", "resnet18"])
def test_every_transfer_network_takes_digits_native_8x8(arch):
    import torch

    from harness.models import create_model

    model = create_model(arch, 1, 10, (8, 8), generator=torch.Generator().manual_seed(0))
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
