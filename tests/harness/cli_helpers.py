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
