"""Killing a condensation run mid-way and resuming it, for the resume tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest


def kill_then_resume(monkeypatch, method_cls, spec: Callable, kill_at: int):
    """(uninterrupted artifact, resumed artifact): ``spec(out, **kw)`` builds the CondenseSpec;
    the run ``"run"`` is killed (KeyboardInterrupt) when it reaches iteration ``kill_at``, then
    resumed from its last checkpoint."""
    from harness.methods.loop import condense

    ref = condense(spec("ref")).artifact
    orig = method_cls.step

    def killed(self, ctx, cfg, state, iteration, gen):
        if iteration == kill_at:
            raise KeyboardInterrupt
        return orig(self, ctx, cfg, state, iteration, gen)

    monkeypatch.setattr(method_cls, "step", killed)
    with pytest.raises(KeyboardInterrupt):
        condense(spec("run"))
    monkeypatch.setattr(method_cls, "step", orig)
    return ref, condense(spec("run", resume=True)).artifact
