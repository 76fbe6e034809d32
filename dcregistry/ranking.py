"""DD-Ranking's scores (Li et al., 2025, "DD-Ranking: Rethinking the Evaluation of Dataset
Distillation"), as plain functions of accuracies given as **fractions** in [0, 1].

- IOR (improvement over random) = acc(set) - acc(equal-size class-balanced random real subset)
- HLR (hard-label recovery) = acc(full real training set) - acc(set with hard labels)
- LRS (label-robust score) = N(lam * IOR - (1 - lam) * HLR)
- ARS (augmentation-robust score) = N(lam * IOR_aug + (1 - lam) * IOR_noaug), IOR_aug and
  IOR_noaug being the improvement over random with and without the protocol's augmentation
- N(x) = (e^x - e^-1) / (e - e^-1), which maps [-1, 1] onto [0, 1].

With fractions, IOR and HLR lie in [-1, 1], so the weighted sums do too and both scores lie in
[0, 1]. DD-Ranking's own code feeds percentages (its ``accuracy`` helper multiplies by 100) into
N, where an IOR of +10 points gives e^5, far outside [0, 1] (see :func:`normalized_score`).
Torch-free: the record (:class:`dcregistry.records.RankBlock`) and the harness both use these.
"""

from __future__ import annotations

import math

#: DD-Ranking's default weight of IOR against HLR (and of augmented against unaugmented).
DEFAULT_LAMBDA = 0.5


def normalized_score(x: float) -> float:
    """``(e^x - e^-1) / (e - e^-1)``: 0 at x = -1, 1 at x = 1 (monotone)."""
    return (math.exp(x) - math.exp(-1.0)) / (math.e - math.exp(-1.0))


def check_lambda(lam: float) -> float:
    """``lam`` if it is a weight in [0, 1]; ValueError otherwise."""
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not 0.0 <= lam <= 1.0:
        raise ValueError(f"lambda must be a number in [0, 1], got {lam!r}")
    return float(lam)


def lrs(ior: float, hlr: float, lam: float = DEFAULT_LAMBDA) -> float:
    """Label-robust score of fractions ``ior`` and ``hlr``: ``N(lam*IOR - (1-lam)*HLR)``."""
    check_lambda(lam)
    return normalized_score(lam * ior - (1.0 - lam) * hlr)


def ars(ior_aug: float, ior_noaug: float, lam: float = DEFAULT_LAMBDA) -> float:
    """Augmentation-robust score: ``N(lam*IOR_aug + (1-lam)*IOR_noaug)`` (fractions)."""
    check_lambda(lam)
    return normalized_score(lam * ior_aug + (1.0 - lam) * ior_noaug)
