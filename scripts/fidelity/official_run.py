"""Run the official DC/DSA (``main.py``) or DM (``main_DM.py``) code on digits, beside ours.

The official repository (VICO-UoE/DatasetCondensation, commit 53f63a67) is not part of this
project: pass the path of a checkout with ``--official``. Nothing of it is copied here; this
driver imports it and replaces only what cannot run offline or must match our run:

* ``utils.get_dataset`` returns digits' fixed train/test split (``harness.data``), normalized with
  the catalog's stats, at ``--image-size`` (8 = the native size);
* ``torchvision`` (whose compiled part cannot load beside the CPU torch here) is replaced by
  stubs for the three names the official modules import but the run does not use
  (``datasets``, ``transforms``, ``utils.save_image``);
* with ``--same-init`` the first draw of each class (the real-image init) returns the images our
  ``harness condense --init real --seed S`` starts from, so both runs start from the same set;
* numpy's global RNG is seeded with ``--seed`` (the official code draws its real batches from
  it); networks and DSA draws keep the official clock seeds;
* ``--iterations N`` runs N synthesis steps (the official loop runs ``--Iteration`` + 1); the
  official evaluations (which train networks on the set at iteration 0) are skipped unless
  ``--official-eval``: the sets are evaluated with ``harness eval`` instead;
* DSA/DM: the two breakages of the official ``DiffAugment`` under current PyTorch are stepped
  around without changing a value: a Siamese draw for a batch of one image (IPC 1) fails in its
  in-place parameter copy, so a one-image batch is augmented as two copies of itself and the
  first is kept (same seed, same first draw); and its crop can leave a 1-channel batch in a
  layout the official ConvNet's ``.view`` refuses, so results get standard strides;
* DC/DSA: each call of the official ``match_loss`` is recorded, so the loss of every iteration
  (mean per class and outer step, what the official code prints every 10th) is known.

Writes ``res_{METHOD}_digits_ConvNet_{IPC}ipc.pt`` (importable with ``dcreg import --format
dc-pt``) and ``run.json`` (the loss curve; the wall time of the synthesis, any official
evaluation subtracted) into ``--out``. Example::

    python scripts/fidelity/official_run.py --official /path/to/DatasetCondensation \\
        --method DC --ipc 1 --iterations 100 --image-size 8 --same-init --out /tmp/off-dc
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch


def _stub_torchvision() -> None:
    tv = types.ModuleType("torchvision")
    tv.datasets = types.ModuleType("torchvision.datasets")
    tv.transforms = types.ModuleType("torchvision.transforms")
    tv.utils = types.ModuleType("torchvision.utils")
    tv.utils.save_image = lambda *a, **k: None
    for name, mod in (
        ("torchvision", tv),
        ("torchvision.datasets", tv.datasets),
        ("torchvision.transforms", tv.transforms),
        ("torchvision.utils", tv.utils),
    ):
        sys.modules[name] = mod


class _Split(torch.utils.data.Dataset):
    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, [int(v) for v in y]

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def _digits(image_size: int | None):
    from dcregistry.catalog import get_dataset_info
    from harness.data import load_dataset, normalized_space, to_pixel_space

    info = get_dataset_info("digits")
    ps = normalized_space(info)
    tr = load_dataset("digits", "train", None, image_size=image_size)
    te = load_dataset("digits", "test", None, image_size=image_size)
    return info, ps, (to_pixel_space(tr.images, ps), tr.labels), (to_pixel_space(te.images, ps), te.labels)


def _our_init(labels: torch.Tensor, ipc: int, seed: int, k: int) -> list[list[int]]:
    """Per class, the training indices ``harness condense --init real`` starts from."""
    from harness.data import random_real_indices

    idx = random_real_indices(labels, ipc, seed, k)
    return [[int(i) for i in idx if int(labels[i]) == c] for c in range(k)]


class _InitNumpy:
    """``np`` for main(): the first ``k`` ``random.permutation`` calls put our init indices first."""

    def __init__(self, init: list[list[int]]):
        self._init = list(init)
        outer = self

        class _Random:
            def __getattr__(self, name):
                return getattr(np.random, name)

            def permutation(self, x):
                perm = np.random.permutation(x)
                if outer._init:
                    want = outer._init.pop(0)
                    rest = [v for v in perm.tolist() if v not in set(want)]
                    return np.asarray(want + rest)
                return perm

        self.random = _Random()

    def __getattr__(self, name):
        return getattr(np, name)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--official", required=True, type=Path, help="checkout of the official repository")
    ap.add_argument("--method", required=True, choices=["DC", "DSA", "DM"])
    ap.add_argument("--ipc", type=int, required=True)
    ap.add_argument("--iterations", type=int, required=True)
    ap.add_argument("--image-size", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--same-init", action="store_true")
    ap.add_argument("--dsa-strategy", default=None, help="default: the catalog's digits strategy")
    ap.add_argument("--official-eval", action="store_true", help="keep the official evaluations")
    ap.add_argument(
        "--our-nets",
        action="store_true",
        help="give the official loop the networks our run draws (iteration i: the weights "
        "harness.models makes from generator(seed, 'METHOD/iter{i}')), so DC at IPC 1, "
        "which has no other randomness, can be compared step by step",
    )
    ap.add_argument("--out", required=True, type=Path)
    a = ap.parse_args()
    if a.iterations < 1:
        ap.error("--iterations must be >= 1")

    _stub_torchvision()
    sys.path.insert(0, str(a.official))
    import utils  # the official utils.py

    size = None if a.image_size == 8 else a.image_size
    info, ps, (xtr, ytr), (xte, yte) = _digits(size)
    h = int(xtr.shape[-1])

    def get_dataset(dataset, data_path):
        test = _Split(xte, yte)
        loader = torch.utils.data.DataLoader(test, batch_size=256, shuffle=False, num_workers=0)
        return (
            int(xtr.shape[1]),
            (h, h),
            info.num_classes,
            list(info.class_names),
            list(ps["mean"]),
            list(ps["std"]),
            _Split(xtr, ytr),
            test,
            loader,
        )

    eval_seconds = [0.0]
    real_evaluate = utils.evaluate_synset

    def timed_evaluate(it_eval, net, *args, **kw):
        if not a.official_eval:
            return net, 0.0, 0.0
        t = time.perf_counter()
        try:
            return real_evaluate(it_eval, net, *args, **kw)
        finally:
            eval_seconds[0] += time.perf_counter() - t

    distances: list[float] = []
    real_match_loss = utils.match_loss

    def recorded_match_loss(gw_syn, gw_real, args):
        d = real_match_loss(gw_syn, gw_real, args)
        distances.append(float(d.detach()))
        return d

    real_diff_augment = utils.DiffAugment

    def diff_augment(x, strategy="", seed=-1, param=None):
        if x.shape[0] == 1 and seed != -1 and strategy not in ("", "None", "none"):
            out = real_diff_augment(torch.cat([x, x]), strategy, seed=seed, param=param)[:1]
        else:
            out = real_diff_augment(x, strategy, seed=seed, param=param)
        return out.clone(memory_format=torch.contiguous_format)

    starts: list[float] = []  # one fresh network per synthesis iteration: its start time
    real_get_network = utils.get_network

    def timed_get_network(*args, **kw):
        import linecache

        caller = sys._getframe(1)
        training = "net_eval" not in linecache.getline(caller.f_code.co_filename, caller.f_lineno)
        if training:
            starts.append(time.perf_counter())
        net = real_get_network(*args, **kw)
        if a.our_nets and training:
            from harness.engine.seeding import generator
            from harness.models import create_model

            ours = create_model(
                "convnet",
                int(xtr.shape[1]),
                info.num_classes,
                h,
                generator=generator(a.seed, f"{a.method.lower()}/iter{len(starts) - 1}"),
            )
            net.load_state_dict(ours.state_dict())
        return net

    utils.get_network = timed_get_network
    utils.get_dataset = get_dataset
    utils.evaluate_synset = timed_evaluate
    utils.match_loss = recorded_match_loss
    utils.DiffAugment = diff_augment
    module = __import__("main_DM" if a.method == "DM" else "main")
    if a.same_init:
        module.np = _InitNumpy(_our_init(ytr, a.ipc, a.seed, info.num_classes))
    np.random.seed(a.seed)

    a.out.mkdir(parents=True, exist_ok=True)
    strategy = a.dsa_strategy or info.dsa_strategy
    argv = [
        "official",
        "--dataset",
        "digits",
        "--ipc",
        str(a.ipc),
        "--Iteration",
        str(a.iterations - 1),
        "--init",
        "real",
        "--num_exp",
        "1",
        "--num_eval",
        "1",
        "--save_path",
        str(a.out),
        "--data_path",
        str(a.out / "data"),
    ]
    if a.method == "DM":
        argv += ["--dsa_strategy", strategy]
    else:
        argv += ["--method", a.method, "--dsa_strategy", strategy if a.method == "DSA" else "None"]
    sys.argv = argv
    buf = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(buf):
        module.main()
    t_end = time.perf_counter()
    wall = t_end - t0
    text = buf.getvalue()
    curve = [
        [int(m.group(1)), float(m.group(2))] for m in re.finditer(r"iter = (\d+), loss = ([-+0-9.eE]+)", text)
    ]
    if distances:  # DC/DSA: every iteration, from the recorded match_loss calls
        per_it = info.num_classes * utils.get_loops(a.ipc)[0]
        if len(distances) != per_it * a.iterations:
            raise SystemExit(f"recorded {len(distances)} match_loss calls, expected {per_it * a.iterations}")
        curve = [[i, sum(distances[i * per_it : (i + 1) * per_it]) / per_it] for i in range(a.iterations)]
    record = {
        "method": a.method,
        "ipc": a.ipc,
        "iterations": a.iterations,
        "image_size": h,
        "seed": a.seed,
        "same_init": a.same_init,
        "dsa_strategy": strategy if a.method != "DC" else None,
        "official_commit": "53f63a67",
        "loss_curve": curve,
        "our_nets": a.our_nets,
        "loss_curve_every": 1 if distances else 10,
        "wall_s": wall,
        "official_eval_s": eval_seconds[0],
        "synthesis_s": wall - eval_seconds[0],
        # from the second iteration's start to the end: steady state, as ours is reported
        # (the last N networks are the iterations'; an evaluation network comes before them)
        "s_per_iter_after_first": (
            (t_end - starts[-a.iterations + 1]) / (a.iterations - 1)
            if len(starts) >= a.iterations > 1 and not a.official_eval
            else None
        ),
        "torch_threads": torch.get_num_threads(),
    }
    (a.out / "run.json").write_text(json.dumps(record, indent=1))
    (a.out / "stdout.txt").write_text(text)
    print(
        json.dumps({k: record[k] for k in ("method", "ipc", "image_size", "synthesis_s")}),
        "loss",
        curve[:1],
        "->",
        curve[-1:],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
