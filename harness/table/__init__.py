"""The results document of the retired one-off ``harness table`` command (``results/results.json``
and ``results/ipc10-longer/results.json``, committed with the README's "Method comparison on
digits"), kept so that those files stay readable and checked (:mod:`.results`).

The tables themselves are now shipped sweep specs: :mod:`harness.tables` (``harness table list |
show | run | render``).
"""

from __future__ import annotations

from .results import ProtocolResult, RowResult, SetResult, TableResults

__all__ = ["ProtocolResult", "RowResult", "SetResult", "TableResults"]
