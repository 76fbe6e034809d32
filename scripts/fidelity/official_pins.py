"""Record the official DC/DSA/DM matching losses and pixel gradients on fixed inputs.

Writes ``tests/fixtures/official_matching_pins.json``, which
``tests/harness/test_methods_official_pins.py`` compares our implementation against. The inputs
(network initialisation, real and synthetic batches, DSA draw per case) are defined once in
``tests/harness/official_cases.py``; this driver evaluates them with the official code
(VICO-UoE/DatasetCondensation, commit 53f63a67; pass a checkout with ``--official``; nothing of
it is copied here):

* the network is the official ``networks.ConvNet`` (width 128, depth 3, relu, instancenorm,
  avgpooling) holding the same weights as our case network. At 28x28 with 3 channels the
  official constructor sizes its classifier for 32x32 (it maps 28 to 32 for every channel
  count), so that case cannot run as published; its classifier is rebuilt for the real 3x3
  feature map and the case says so;
* DC/DSA: per class the official ``utils.match_loss`` (``dis_metric='ours'``, and per layer
  ``utils.distance_wb``) between the gradients of ``nn.CrossEntropyLoss`` on the real batch and on
  the synthetic images, summed over classes;
* DSA: the official ``utils.DiffAugment`` (mode S) with its random draws replaced by the case's
  fixed values, the same for every image as in a Siamese draw (the draws' order is the official
  functions' own);
* DM: main_DM.py's ConvNet objective, ``sum((mean(embed(real)) - mean(embed(syn)))**2)`` per class,
  with the same Siamese DSA draw;
* for each, the total and the gradient with respect to the synthetic images (``grad_stats``).

Run from the repository root::

    python scripts/fidelity/official_pins.py --official /path/to/DatasetCondensation
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import types
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "official_matching_pins.json"
STRATEGY = "color_crop_cutout_flip_scale_rotate"


class _ScriptedTorch:
    """``torch`` for the official utils module: ``rand``/``randint`` return scripted values."""

    def __init__(self):
        self.script: list[float | int] = []
        self.pos = 0

    def __getattr__(self, name):
        return getattr(torch, name)

    def _next(self):
        v = self.script[self.pos]
        self.pos += 1
        return v

    def rand(self, *size, dtype=None, device=None, **_):
        if not self.script:
            return torch.rand(*size, dtype=dtype, device=device)
        return torch.full(tuple(size), float(self._next()), dtype=dtype or torch.float32, device=device)

    def randint(self, low, high=None, size=None, device=None, **_):
        if not self.script:
            return torch.randint(low, high, size, device=device)
        return torch.full(tuple(size), int(self._next()), dtype=torch.long, device=device)


def _script(family: str, values: dict) -> list[float | int]:
    """The official draws (family index, then each op's uniform or integer draws, in the order
    the official functions make them) that produce ``values``."""
    ratio_scale, ratio_rotate = 1.2, 15.0
    head = [STRATEGY.split("_").index(family)]
    if family == "color":  # brightness: u - 0.5; saturation: 2u; contrast: u + 0.5
        return head + [values["brightness"] + 0.5, values["saturation"] / 2.0, values["contrast"] - 0.5]
    if family == "crop":  # translation_x shifts rows (our ty), translation_y columns (our tx)
        return head + [values["ty"], values["tx"]]
    if family == "cutout":  # offset_x: row centre (our cy), offset_y: column centre (our cx)
        return head + [values["cy"], values["cx"]]
    if family == "flip":  # flipped where u < prob_flip (0.5)
        return head + [0.25 if values["flip"] else 0.75]
    if family == "scale":
        lo = 1.0 / ratio_scale
        return head + [(values["sx"] - lo) / (ratio_scale - lo), (values["sy"] - lo) / (ratio_scale - lo)]
    if family == "rotate":
        return head + [values["angle"] / (2 * ratio_rotate / 180 * math.pi) + 0.5]
    raise ValueError(family)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--official", required=True, type=Path)
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args()

    sys.path.insert(0, str(ROOT))
    from scripts.fidelity.official_run import _stub_torchvision
    from tests.harness.official_cases import (
        CASES,
        DSA_VALUES,
        NUM_CLASSES,
        REAL_PER_CLASS,
        case_batches,
        case_family,
        case_id,
        case_net,
        grad_stats,
    )

    _stub_torchvision()
    sys.path.insert(0, str(a.official))
    import networks
    import utils

    scripted = _ScriptedTorch()
    utils.torch = scripted
    param = utils.ParamDiffAug()
    args = types.SimpleNamespace(dis_metric="ours", device="cpu")
    crit = nn.CrossEntropyLoss()

    def augment(x, family):
        scripted.script, scripted.pos = _script(family, DSA_VALUES[family]), 0
        try:
            # seed=-1: the official per-image draws, here all the scripted value, which is what a
            # Siamese draw gives; its Siamese path (seed != -1) copies the first image's
            # parameters with an overlapping in-place write that current PyTorch refuses.
            # The official crop leaves 1-channel batches in a layout that breaks its own
            # ConvNet's ``.view`` under current PyTorch: same values, standard strides.
            out = utils.DiffAugment(x, STRATEGY, seed=-1, param=param)
            return out.clone(memory_format=torch.contiguous_format)
        finally:
            scripted.script = []

    cases = {}
    for size, ch, ipc in CASES:
        torch.set_grad_enabled(True)
        ours = case_net(size, ch)
        off = networks.ConvNet(
            ch, NUM_CLASSES, 128, 3, "relu", "instancenorm", "avgpooling", im_size=(size, size)
        )
        note = None
        with torch.no_grad():
            feat = off.embed(torch.zeros(1, ch, size, size)).shape[1]
        if feat != off.classifier.in_features:
            note = (
                f"the official ConvNet sizes its classifier for {off.classifier.in_features} features "
                f"but its layers give {feat} at {ch}x{size}x{size}; rebuilt for {feat}"
            )
            off.classifier = nn.Linear(feat, NUM_CLASSES)
        off.load_state_dict(ours.state_dict())
        real, syn0 = case_batches(size, ch, ipc)
        family = case_family(size, ch, ipc)
        params = list(off.parameters())
        entry = {"family": family, "official_padding": list(off.features[0].padding)}
        if note:
            entry["note"] = note
        for method in ("dc", "dsa", "dm"):
            syn = syn0.clone().requires_grad_(True)
            total = torch.zeros(())
            layers = torch.zeros(len(params), dtype=torch.float64)
            for c in range(NUM_CLASSES):
                xr, xs = real[c], syn[c * ipc : (c + 1) * ipc]
                if method != "dc":
                    xr, xs = augment(xr, family), augment(xs, family)
                if method == "dm":
                    er = off.embed(xr).detach()
                    es = off.embed(xs)
                    total = total + torch.sum((torch.mean(er, dim=0) - torch.mean(es, dim=0)) ** 2)
                    continue
                yr = torch.full((len(xr),), c, dtype=torch.long)
                ys = torch.full((len(xs),), c, dtype=torch.long)
                gw_real = [g.detach().clone() for g in torch.autograd.grad(crit(off(xr), yr), params)]
                gw_syn = torch.autograd.grad(crit(off(xs), ys), params, create_graph=True)
                total = total + utils.match_loss(gw_syn, gw_real, args)
                for i, (gr, gs) in enumerate(zip(gw_real, gw_syn, strict=True)):
                    layers[i] += float(utils.distance_wb(gr, gs.detach()))
            (g,) = torch.autograd.grad(total, syn)
            rec = {"loss": float(total), "grad_syn": grad_stats(g)}
            if method != "dm":
                rec["layer_distance"] = [float(v) for v in layers]
            entry[method] = rec
        cases[case_id(size, ch, ipc)] = entry
        print(case_id(size, ch, ipc), family, {m: round(entry[m]["loss"], 4) for m in ("dc", "dsa", "dm")})

    doc = {
        "what": "iteration-0 matching losses and synthetic-pixel gradients of the official DC/DSA/DM "
        "formulas on the fixed inputs of tests/harness/official_cases.py",
        "official": "VICO-UoE/DatasetCondensation@53f63a67 (networks.ConvNet, utils.match_loss, "
        "utils.distance_wb, utils.DiffAugment; main_DM.py's ConvNet objective)",
        "command": "python scripts/fidelity/official_pins.py --official /path/to/DatasetCondensation",
        "torch": torch.__version__,
        "real_per_class": REAL_PER_CLASS,
        "strategy": STRATEGY,
        "cases": cases,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(doc, indent=1) + "\n")
    print("wrote", a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
