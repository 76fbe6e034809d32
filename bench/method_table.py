"""The method comparison table on digits: a thin wrapper of ``harness table`` (same options).

python bench/method_table.py                 # the default table into results/ (resumable)
python bench/method_table.py --epochs 2 --runs 1 --methods random,dm --iterations dm=2
"""

from __future__ import annotations

import sys

from harness.cli import main

if __name__ == "__main__":
    main(["table", *sys.argv[1:]])
