"""Where a cell runs (:class:`~.results.Environment`), computed once per process and device."""

from __future__ import annotations

import platform

from .results import Environment

__all__ = ["environment"]

_ENV: dict[str, Environment] = {}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "?"


def environment(device: str) -> Environment:
    """Where this process runs cells on ``device`` (computed once per process and device)."""
    if device not in _ENV:
        import numpy
        import torch

        from harness import __version__
        from harness.engine.evaluate import resolve_device

        dev = resolve_device(device)
        _ENV[device] = Environment(
            python=platform.python_version(),
            harness=__version__,
            torch=torch.__version__,
            numpy=numpy.__version__,
            cpu=_cpu_model(),
            gpu=torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
            threads=torch.get_num_threads(),
        )
    return _ENV[device]
