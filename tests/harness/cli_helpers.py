"""Running the `harness` CLI in-process from tests."""

from __future__ import annotations


def run_harness(argv, capsys) -> tuple[int, str, str]:
    """Run ``harness ARGV`` in this process; return (exit code, stdout, stderr)."""
    from harness.cli import main

    try:
        main([str(a) for a in argv])
    except SystemExit as exc:
        cap = capsys.readouterr()
        return exc.code, cap.out, cap.err
    raise AssertionError("main() did not exit")


def run_table_smoke(capsys, name, results, out=None, *extra, workers=1) -> tuple[int, str, str]:
    """``harness table run NAME --budget smoke --workers W --results RESULTS [-o OUT] -q EXTRA``."""
    argv = ["table", "run", name, "--budget", "smoke", "--workers", workers, "--results", results]
    if out is not None:
        argv += ["-o", out]
    return run_harness([*argv, "-q", *extra], capsys)
