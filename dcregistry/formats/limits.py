"""Caps on what a reader may allocate from one input file, checked before allocating.

A declared size (a zip member's uncompressed size, an ``.npy`` header's shape, a tensor's
shape and strides, a label list's length, an idx header's dimensions) is compared with the
file's real size and with these caps before any memory is reserved for it, so a small hostile
file cannot ask for gigabytes. The environment variable ``DCREG_MAX_INPUT_BYTES`` raises the
total cap for genuinely large sets.
"""

from __future__ import annotations

import os

from ..errors import UserError

#: Default total bytes one import may materialise (ImageNet-1k at 64x64, 50 ipc, float32 is 2.4 GB).
DEFAULT_MAX_INPUT_BYTES = 4 << 30
#: A compressed member may expand at most this much (float pixels compress ~1.1x, uint8 a few x;
#: a decompression bomb expands ~1000x) once it is larger than SMALL_MEMBER_BYTES.
MAX_EXPANSION = 64
SMALL_MEMBER_BYTES = 16 << 20


class InputTooLargeError(UserError):
    """A file declares more data than it holds or more than the cap allows (a bomb, or corrupt)."""


def max_input_bytes() -> int:
    """The total-bytes cap: ``DCREG_MAX_INPUT_BYTES`` if set (a positive integer), else 4 GiB."""
    raw = os.environ.get("DCREG_MAX_INPUT_BYTES")
    if raw is None:
        return DEFAULT_MAX_INPUT_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise UserError(f"DCREG_MAX_INPUT_BYTES must be a positive integer, got {raw!r}")
    return value


class ByteBudget:
    """Bytes still allowed for one file; ``take`` refuses a declared size before allocation."""

    def __init__(self, where: str, total: int | None = None):
        self.where = where
        self.total = max_input_bytes() if total is None else total
        self.used = 0

    def take(self, nbytes: int, what: str) -> None:
        """Reserve ``nbytes`` for ``what`` or raise InputTooLargeError naming the cap."""
        if nbytes < 0:
            raise InputTooLargeError(f"{self.where}: {what} declares a negative size")
        if self.used + nbytes > self.total:
            raise InputTooLargeError(
                f"{self.where}: {what} declares {nbytes} bytes, which would take the file past "
                f"the {self.total}-byte cap (set DCREG_MAX_INPUT_BYTES to allow larger inputs)"
            )
        self.used += nbytes


def check_expansion(where: str, what: str, stored: int, expanded: int) -> None:
    """Refuse a compressed member whose declared size is out of proportion to its stored bytes."""
    if expanded > SMALL_MEMBER_BYTES and expanded > MAX_EXPANSION * max(stored, 1):
        raise InputTooLargeError(
            f"{where}: {what} expands from {stored} to {expanded} bytes (more than "
            f"{MAX_EXPANSION}x): a decompression bomb or a corrupt archive; refusing to read it"
        )
