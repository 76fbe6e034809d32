"""The DC Table 1 comparison on digits: a thin wrapper of ``harness table run dc-coreset``.

python bench/method_table.py                              # quick budget into table-results/
python bench/method_table.py --budget smoke -o tables     # does every cell run (about a minute)
"""

from __future__ import annotations

import sys

from harness.cli import main

if __name__ == "__main__":
    main(["table", "run", "dc-coreset", *sys.argv[1:]])
