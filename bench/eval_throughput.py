"""Throughput of `harness eval`: R seeds the way the published code runs them vs the engine.

Baseline (same data, same protocol): DC's evaluate_synset loop — a DataLoader over a TensorDataset
(shuffle, batch 256), per-batch ``.item()`` and numpy accuracy, R seeds one after another. It runs
twice: in a child process with glibc's default allocator (the published code as it runs) and in
this process, which is set up as ``harness`` runs (allocator tuned, harness/engine/allocator.py),
so the two ratios are the whole gain and the code's alone. Engine: ``harness.engine.evaluate``
with ``--strategy`` (default ``auto``: it measures the candidates and picks the fastest;
measurement and compilation time are included in its time).

    python bench/eval_throughput.py                  # R=5, IPC 10, dc-noaug (300+1 epochs)
    python bench/eval_throughput.py --epochs 60      # shorter
Prints seconds, the speed-up ratio and, on CUDA, images/s and achieved FLOP/s vs the GPU's peak.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from harness.engine.allocator import tune_allocator
from harness.engine.evaluate import evaluate, prepare, resolve_device
from harness.methods.random import random_subset_artifact
from harness.models import create_model
from harness.protocols import load_protocol

# Dense FP32 (non-tensor-core) peaks, TFLOP/s, from the vendors' data sheets.
FP32_PEAK_TFLOPS = {"H100": 67.0, "H200": 67.0, "A100": 19.5, "L4": 30.3, "A10": 31.2}


def published_style(protocol, train, test, seeds, device) -> list[float]:
    """DC's evaluate_synset, faithfully: DataLoader, per-batch .item(), optimizer re-creation."""
    accs = []
    for seed in seeds:
        torch.manual_seed(seed)  # the published code seeds global state
        _, c, h, w = train.images.shape
        net = create_model(protocol.arch, c, train.num_classes, (h, w)).to(device)
        lr = protocol.lr
        opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=0.0005)
        loader = DataLoader(
            TensorDataset(train.images.cpu(), train.targets.cpu()),
            batch_size=protocol.batch_size,
            shuffle=True,
            num_workers=0,
        )
        for ep in range(protocol.epochs + 1):
            net.train()
            loss_avg = acc_avg = n = 0
            for img, lab in loader:
                img, lab = img.float().to(device), lab.long().to(device)
                out = net(img)
                loss = F.cross_entropy(out, lab)
                loss_avg += loss.item() * lab.shape[0]
                acc_avg += np.sum(np.argmax(out.cpu().data.numpy(), axis=-1) == lab.cpu().data.numpy())
                n += lab.shape[0]
                opt.zero_grad()
                loss.backward()
                opt.step()
            if ep == protocol.decay_epoch:
                lr *= 0.1
                opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=0.0005)
        net.eval()
        correct = 0
        with torch.no_grad():
            for s in range(0, len(test.labels), 256):
                out = net(test.images[s : s + 256])
                correct += int((out.argmax(-1) == test.labels[s : s + 256]).sum())
        accs.append(correct / len(test.labels))
    return accs


def _baseline_child(conn, art_path: str, protocol_name: str, epochs, runs, device: str, threads: int) -> None:
    """Child process (fresh interpreter: glibc's default allocator): the published-style loop."""
    from dcregistry.artifact import open_artifact

    torch.set_num_threads(threads)
    protocol = load_protocol(protocol_name).with_overrides(epochs=epochs, runs=runs)
    prep = prepare(open_artifact(art_path), torch.device(device))
    t0 = time.perf_counter()
    accs = published_style(protocol, prep.train, prep.test, protocol.seeds, torch.device(device))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    conn.send((time.perf_counter() - t0, accs))
    conn.close()


def baseline_in_child(art_path: Path, args, device: torch.device) -> tuple[float, list[float]]:
    """(seconds, accuracies) of :func:`published_style` run in a spawned child process."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(
        target=_baseline_child,
        args=(
            child,
            str(art_path),
            args.protocol,
            args.epochs,
            args.runs,
            str(device),
            torch.get_num_threads(),
        ),
    )
    proc.start()
    out = parent.recv()
    proc.join()
    return out


def train_flops_per_image(protocol, train) -> float:
    """Forward+backward FLOPs of one training image (counted by torch's FlopCounterMode)."""
    from torch.utils.flop_counter import FlopCounterMode

    _, c, h, w = train.images.shape
    net = create_model(protocol.arch, c, train.num_classes, (h, w)).to(train.images.device)
    x = train.images[:8]
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(net(x), train.targets[:8]).backward()
    return counter.get_total_flops() / len(x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--protocol", default="dc-noaug")
    ap.add_argument("--ipc", type=int, default=10)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=None, help="default: the protocol's")
    ap.add_argument("--image-size", type=int, default=32, help="digits view (8 = native)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--strategy", default="auto")
    ap.add_argument(
        "--no-system-baseline",
        action="store_true",
        help="skip the baseline in a child process with the default allocator",
    )
    args = ap.parse_args()

    tuned = tune_allocator()
    device = resolve_device(args.device)
    protocol = load_protocol(args.protocol).with_overrides(epochs=args.epochs, runs=args.runs)
    with tempfile.TemporaryDirectory() as tmp:
        # A private strategy cache: `auto` measures every time, so its cost stays in the figure.
        os.environ["HARNESS_CACHE"] = str(Path(tmp) / "cache")
        art = random_subset_artifact(Path(tmp) / "bench", "digits", args.ipc, image_size=args.image_size)
        prep = prepare(art, device)
        n = len(prep.train.images)
        print(
            f"{protocol.id}: R={args.runs}, {n} images {list(prep.train.images.shape[1:])}, "
            f"device {device}, torch threads {torch.get_num_threads()}, allocator "
            f"{'tuned' if tuned else 'default'}"
        )
        t_sys = None
        if not args.no_system_baseline:
            t_sys, sys_accs = baseline_in_child(art.path, args, device)
            print(
                f"published-style sequential, default allocator (child process): {t_sys:8.1f} s  "
                f"mean acc {100 * np.mean(sys_accs):.2f}%"
            )
        t0 = time.perf_counter()
        base_accs = published_style(protocol, prep.train, prep.test, protocol.seeds, device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t_base = time.perf_counter() - t0
        print(f"published-style sequential: {t_base:8.1f} s  mean acc {100 * np.mean(base_accs):.2f}%")
        t0 = time.perf_counter()
        rec = evaluate(art, protocol, device=str(device), strategy=args.strategy)
        t_engine = time.perf_counter() - t0
        print(
            f"engine [{rec['strategy']['name']}]: {t_engine:8.1f} s  mean acc "
            f"{100 * rec['mean']:.2f}%  (measured per-step s: "
            + ", ".join(f"{k} {v:.4f}" for k, v in rec["strategy"]["measured"].items())
            + ")"
        )
        print(
            f"speed-up: {t_base / t_engine:.2f}x (code alone, same process)"
            + (f", {t_sys / t_engine:.2f}x (whole: against the default-allocator baseline)" if t_sys else "")
        )
        if device.type == "cuda":
            images = args.runs * (protocol.epochs + 1) * n
            flops = train_flops_per_image(protocol, prep.train) * images
            name = torch.cuda.get_device_name(device)
            peak = next((v for k, v in FP32_PEAK_TFLOPS.items() if k in name), None)
            for label, t in (("published-style", t_base), ("engine", t_engine)):
                line = f"{label}: {images / t:,.0f} train images/s, {flops / t / 1e12:.2f} TFLOP/s"
                if peak:
                    line += f" = {100 * flops / t / 1e12 / peak:.1f}% of {name}'s {peak} FP32 TFLOP/s"
                print(line)


if __name__ == "__main__":
    main()
