"""Sweep throughput: a 2 sets x 2 protocols x 5 seeds sweep of short digits cells (20 cells),
run by each executor against the same cells one after another in this process.

    PYTHONPATH=. python bench/sweep_throughput.py                     # local + Ray, CPU
    PYTHONPATH=. python bench/sweep_throughput.py --epochs 20 --no-ray
    PYTHONPATH=. python bench/sweep_throughput.py --device cuda       # + --per-gpu 1 vs 4

Baseline: this process evaluates every cell in turn with torch's default threads (what a loop
over ``harness eval`` does, minus its process starts). Then: the local executor (one worker per
core, one thread each, workers spawned once and reused); Ray's per-task overhead (a no-op task's
round trip) and the same sweep as Ray tasks on a local instance; on CUDA, cells per hour with
one worker per GPU against four. Each run writes a fresh results directory; the executors must
give each other's per-seed numbers (checked: both run cells on one thread; the baseline's two
threads may round differently, so its numbers are only reported as equal or not). Prints seconds and ratios (higher is better);
on a shared machine only the ratios mean something.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _setup(root: Path, epochs: int, seeds: int) -> Path:
    from tests.harness.sweep_helpers import make_store, write_spec

    store, _ = make_store(root)
    protocols = f'[{{ name = "dc-noaug", epochs = {epochs} }}, {{ name = "dsa", epochs = {epochs} }}]'
    return write_spec(root / "spec.toml", store, protocols=protocols, seeds=str(list(range(seeds))))


def _plan(spec: Path):
    from harness.sweep.plan import plan_sweep
    from harness.sweep.spec import load_spec

    return plan_sweep(load_spec(spec))


def _baseline(spec: Path, device: str) -> tuple[float, dict]:
    """Every cell in this process, one after another (default torch threads)."""
    from harness.sweep.worker import CellTask, run_cell

    plan = _plan(spec)
    t0 = time.perf_counter()
    accs = {}
    for c in plan.cells:
        out = run_cell(CellTask(c.key, c.artifact, c.protocol, device))
        assert out.record is not None, out.error
        accs[c.key] = out.record.accuracies[0]
    return time.perf_counter() - t0, accs


def _sweep(spec: Path, name: str, options) -> tuple[float, dict, str]:
    from harness.sweep.driver import run_sweep
    from harness.sweep.executor import make_executor
    from harness.sweep.results import ResultsDir

    plan = _plan(spec)
    with tempfile.TemporaryDirectory() as res:
        t0 = time.perf_counter()
        with make_executor(name, options) as ex:
            how = ex.describe()
            report = run_sweep(plan, ResultsDir(res), ex)
        wall = time.perf_counter() - t0
        assert report.failed == 0, report.summary()
        results = ResultsDir(res)
        accs = {}
        for c in plan.cells:
            r = results.read_cell(c.artifact.dataset, c.artifact.ipc, c.key)
            assert r is not None and getattr(r, "record", None) is not None, r
            accs[c.key] = r.record.accuracies[0]  # type: ignore[union-attr]
    return wall, accs, how


def _ray_task_overhead(n: int = 200) -> float:
    import ray

    @ray.remote(num_cpus=1)
    def noop(x: int) -> int:
        return x

    ray.get([noop.remote(i) for i in range(8)])  # workers up
    t0 = time.perf_counter()
    ray.get([noop.remote(i) for i in range(n)])
    return (time.perf_counter() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=10, help="Training epochs per cell.")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--device", default="cpu", help="cpu or cuda.")
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument(
        "--baseline-threads", type=int, default=None, help="Threads of the baseline (default: torch's)."
    )
    args = ap.parse_args()

    from harness.sweep.executor import ExecutorOptions

    with tempfile.TemporaryDirectory() as tmp:
        spec = _setup(Path(tmp), args.epochs, args.seeds)
        n = len(_plan(spec).cells)
        print(
            f"sweep: {n} cells (2 sets x 2 protocols x {args.seeds} seeds, {args.epochs} epochs), {args.device}"
        )
        import torch

        if args.baseline_threads:
            torch.set_num_threads(args.baseline_threads)
        threads = torch.get_num_threads()
        base, ref = _baseline(spec, args.device)
        local_accs: dict = {}
        print(f"  one process, one cell after another ({threads} threads): {base:7.2f} s   1.00x")
        if args.device == "cpu":
            wall, accs, how = _sweep(spec, "local", ExecutorOptions(device="cpu"))
            local_accs = accs
            same = "same numbers" if accs == ref else f"numbers differ in rounding ({threads} threads vs 1)"
            print(f"  {how}: {wall:7.2f} s   {base / wall:.2f}x   ({same} as the baseline)")
        else:
            for k in (1, 4):
                wall, accs, how = _sweep(spec, "local", ExecutorOptions(device=args.device, per_gpu=k))
                print(
                    f"  --per-gpu {k} ({how}): {wall:7.2f} s   {base / wall:.2f}x   {3600 * n / wall:.0f} cells/h"
                )
        if not args.no_ray:
            import ray

            ray.init(include_dashboard=False, log_to_driver=False)
            try:
                print(f"  ray: {1e3 * _ray_task_overhead():.2f} ms per no-op task (round trip, warm workers)")
                wall, accs, how = _sweep(spec, "ray", ExecutorOptions(device=args.device))
                if args.device == "cpu":
                    assert accs == local_accs, "the Ray executor changed a number"
                print(f"  {how}: {wall:7.2f} s   {base / wall:.2f}x")
            finally:
                ray.shutdown()


if __name__ == "__main__":
    main()
