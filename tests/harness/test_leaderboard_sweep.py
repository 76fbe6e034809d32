"""``harness leaderboard`` over the results of a real (tiny) sweep: what the sweep writes is what
the leaderboard reads, and the command is the dcregistry builder's."""

from __future__ import annotations

import re
import statistics

from dcregistry.leaderboard import ResultsDirSource, collect

from .sweep_helpers import cell_files, make_store, run_sweep_in_process, write_spec


def test_harness_leaderboard_over_a_tiny_sweep(tmp_path):
    from harness.cli import main

    store, digests = make_store(tmp_path)
    spec = write_spec(
        tmp_path / "s.toml", store, protocols='[{ name = "dc-noaug", epochs = 2 }]', seeds="[0, 1]"
    )
    results = tmp_path / "results"
    run_sweep_in_process(spec, results)
    assert len(cell_files(results)) == 4

    c = collect([ResultsDirSource(results)])
    assert c.problems == [] and c.failed == 0 and len(c.rows) == 2
    for row in c.rows.values():
        assert row.digest in digests and row.seeds == [0, 1]
        assert row.mean_std[1] == statistics.pstdev(row.accuracies)

    out = tmp_path / "site"
    try:
        main(["leaderboard", "--results", str(results), "--store", str(store), "-o", str(out)])
    except SystemExit as exc:
        assert exc.code == 0
    page = (out / "d" / "digits.html").read_text()
    assert len(re.findall(r'<table class="sortable"', page)) == 1  # one protocol: one table
    for d in digests:
        assert (out / "a" / f"{d[7:]}.png").is_file() and (out / "a" / f"{d[7:]}.md").is_file()
