"""harness.engine.allocator: glibc keeps large freed blocks for reuse (a process-wide setting,
so each case runs in its own interpreter)."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc-only tuning")

PROBE = """
import json, time
from harness.engine.allocator import tune_allocator, allocator_tuned
before = allocator_tuned()
applied = tune_allocator()
import torch
big = 64 << 20  # above glibc's largest mmap threshold (32 MiB)
for _ in range(12):  # glibc's heap reaches its steady state after a few rounds (measured: 8)
    t = torch.empty(big // 4).fill_(1.0); del t
with open("/proc/self/stat") as f:
    minflt0 = int(f.read().rsplit(")", 1)[1].split()[7])
for _ in range(5):
    t = torch.empty(big // 4).fill_(1.0); del t
with open("/proc/self/stat") as f:
    minflt1 = int(f.read().rsplit(")", 1)[1].split()[7])
print(json.dumps({"before": before, "applied": applied, "again": tune_allocator(),
                  "tuned": allocator_tuned(), "faults": minflt1 - minflt0}))
"""


def _probe(env_extra: dict[str, str]) -> dict:
    import os

    env = {**os.environ, **env_extra}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_tuned_allocator_reuses_large_blocks_without_page_faults():
    tuned = _probe({"HARNESS_MALLOC": ""})
    assert tuned["applied"] and tuned["again"] and tuned["tuned"] and not tuned["before"]
    system = _probe({"HARNESS_MALLOC": "system"})
    assert not system["applied"] and not system["tuned"]
    # 5 x 64 MiB re-allocated: glibc's default maps fresh pages every time (16k faults each);
    # tuned, a freed block is reused once the heap has settled
    assert system["faults"] > 5 * 10_000
    assert tuned["faults"] < 2_000
