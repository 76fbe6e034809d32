"""Our DC/DSA/DM beside the official code on digits: loss curves, accuracy, time — one run.

For every cell (method x IPC x image size) this runs, back to back on this machine:

1. ours: ``harness condense digits --method M --ipc K --iterations N [--image-size S]``;
2. the official code on the same data, from the same initial images
   (``scripts/fidelity/official_run.py --same-init``), imported with ``dcreg import --format dc-pt``;
3. ``harness eval`` of both sets under the same protocol (DC: ``dc-noaug``, DSA/DM: ``dsa``, at
   ``--epochs`` epochs, ``--runs`` runs).

Results go to ``OUT/results.json`` after every step (a rerun skips what is done), the table to
``OUT/table.md`` and the loss curves to ``OUT/curves.png``. The sets themselves stay under
``OUT/runs/`` (not committed). Example::

    python scripts/fidelity/compare.py --official /path/to/DatasetCondensation --out results/fidelity
    python scripts/fidelity/compare.py --render-only --out results/fidelity
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# (method, ipc, image size, iterations, seeds): sized for a 2-core CPU (32 px DC/DSA at IPC 10
# costs minutes per iteration); the published runs use 1000 (DC/DSA) and 20000 (DM) iterations.
# Where a run takes about a minute, five seeds (DC: ten, its sets spread most): at IPC 1 the runs
# are chaotic (a 1e-6 difference in a gradient changes the trajectory after ~10 iterations), so
# one set says little.
CELLS = [
    ("dc", 1, 8, 100, 10),
    ("dsa", 1, 8, 100, 5),
    ("dm", 1, 8, 500, 5),
    ("dc", 10, 8, 20, 1),
    ("dsa", 10, 8, 20, 1),
    ("dm", 10, 8, 500, 1),
    ("dc", 1, 32, 50, 1),
    ("dsa", 1, 32, 50, 1),
    ("dm", 1, 32, 200, 1),
    ("dm", 10, 32, 200, 1),
    ("dc", 10, 32, 2, 1),
    ("dsa", 10, 32, 2, 1),
]
PROTOCOL = {"dc": "dc-noaug", "dsa": "dsa", "dm": "dsa"}


def _run(cmd: list[str], log: Path) -> float:
    t = time.perf_counter()
    with log.open("w") as f:
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT, check=False)
    if proc.returncode:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}; see {log}")
    return time.perf_counter() - t


def _metadata(art: Path) -> dict:
    from dcregistry.artifact import open_artifact

    return open_artifact(art).metadata


def _eval(art: Path, protocol: str, epochs: int, runs: int, out: Path, log: Path) -> dict:
    if not out.is_file():
        _run(
            [
                str(BIN / "harness"),
                "eval",
                str(art),
                "--protocol",
                protocol,
                "--epochs",
                str(epochs),
                "--runs",
                str(runs),
                "--strategy",
                "sequential",
                "--json",
                str(out),
                "-q",
            ],
            log,
        )
    d = json.loads(out.read_text())
    return {
        "mean": d["mean"],
        "std": d["std"],
        "accuracies": d["accuracies"],
        "protocol": d["protocol"]["id"],
    }


def cell_key(method: str, ipc: int, size: int, seed: int) -> str:
    return f"{method}-ipc{ipc}-{size}px" + (f"-s{seed}" if seed else "")


def _ours_cmd(method: str, ipc: int, size: int, its: int, seed: int, out: Path) -> list[str]:
    """``harness condense`` of one cell (digits' native 8 px unless ``size`` says otherwise)."""
    cmd = [
        str(BIN / "harness"),
        "condense",
        "digits",
        "--method",
        method,
        "--ipc",
        str(ipc),
        "--iterations",
        str(its),
        "--seed",
        str(seed),
        "-o",
        str(out),
        "--overwrite",
        "-q",
    ]
    return cmd + (["--image-size", str(size)] if size != 8 else [])


def _official_cmd(a, method: str, ipc: int, size: int, its: int, seed: int, out: Path) -> list[str]:
    """The official code on the same cell, from the same initial images (official_run.py)."""
    return [
        sys.executable,
        str(ROOT / "scripts/fidelity/official_run.py"),
        "--official",
        str(a.official),
        "--method",
        method.upper(),
        "--ipc",
        str(ipc),
        "--iterations",
        str(its),
        "--image-size",
        str(size),
        "--seed",
        str(seed),
        "--same-init",
        "--out",
        str(out),
    ]


def run_cell(cell, seed: int, a, results: dict) -> None:
    method, ipc, size, its, _ = cell
    key = cell_key(method, ipc, size, seed)
    rec = results.setdefault(
        key, {"method": method, "ipc": ipc, "image_size": size, "iterations": its, "seed": seed}
    )
    d = a.out / "runs" / key
    d.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0]
    if "ours" not in rec:
        cmd = _ours_cmd(method, ipc, size, its, seed, d / "ours")
        wall = _run(cmd, d / "ours.log")
        mc = _metadata(d / "ours")["method_config"]
        rec["ours"] = {
            "process_wall_s": wall,
            "wall_time_s": mc["wall_time_s"],
            "s_per_iter": mc["s_per_iter"],
            "loss_curve": mc["loss"]["curve"],
            "quality": mc.get("quality"),
            "load_before": load,
        }
        _save(a, results)
    if "official" not in rec:
        wall = None
        if not (d / "official" / "run.json").is_file():  # a finished official run is not redone
            wall = _run(_official_cmd(a, method, ipc, size, its, seed, d / "official"), d / "official.log")
        run = json.loads((d / "official" / "run.json").read_text())
        pt = d / "official" / f"res_{method.upper()}_digits_ConvNet_{ipc}ipc.pt"
        _run(
            [
                str(BIN / "dcreg"),
                "import",
                str(pt),
                "--format",
                "dc-pt",
                "--dataset",
                "digits",
                "--exp",
                "0",
                "--layout",
                "nchw",
                "--method",
                method,
                "-o",
                str(d / "official-set"),
                "--overwrite",
            ],
            d / "import.log",
        )
        rec["official"] = {
            "process_wall_s": wall or run["wall_s"],
            "synthesis_s": run["synthesis_s"],
            "s_per_iter": run["synthesis_s"] / its,
            "loss_curve": run["loss_curve"],
            "loss_curve_every": run["loss_curve_every"],
            "load_before": load,
        }
        _save(a, results)
    proto = PROTOCOL[method]
    for side, art in (("ours", d / "ours"), ("official", d / "official-set")):
        if "eval" not in rec[side]:
            rec[side]["eval"] = _eval(
                art, proto, a.epochs, a.runs, d / f"{side}-eval.json", d / f"{side}-eval.log"
            )
            _save(a, results)
    o, f = rec["ours"]["eval"], rec["official"]["eval"]
    print(
        f"{key}: ours {100 * o['mean']:.1f} ± {100 * o['std']:.1f}  official {100 * f['mean']:.1f} ± "
        f"{100 * f['std']:.1f}  s/iter {rec['ours']['s_per_iter']:.3g} vs {rec['official']['s_per_iter']:.3g}",
        flush=True,
    )


#: Iterations of the timing pass per method (s/iter settles within these).
TIMING_ITERATIONS = {"dc": 5, "dsa": 5, "dm": 50}
#: Cells whose full runs (minutes per iteration, run with nothing else running) are their timing.
NOT_RETIMED = {("dc", 10, 32), ("dsa", 10, 32)}


def time_cell(cell, a, results: dict) -> None:
    """s/iter of both sides for a cell, measured back to back (the seed-0 record keeps them)."""
    method, ipc, size, its, _ = cell
    rec = results[cell_key(method, ipc, size, 0)]
    if (method, ipc, size) in NOT_RETIMED:
        return
    n = min(its, TIMING_ITERATIONS[method])
    d = a.out / "runs" / "timing" / cell_key(method, ipc, size, 0)
    d.mkdir(parents=True, exist_ok=True)
    if "timing" not in rec["ours"]:
        cmd = _ours_cmd(method, ipc, size, n, 0, d / "ours")
        _run(cmd, d / "ours.log")
        mc = _metadata(d / "ours")["method_config"]
        first = mc.get("first_iteration_s") or 0.0
        steady = (mc["s_per_iter"] * n - first) / (n - 1) if n > 1 else mc["s_per_iter"]
        rec["ours"]["timing"] = {
            "iterations": n,
            "s_per_iter": steady,
            "first_iteration_s": first,
            "load_before": os.getloadavg()[0],
        }
        _save(a, results)
    if "timing" not in rec["official"]:
        _run(_official_cmd(a, method, ipc, size, n, 0, d / "official"), d / "official.log")
        run = json.loads((d / "official" / "run.json").read_text())
        rec["official"]["timing"] = {
            "iterations": n,
            "s_per_iter": run.get("s_per_iter_after_first") or run["synthesis_s"] / n,
            "load_before": os.getloadavg()[0],
        }
        _save(a, results)
    print(
        f"timing {cell_key(method, ipc, size, 0)}: ours {rec['ours']['timing']['s_per_iter']:.3g} s/iter, "
        f"official {rec['official']['timing']['s_per_iter']:.3g}",
        flush=True,
    )


def record_pixel_ranges(a, results: dict) -> None:
    """``max_abs_pixel`` of every set still on disk (a pixel that ran away marks a blown-up run)."""
    from dcregistry.artifact import open_artifact

    for key, rec in results.items():
        for side, name in (("ours", "ours"), ("official", "official-set")):
            path = a.out / "runs" / key / name
            if side in rec and "max_abs_pixel" not in rec[side] and (path / "manifest.json").is_file():
                images = open_artifact(path).numpy("images")
                rec[side]["max_abs_pixel"] = round(float(abs(images).max()), 3)
    _save(a, results)


def _save(a, results: dict) -> None:
    doc = {
        "what": "ours vs the official DC/DSA/DM code (VICO-UoE/DatasetCondensation@53f63a67) on digits",
        "epochs": a.epochs,
        "runs": a.runs,
        "cpu_count": os.cpu_count(),
        "cells": results,
    }
    tmp = a.out / "results.json.tmp"
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    os.replace(tmp, a.out / "results.json")


def _first_last(curve, n):
    """Mean loss of the first and the last tenth of a curve (points every ``n`` iterations)."""
    vals = [v for _, v in curve]
    w = max(1, len(vals) // 10)
    return sum(vals[:w]) / w, sum(vals[-w:]) / w


def _group(cells: dict) -> list[dict]:
    """Cells by (method, ipc, size), each side's sets pooled: per-set means and every run."""
    groups: dict[tuple, dict] = {}
    for rec in cells.values():
        if "eval" not in rec.get("official", {}) or "eval" not in rec.get("ours", {}):
            continue
        g = groups.setdefault(
            (rec["method"], rec["ipc"], rec["image_size"]),
            {
                **{k: rec[k] for k in ("method", "ipc", "image_size", "iterations")},
                "sets": [],
                "ours": rec["ours"],
                "official": rec["official"],
            },
        )
        g["sets"].append(rec)
    return list(groups.values())


def _side(sets: list[dict], side: str) -> tuple[float, float, float]:
    """(mean of the set means, std over sets or over runs for one set, mean s/iter) in %."""
    import statistics

    means = [100 * r[side]["eval"]["mean"] for r in sets]
    if len(means) > 1:
        spread = statistics.pstdev(means)
    else:
        spread = 100 * sets[0][side]["eval"]["std"]
    timed = [r[side]["timing"]["s_per_iter"] for r in sets if "timing" in r[side]]
    # The timing pass (nothing else running) where there is one, else the runs' own times.
    timing = statistics.fmean(timed) if timed else statistics.fmean(r[side]["s_per_iter"] for r in sets)
    return statistics.fmean(means), spread, timing


def render(out: Path) -> None:
    doc = json.loads((out / "results.json").read_text())
    lines = [
        (
            "| method | IPC | size | iterations | sets | loss ours (first → last tenth) | loss official | "
            "accuracy ours | accuracy official | Δ | within max(1, σ) | s/iter ours | s/iter official | ratio |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for g in _group(doc["cells"]):
        o, f = g["ours"], g["official"]  # the seed-0 curves
        lo, lf = _first_last(o["loss_curve"], 1), _first_last(f["loss_curve"], f["loss_curve_every"])
        mo, so, to = _side(g["sets"], "ours")
        mf, sf, tf = _side(g["sets"], "official")
        delta = mo - mf
        ok = "yes" if abs(delta) <= max(1.0, sf) or delta > 0 else "no"
        warn = " ⚠" if any((r["ours"].get("quality") or {}).get("warning") for r in g["sets"]) else ""
        lines.append(
            f"| {g['method']} | {g['ipc']} | {g['image_size']} | {g['iterations']} | {len(g['sets'])} | "
            f"{lo[0]:.4g} → {lo[1]:.4g}{warn} | {lf[0]:.4g} → {lf[1]:.4g} | {mo:.1f} ± {so:.1f} | "
            f"{mf:.1f} ± {sf:.1f} | {delta:+.1f} | {ok} | {to:.3g} | {tf:.3g} | {tf / to:.2f}x |"
        )
    notes = [
        "",
        (
            f"digits (the fixed stratified split), ConvNet, both sides started from the same real images "
            f"(per seed). Accuracy: `harness eval`, {doc['runs']} runs per set, {doc['epochs']}+1 epochs, "
            "`dc-noaug` for DC and `dsa` for DSA/DM, % on the test split; with several sets, mean ± std "
            "of the set means, else mean ± std over the runs. Loss: mean per class (and outer step) of "
            "the seed-0 run, first and last tenth (the official DM curve is its print every 10 "
            "iterations). s/iter: synthesis time per iteration on this machine, both sides back to back "
            "in one run (ratio = official / ours). Within: |Δ| <= max(1 point, the official σ), or ours "
            "higher. 32 px DC/DSA at IPC 10 are timed by their full runs (minutes per iteration; "
            "run back to back with nothing else running), not retimed."
        ),
    ]
    (out / "table.md").write_text("\n".join(lines + notes) + "\n")
    _chart(doc, out / "curves.png")
    print((out / "table.md").read_text())


def _chart(doc: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = [r for r in doc["cells"].values() if "official" in r and "ours" in r and not r.get("seed")]
    cols = 6
    rows = (len(cells) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.1 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.flat[len(cells) :]:
        ax.axis("off")
    for ax, r in zip(axes.flat, cells, strict=False):
        for side, style in (("ours", "-"), ("official", "--")):
            c = r[side]["loss_curve"]
            ax.plot(
                [p[0] for p in c],
                [p[1] for p in c],
                style,
                label=side,
                lw=1.2,
                marker="o" if len(c) < 12 else None,
                ms=3,
            )
        ax.set_title(f"{r['method']} IPC {r['ipc']} {r['image_size']}px", fontsize=9)
        ax.set_xlabel("iteration", fontsize=8)
        ax.tick_params(labelsize=7)
    axes.flat[0].set_ylabel("matching loss", fontsize=8)
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--official", type=Path)
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "fidelity")
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", default=None, help="comma-separated cell keys, e.g. dc-ipc1-8px")
    ap.add_argument("--render-only", action="store_true")
    ap.add_argument(
        "--timing",
        action="store_true",
        help="afterwards, time every cell again, ours then official, with nothing else "
        "running (TIMING_ITERATIONS iterations each; ours without its first, "
        "torch.compile, iteration); the table reports these",
    )
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    if not a.render_only:
        if a.official is None:
            ap.error("--official is required unless --render-only")
        path = a.out / "results.json"
        results = json.loads(path.read_text())["cells"] if path.is_file() else {}
        only = set(a.only.split(",")) if a.only else None
        for cell in CELLS:
            for seed in range(cell[4]):
                if only and cell_key(*cell[:3], seed) not in only:
                    continue
                run_cell(cell, seed, a, results)
        record_pixel_ranges(a, results)
        if a.timing:
            for cell in CELLS:
                time_cell(cell, a, results)
    render(a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
