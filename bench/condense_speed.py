"""Condensation speed: our DC / DM against the straightforward per-class loops written the way the
official code does it (tests/harness/test_methods_synth_reference.py), alternating iteration by
iteration so all see the same machine load; and MTT's memory for the trajectory-matching
gradient, unrolled (official) against step-wise (ours).

    PYTHONPATH=. python bench/condense_speed.py                 # all cases, digits 32x32, ConvNet
    PYTHONPATH=. python bench/condense_speed.py --cases dc1,dm10 --repeats 3 --threads 2

This process runs ours the way ``harness`` does (allocator tuned, see
harness/engine/allocator.py). The reference loop runs twice per iteration: in this process (same
allocator: the gain of the code alone) and in a child process with glibc's default allocator (the
published code as it runs: the whole gain). Prints seconds per outer iteration, both ratios
reference / ours (higher is better), the losses (same seed: the same trajectory within float
tolerance), and MTT peak memory. The first iteration of each (torch.compile warm-up) is not
timed; with ``--device cuda`` images/s are printed too. On a shared machine only the ratios mean
something.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.engine.allocator import tune_allocator
from harness.engine.seeding import generator
from harness.methods import get_method
from harness.methods.base import build_config
from tests.harness.test_methods_synth_reference import (
    ReferenceDC,
    ReferenceDM,
    digits_context,
    real_init,
)

CASES = {"dc1": ("dc", 1), "dc10": ("dc", 10), "dm10": ("dm", 10), "dsa1": ("dsa", 1)}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _setup(name: str, device: torch.device, options: dict[str, str]):
    """(method, cfg, ctx, images, labels, make_reference) for a case, on ``device``."""
    method_name, ipc = CASES[name]
    ctx = digits_context(ipc)
    if device.type != "cpu":
        ctx.images, ctx.labels, ctx.device = ctx.images.to(device), ctx.labels.to(device), device
        ctx._class_idx.clear()
    method = get_method(method_name)
    cfg = method.configure(build_config(method, options), ctx)
    images, labels = real_init(ctx, generator(0, "bench/init"))

    def make_reference():
        return (
            ReferenceDM(ctx, cfg, images, labels)
            if method_name == "dm"
            else ReferenceDC(ctx, cfg, images, labels, dsa=method_name == "dsa")
        )

    return method, cfg, ctx, images, labels, make_reference


def _timed(fn, device: torch.device) -> tuple[float, float]:
    t0 = time.perf_counter()
    loss = fn()
    _sync(device)
    return time.perf_counter() - t0, loss


def _reference_worker(conn, name: str, device: str, options: dict[str, str], threads: int) -> None:
    """Child process: the reference loop with glibc's default allocator, one step per request."""
    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    *_, make_reference = _setup(name, dev, options)
    ref = make_reference()
    while True:
        cmd, arg = conn.recv()
        if cmd == "stop":
            conn.close()
            return
        if cmd == "reset":
            ref = make_reference()
            conn.send(None)
        else:  # ("step", label)
            conn.send(_timed(lambda: ref.step(generator(0, arg)), dev))  # noqa: B023 (called in this iteration)


class SystemReference:
    """The reference loop in a spawned child (fresh interpreter: glibc's default allocator)."""

    def __init__(self, name: str, device: torch.device, options: dict[str, str], threads: int):
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=_reference_worker, args=(child, name, str(device), options, threads), daemon=True
        )
        self.proc.start()

    def step(self, label: str) -> tuple[float, float]:
        self.conn.send(("step", label))
        return self.conn.recv()

    def reset(self) -> None:
        self.conn.send(("reset", None))
        self.conn.recv()

    def close(self) -> None:
        self.conn.send(("stop", None))
        self.proc.join(timeout=30)


def bench_case(
    name: str,
    repeats: int,
    device: torch.device,
    options: dict[str, str],
    skip_ref_warmup: bool = False,
    system_ref: bool = True,
    threads: int = 0,
) -> dict:
    method, cfg, ctx, images, labels, make_reference = _setup(name, device, options)
    state = method.init_state(ctx, cfg, images, labels, generator(0, "bench/init"))
    ref = make_reference()
    sysref = SystemReference(name, device, options, threads) if system_ref else None
    try:
        warm, _ = _timed(lambda: method.step(ctx, cfg, state, 0, generator(0, "bench/warmup")), device)
        if not skip_ref_warmup:
            ref.step(generator(0, "bench/warmup"))
            if sysref:
                sysref.step("bench/warmup")
        # restart all from the same images so the timed iterations follow the same trajectory
        state = method.init_state(ctx, cfg, images, labels, generator(0, "bench/init"))
        ref = make_reference()
        if sysref:
            sysref.reset()
        ours, same, system, losses = [], [], [], []
        for it in range(repeats):
            label = f"bench/iter{it}"
            t_o, a = _timed(lambda: method.step(ctx, cfg, state, it, generator(0, label)), device)  # noqa: B023 (called in this iteration)
            t_s, b = _timed(lambda: ref.step(generator(0, label)), device)  # noqa: B023 (called in this iteration)
            ours.append(t_o)
            same.append(t_s)
            line = f"  {name} iter {it}: ours {t_o:.2f}s loss {a:.5f} | reference {t_s:.2f}s loss {b:.5f}"
            if sysref:
                t_p, c = sysref.step(label)
                system.append(t_p)
                line += f" | reference, default allocator {t_p:.2f}s loss {c:.5f}"
            losses.append((a, b))
            print(line, flush=True)
    finally:
        if sysref:
            sysref.close()
    o, r = statistics.median(ours), statistics.median(same)
    p = statistics.median(system) if system else None
    n_img = sum(min(cfg.batch_real, len(ctx.class_indices(c))) for c in range(ctx.num_classes))
    return {
        "case": name,
        "ours_s": o,
        "ref_s": r,
        "ratio": r / o,
        "warmup_s": warm,
        "losses": losses,
        "ref_system_s": p,
        "ratio_system": p / o if p else None,
        "real_images_per_s": n_img * getattr(cfg, "outer_loop", 1) / o,
    }


class SavedTensorMeter:
    """Peak bytes of tensor storage held by autograd graphs (saved tensors), each storage once."""

    def __init__(self) -> None:
        self.cur = self.peak = 0
        self.refs: dict[int, int] = {}

    def _release(self, key: int, nbytes: int) -> None:
        self.refs[key] -= 1
        if not self.refs[key]:
            del self.refs[key]
            self.cur -= nbytes

    def pack(self, t: torch.Tensor):
        st = t.untyped_storage()
        key, nbytes = st.data_ptr(), st.nbytes()
        if key not in self.refs:
            self.refs[key] = 0
            self.cur += nbytes
            self.peak = max(self.peak, self.cur)
        self.refs[key] += 1
        meter = self

        class Held:
            def __init__(self, t):
                self.t = t

            def __del__(self):
                meter._release(key, nbytes)

        return Held(t)

    @staticmethod
    def unpack(h):
        return h.t

    def hooks(self):
        return torch.autograd.graph.saved_tensors_hooks(self.pack, self.unpack)


def bench_mtt_memory(steps_list: list[int], device: torch.device) -> list[dict]:
    import torch.nn.functional as F

    from harness.augment.dsa import apply_dsa, sample_dsa
    from harness.methods.mtt import FlatModel, stepwise_gradient, unrolled_gradient

    ctx = digits_context(1)
    g = generator(0, "bench/mtt")
    net = ctx.make_model(g).to(device)
    fm = FlatModel(net)
    theta0 = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    target = theta0 + 0.01 * torch.randn(theta0.shape, generator=g).to(device)
    images, labels = real_init(ctx, g)
    images, labels = images.to(device), labels.to(device)
    rows = []
    for steps in steps_list:
        samples = [
            sample_dsa(len(images), ctx.dsa_strategy, g, shape=tuple(images.shape[1:])) for _ in range(steps)
        ]

        def step_loss(theta, i, x):
            return F.cross_entropy(fm.logits(theta, apply_dsa(x, samples[i])), labels)  # noqa: B023 (called in this iteration)

        row = {"syn_steps": steps, "params": fm.size}
        for name, fn in (("unrolled", unrolled_gradient), ("stepwise", stepwise_gradient)):
            meter = SavedTensorMeter()
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
                base = torch.cuda.memory_allocated(device)
            t0 = time.perf_counter()
            with meter.hooks():
                loss, gx, ga = fn(step_loss, steps, theta0, target, images, torch.tensor(0.01, device=device))
            _sync(device)
            row[f"{name}_s"] = time.perf_counter() - t0
            row[f"{name}_graph_bytes"] = meter.peak
            if device.type == "cuda":
                row[f"{name}_cuda_peak_bytes"] = torch.cuda.max_memory_allocated(device) - base
            row[f"{name}_loss"] = loss
            row[f"{name}_gx"] = gx
        row["stepwise_param_history_bytes"] = (steps + 1) * fm.size * 4
        row["max_abs_diff"] = float((row["unrolled_gx"] - row["stepwise_gx"]).abs().max())
        row["max_abs"] = float(row["unrolled_gx"].abs().max())
        # float32 rounding can flip a ReLU whose input is ~0 in one of the two computations, which
        # moves a few pixels' gradients; the relative L2 difference shows the whole gradient agrees
        row["rel_l2"] = float((row["unrolled_gx"] - row["stepwise_gx"]).norm() / row["unrolled_gx"].norm())
        rows.append(row)
        mb = 2**20
        print(
            f"  mtt syn_steps {steps}: graph peak unrolled {row['unrolled_graph_bytes'] / mb:.1f} MiB, "
            f"step-wise {row['stepwise_graph_bytes'] / mb:.1f} MiB (+ {row['stepwise_param_history_bytes'] / mb:.1f} "
            f"MiB parameter history); time {row['unrolled_s']:.2f}s vs {row['stepwise_s']:.2f}s; "
            f"max |dX diff| {row['max_abs_diff']:.2e} (max |dX| {row['max_abs']:.2e}), "
            f"relative L2 difference {row['rel_l2']:.1e}",
            flush=True,
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="dc1,dc10,dm10", help="comma list of dc1, dc10, dm10, dsa1")
    ap.add_argument("--repeats", type=int, default=3, help="timed iterations per case (dc10: 1)")
    ap.add_argument(
        "--mtt-steps", default="10,20,40", help="syn_steps for the MTT memory figures ('' to skip)"
    )
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    ap.add_argument("--no-compile", action="store_true", help="ours without torch.compile (batching only)")
    ap.add_argument(
        "--no-system-reference",
        action="store_true",
        help="skip the reference in a child process with the default allocator",
    )
    ap.add_argument(
        "--dc10-loops",
        default="",
        metavar="OUTER,INNER",
        help="override DC IPC 10's (outer, inner) = (10, 50) to fit a short measurement",
    )
    args = ap.parse_args(argv)
    tuned = tune_allocator()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(
        f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"allocator {'tuned' if tuned else 'default (tuning unavailable or HARNESS_MALLOC=system)'}"
    )
    results = []
    for name in [c for c in args.cases.split(",") if c]:
        reps = 1 if name == "dc10" and not args.dc10_loops else args.repeats
        opts = {"compile": "false"} if args.no_compile else {}
        if name == "dc10" and args.dc10_loops:
            outer, inner = args.dc10_loops.split(",")
            opts.update(outer_loop=outer, inner_loop=inner)
        results.append(
            bench_case(
                name,
                reps,
                device,
                opts,
                skip_ref_warmup=name == "dc10" and not args.dc10_loops,
                system_ref=not args.no_system_reference,
                threads=args.threads,
            )
        )
    if results:
        print(
            "\ncase   ours s/iter   reference s/iter (same process / default allocator)   "
            "speed-up (code alone / whole)   (compile warm-up s)"
        )
        for r in results:
            sys_s = f"{r['ref_system_s']:.2f}" if r["ref_system_s"] else "-"
            sys_x = f"{r['ratio_system']:.2f}x" if r["ratio_system"] else "-"
            print(
                f"{r['case']:<6} {r['ours_s']:>11.2f} {r['ref_s']:>17.2f} / {sys_s:<32} "
                f"{r['ratio']:>6.2f}x / {sys_x:<16} ({r['warmup_s']:.1f})"
                + (f"   {r['real_images_per_s']:.0f} real img/s" if device.type == "cuda" else "")
            )
    if args.mtt_steps:
        print("\nMTT trajectory-matching gradient memory (digits IPC 1, ConvNet):")
        bench_mtt_memory([int(s) for s in args.mtt_steps.split(",")], device)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
