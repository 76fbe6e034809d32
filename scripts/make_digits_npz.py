"""Write a class-balanced random subset of scikit-learn's digits as a plain .npz (for the demo).

Usage: python scripts/make_digits_npz.py OUT.npz [--ipc 10] [--seed 0]
"""

import argparse

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out")
    ap.add_argument("--ipc", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    d = load_digits()
    # The harness's fixed split: only training images may be selected.
    x_train, _, y_train, _ = train_test_split(
        d.images / 16.0, d.target, test_size=0.25, stratify=d.target, random_state=0
    )
    rng = np.random.default_rng(args.seed)
    idx = np.concatenate(
        [rng.choice(np.flatnonzero(y_train == c), args.ipc, replace=False) for c in range(10)]
    )
    np.savez(args.out, images=x_train[idx][:, None].astype(np.float32), labels=y_train[idx].astype(np.int64))
    print(f"wrote {args.out}: {len(idx)} images ({args.ipc} per class)")


if __name__ == "__main__":
    main()
