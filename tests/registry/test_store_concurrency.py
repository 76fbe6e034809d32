"""Concurrent and crashing writers: parallel ``dcreg push`` processes, and pushes SIGKILLed at
every stage (through the DCREG_TEST_PAUSE_AT hook), never leave a partial or broken version."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dcregistry.store.local import PAUSE_STAGES, TEST_PAUSE_ENV, LocalStore

DCREG = Path(sys.executable).with_name("dcreg")


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "DCREG_HOME": str(home), **extra}
    if TEST_PAUSE_ENV not in extra:
        env.pop(TEST_PAUSE_ENV, None)
    return env


def _wait_for_line(proc: subprocess.Popen, marker: str, timeout: float = 60.0) -> str:
    """Read proc's stderr until a line containing ``marker`` (fail on exit or timeout)."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stderr, selectors.EVENT_READ)
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
            break
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            return line
    proc.kill()
    raise AssertionError(f"never saw {marker!r}; stderr: {''.join(seen)!r}, rc={proc.poll()}")


def _check_consistent(store: LocalStore, name: str) -> list[int]:
    """Every listed version verifies, list agrees with the version files; return the versions."""
    listed = store.list(name=name, all_versions=True)
    versions = [i.version for i in listed]
    assert versions == sorted(v for n, v in store.layout.scan() if n == name)
    for info in listed:
        assert store.verify(info.ref).digest == info.digest
    assert all(err is None for _, err in store.verify_all())
    return versions


def test_eight_concurrent_pushes_get_eight_versions(dcreg_home, make_artifact):
    arts = [make_artifact(seed=100 + i) for i in range(8)]
    procs = [
        subprocess.Popen(
            [str(DCREG), "push", str(a.path), "--name", "lab/conc"],
            env=_env(dcreg_home),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for a in arts
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [e for _, e in outs]
    by_digest = {}
    for (out, _), art in zip(outs, arts, strict=True):
        ref, digest = out.strip().split(" ")
        assert digest == art.digest
        by_digest[digest] = int(ref.split("@v")[1])
    assert sorted(by_digest.values()) == list(range(1, 9))
    store = LocalStore()
    assert _check_consistent(store, "lab/conc") == list(range(1, 9))
    for digest, version in by_digest.items():
        assert store.resolve(f"lab/conc@v{version}").digest == digest
    proc = subprocess.run(
        [str(DCREG), "verify", "--all"], env=_env(dcreg_home), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and proc.stdout.count("ok lab/conc@v") == 8


def test_concurrent_pushes_of_identical_content_make_one_version(dcreg_home, make_artifact):
    art = make_artifact(seed=7)
    procs = [
        subprocess.Popen(
            [str(DCREG), "push", str(art.path), "--name", "lab/same"],
            env=_env(dcreg_home),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4
    assert set(outs) == {f"lab/same@v1 {art.digest}\n"}
    assert _check_consistent(LocalStore(), "lab/same") == [1]


def _push_killed_at(dcreg_home, stage: str, path, name: str, *tags: str) -> None:
    """Run ``dcreg push`` in a process paused at ``stage`` and SIGKILL it there."""
    argv = [str(DCREG), "push", str(path), "--name", name]
    for t in tags:
        argv += ["--tag", t]
    proc = subprocess.Popen(
        argv,
        env=_env(dcreg_home, **{TEST_PAUSE_ENV: stage}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert stage in _wait_for_line(proc, "DCREG_TEST_PAUSED")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("stage", PAUSE_STAGES)
def test_push_killed_at_any_stage_leaves_store_consistent(dcreg_home, make_artifact, stage):
    store = LocalStore()
    first, second = make_artifact(seed=1), make_artifact(seed=2)
    store.push(first.path, "lab/k", tags=["stable"])
    _push_killed_at(dcreg_home, stage, second.path, "lab/k", "wip")

    versions = _check_consistent(store, "lab/k")
    if stage == "version-written":
        # the version file was renamed into place: v2 is complete with its tag (the index,
        # never updated, is repaired by the listing above)
        assert versions == [1, 2]
        assert store.resolve("lab/k@v2").digest == second.digest
        assert store.tags("lab/k") == {"latest": 2, "stable": 1, "wip": 2}
    else:
        assert versions == [1]  # no partial version visible, and no tag of it either
        assert store.tags("lab/k") == {"latest": 1, "stable": 1}
    if stage == "blob-write":
        assert [t.name for t in (store.root / "tmp").iterdir()]  # the dead writer's temp file

    # the lock died with the process: the next push goes through (and dedupes a complete v2)
    again = store.push(second.path, "lab/k", tags=["wip"])
    assert (again.version, again.created) == (2, stage != "version-written")
    assert store.tags("lab/k") == {"latest": 2, "stable": 1, "wip": 2}
    report = store.gc(dry_run=False)
    assert report.blobs == []  # nothing live was unreferenced
    assert list((store.root / "tmp").iterdir()) == []
    assert _check_consistent(store, "lab/k") == [1, 2]
    assert store.push(make_artifact(seed=3).path, "lab/k").version == 3


@pytest.mark.parametrize("stage", ["tags-logged", "version-written"])
def test_push_with_tags_is_all_or_nothing(dcreg_home, make_artifact, stage):
    """Killed after logging the tags of a new version but before its version file (or right
    after it): the version and its tags appear together, and a tag moved by the dead push stays
    where it was; a later push reusing the number never inherits the dead push's tags."""
    store = LocalStore()
    first, second = make_artifact(seed=1), make_artifact(seed=2)
    store.push(first.path, "lab/t", tags=["stable"])
    _push_killed_at(dcreg_home, stage, second.path, "lab/t", "stable", "new")
    if stage == "tags-logged":
        assert store.tags("lab/t") == {"latest": 1, "stable": 1}
        assert [i.version for i in store.list("lab/t", all_versions=True)] == [1]
        again = store.push(second.path, "lab/t")  # no tags this time
        assert (again.version, again.created) == (2, True)
        assert store.tags("lab/t") == {"latest": 2, "stable": 1}
        assert store.resolve("lab/t@v2").tags == ("latest",)
    else:
        assert store.tags("lab/t") == {"latest": 2, "new": 2, "stable": 2}
    assert store.verify_all().ok
