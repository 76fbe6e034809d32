"""Accuracy against IPC per method, with error bars, as inline SVG (no matplotlib needed).

One plot per protocol: points of different protocols are never drawn on one axis. Every text
in the SVG goes through :func:`dcregistry.leaderboard.html.esc`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .html import esc

__all__ = ["Series", "PALETTE", "accuracy_plot"]

PALETTE = (
    "#2756c5",
    "#d1495b",
    "#2a9d8f",
    "#e9a23b",
    "#6a4c93",
    "#3d5a80",
    "#8ab17d",
    "#b5651d",
    "#c2185b",
    "#00838f",
)


@dataclass(frozen=True)
class Series:
    """One method's points: IPC -> (mean, std, evaluations), accuracies as fractions."""

    label: str
    points: Mapping[int, tuple[float, float, int]]


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    span = max(hi - lo, 1e-9)
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=mag * 10)
    first = math.ceil(lo / step) * step
    out = []
    v = first
    while v <= hi + 1e-9:
        out.append(round(v, 10))
        v += step
    return out


def accuracy_plot(series: Sequence[Series], title: str, *, width: int = 640, height: int = 360) -> str:
    """An ``<svg>`` element: x the IPCs (evenly spaced, in order), y accuracy in percent, one
    coloured line per series with ±std error bars; a legend on the right."""
    ipcs = sorted({ipc for s in series for ipc in s.points})
    left, right, top, bottom = 56, 170, 34, 44
    pw, ph = width - left - right, height - top - bottom
    values = [100 * (m + sd) for s in series for m, sd, _ in s.points.values()]
    values += [100 * (m - sd) for s in series for m, sd, _ in s.points.values()]
    lo = max(0.0, math.floor(min(values, default=0.0) / 5) * 5 - 5)
    hi = min(100.0, math.ceil(max(values, default=100.0) / 5) * 5 + 5)
    if hi <= lo:
        lo, hi = 0.0, 100.0

    def x(ipc: int) -> float:
        if len(ipcs) == 1:
            return left + pw / 2
        return left + pw * ipcs.index(ipc) / (len(ipcs) - 1) * 0.9 + pw * 0.05

    def y(acc: float) -> float:
        return top + ph * (1 - (100 * acc - lo) / (hi - lo))

    out = [
        f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" aria-label="{esc(title)}">',
        f"<title>{esc(title)}</title>",
        f'<text x="{left}" y="20" font-size="14" font-weight="600" fill="#1d2330">{esc(title)}</text>',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#dde2ea"/>',
    ]
    for t in _ticks(lo, hi):
        ty = top + ph * (1 - (t - lo) / (hi - lo))
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="#eef1f5"/>')
        out.append(
            f'<text x="{left - 6}" y="{ty + 4:.1f}" font-size="11" text-anchor="end" fill="#5b6577">{t:g}</text>'
        )
    for ipc in ipcs:
        out.append(
            f'<text x="{x(ipc):.1f}" y="{top + ph + 16}" font-size="11" text-anchor="middle" '
            f'fill="#5b6577">{ipc}</text>'
        )
    out.append(
        f'<text x="{left + pw / 2:.1f}" y="{height - 8}" font-size="12" text-anchor="middle" '
        'fill="#5b6577">images per class (IPC)</text>'
    )
    out.append(
        f'<text x="14" y="{top + ph / 2:.1f}" font-size="12" text-anchor="middle" fill="#5b6577" '
        f'transform="rotate(-90 14 {top + ph / 2:.1f})">test accuracy (%)</text>'
    )
    for i, s in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        pts = sorted(s.points.items())
        if len(pts) > 1:
            path = " ".join(f"{x(ipc):.1f},{y(m):.1f}" for ipc, (m, _, _) in pts)
            out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for ipc, (m, sd, n) in pts:
            cx = x(ipc)
            if sd > 0:
                out.append(
                    f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{y(m - sd):.1f}" y2="{y(m + sd):.1f}" '
                    f'stroke="{color}" stroke-width="1.5"/>'
                )
                for yy in (y(m - sd), y(m + sd)):
                    out.append(
                        f'<line x1="{cx - 4:.1f}" x2="{cx + 4:.1f}" y1="{yy:.1f}" y2="{yy:.1f}" '
                        f'stroke="{color}" stroke-width="1.5"/>'
                    )
            out.append(
                f'<circle cx="{cx:.1f}" cy="{y(m):.1f}" r="4" fill="{color}">'
                f"<title>{esc(s.label)}, IPC {ipc}: {100 * m:.2f} ± {100 * sd:.2f} % "
                f"({n} evaluations)</title></circle>"
            )
        ly = top + 8 + 18 * i
        out.append(
            f'<rect x="{left + pw + 14}" y="{ly}" width="12" height="12" fill="{color}"/>'
            f'<text x="{left + pw + 32}" y="{ly + 10}" font-size="12" fill="#1d2330">'
            f"{esc(s.label[:18] + ('…' if len(s.label) > 18 else ''))}</text>"
        )
    out.append("</svg>")
    return "\n".join(out)
