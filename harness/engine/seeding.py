"""Explicit, derived seeds: every random stream of a run comes from its seed and a purpose."""

from __future__ import annotations

import hashlib

import torch


def derive_seed(seed: int, purpose: str) -> int:
    """A 63-bit seed for ``purpose`` (e.g. "init", "data") derived from a run seed."""
    digest = hashlib.sha256(f"{seed}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def generator(seed: int, purpose: str) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``derive_seed(seed, purpose)``."""
    return torch.Generator().manual_seed(derive_seed(seed, purpose))
