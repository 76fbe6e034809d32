"""The leaderboard builder (dcregistry.leaderboard): collection and aggregation, tables (one
protocol per table, rank columns only when recorded), escaping of hostile strings, unreachable
artifacts, failed cells and bad files, results-repo sources, and the ``dcreg leaderboard`` CLI.
The browser checks are in tests/server/test_leaderboard_browser.py."""

from __future__ import annotations

import json
import re
import statistics
from html.parser import HTMLParser
from pathlib import Path

import pytest

from dcregistry.leaderboard import FilesSource, ResultsDirSource, build_site, collect
from dcregistry.leaderboard.html import esc
from dcregistry.results import record_bytes

from .leaderboard_helpers import HOSTILE, P_DSA, P_NOAUG, SETS, make_results


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return make_results(tmp_path_factory.mktemp("lb"))


@pytest.fixture(scope="module")
def site(made):
    results, store, _ = made
    return build_site([ResultsDirSource(results)], str(store))


class Tables(HTMLParser):
    """Every <table>: its attributes, header texts and rows (cell texts)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[dict] = []
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self._head = False

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append({"attrs": dict(attrs), "head": [], "rows": []})
        elif tag == "tr" and self.tables:
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []
            self._head = tag == "th"

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self.tables:
            t = self.tables[-1]
            (t["head"] if self._head and not t["head"] else t["rows"]).append(
                self._row
            ) if self._row else None
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def tables(html: bytes) -> list[dict]:
    p = Tables()
    p.feed(html.decode())
    for t in p.tables:
        t["head"] = t["head"][0] if t["head"] else []
    return p.tables


def test_rows_group_seeds_per_artifact_and_protocol_never_across_protocols(made):
    results, _, digests = made
    c = collect([ResultsDirSource(results)])
    expected = {
        (digests[name], pid): accs for name, _m, _i, _s, protos in SETS for pid, accs in protos.items()
    }
    assert set(c.rows) == set(expected)
    for key, accs in expected.items():
        row = c.rows[key]
        assert row.protocol_id == key[1] and all(cell.record.protocol_id == key[1] for cell in row.cells)
        assert row.seeds == list(range(len(accs))) and row.runs == len(accs)
        mean, std = row.mean_std
        assert mean == pytest.approx(statistics.fmean(accs))
        assert std == pytest.approx(statistics.pstdev(accs))  # over seeds, as harness results ls
    # the herding IPC 1 set has two rows with their own numbers: protocols are never averaged
    h = digests["lab/digits-herding-ipc1"]
    assert c.rows[(h, P_NOAUG)].mean_std[0] == pytest.approx(0.56)
    assert c.rows[(h, P_DSA)].mean_std[0] == pytest.approx(0.61)
    assert c.failed == 0 and c.problems == [] and c.duplicates == 0


def test_one_table_per_protocol_and_rank_columns_only_when_recorded(site, made):
    _, _, digests = made
    page = site.files["d/digits.html"]
    ts = [t for t in tables(page) if t["attrs"].get("class") == "sortable"]
    assert len(ts) == 3  # IPC 1: dc-noaug, dsa; IPC 5: dc-noaug
    for t in ts:
        pid = t["attrs"]["data-protocol"]
        col = t["head"].index("protocol")
        assert {r[col] for r in t["rows"]} == {pid}
    by = {(t["attrs"]["id"], t["attrs"]["data-protocol"]): t for t in ts}
    ipc1_noaug = by[("table-0", P_NOAUG)]
    assert "IOR (pt)" in ipc1_noaug["head"] and "LRS" in ipc1_noaug["head"]
    row = {r[0]: r for r in ipc1_noaug["rows"]}
    ior = row["herding"][ipc1_noaug["head"].index("IOR (pt)")]
    assert ior == "+26.00 ± 0.82"  # per-seed IOR (set - random 0.30), mean ± std over seeds
    assert row["random"][ipc1_noaug["head"].index("IOR (pt)")] == "–"
    assert row["herding"][ipc1_noaug["head"].index("accuracy (%)")] == "56.00 ± 0.82"
    assert row["herding"][ipc1_noaug["head"].index("condensation time")] == "13.5 s"
    assert row["herding"][ipc1_noaug["head"].index("peak memory")] == "50.0 MiB"
    for key, t in by.items():
        if key != ("table-0", P_NOAUG):
            assert "IOR (pt)" not in t["head"] and "LRS" not in t["head"], key
    # sorted by accuracy, best first, on the page as built
    ipc5 = by[("table-2", P_NOAUG)]
    accs = [float(r[ipc5["head"].index("accuracy (%)")].split()[0]) for r in ipc5["rows"]]
    assert accs == sorted(accs, reverse=True) == [81.0, 72.0, 61.0]


def test_plots_are_inline_svg_one_per_protocol(site):
    page = site.files["d/digits.html"].decode()
    figs = re.findall(r'<figure id="plot-\d+" data-protocol="([^"]+)"><svg', page)
    assert sorted(figs) == sorted([P_DSA, P_NOAUG])
    # the dc-noaug plot has random at IPC 1 and 5 joined by a line, with error bars
    noaug = page.split(f'data-protocol="{P_NOAUG}"><svg')[1].split("</svg>")[0]
    assert "<polyline" in noaug and noaug.count("<circle") == 5


def test_hostile_strings_are_escaped_everywhere(site):
    raw = ["<script>window", "<img src=x", 'onerror="window', "\x07", "javascript:"]
    for path, data in site.files.items():
        if not path.endswith(".html"):
            continue
        text = data.decode()
        for bad in raw:
            if bad == "javascript:":  # shown as text in the card, never as a link
                assert 'href="javascript:' not in text, path
                continue
            assert bad not in text, (path, bad)
        assert "<script" not in text.replace('<script src="', "").replace("<script src='", ""), path
    ds = site.files["d/digits.html"].decode()
    assert esc(HOSTILE) in ds and "\\x07" in ds  # the control character shown, not sent
    assert 'content="default-src &#39;none&#39;; script-src &#39;self&#39;' in ds


def test_esc_covers_quotes_controls_and_surrogates():
    assert esc("<a href='x' title=\"y\">&") == "&lt;a href=&#39;x&#39; title=&quot;y&quot;&gt;&amp;"
    assert esc("a\x00b\x1bc\x7fd\u2028e\u202ef") == "a\\x00b\\x1bc\\x7fd\ufffde\ufffdf"
    assert esc("\ud800") == "?"


def test_artifact_pages_link_cards_or_say_the_set_is_unreachable(site, made):
    _, _, digests = made
    here = digests["lab/digits-random-ipc1"][7:]
    page = site.files[f"a/{here}.html"].decode()
    assert 'id="card"' in page and f'href="{here}.md"' in page and f'src="{here}.png"' in page
    assert site.files[f"a/{here}.png"].startswith(b"\x89PNG")
    assert "lab/digits-random-ipc1@v1" in site.files[f"a/{here}.md"].decode()
    gone = digests["lab/digits-gone"][7:]
    page = site.files[f"a/{gone}.html"].decode()
    assert 'id="no-card"' in page and "not in a reachable store" in page and "lab/digits-gone@v1" in page
    assert f"a/{gone}.png" not in site.files and f"a/{gone}.md" not in site.files
    # every relative link of every page names a file of the site
    for path, data in site.files.items():
        if path.endswith(".html"):
            base = Path(path).parent
            for href in re.findall(r'(?:href|src)="([^"#?]+)"', data.decode()):
                if "://" in href:
                    continue
                target = (base / href).as_posix()
                while "/../" in "/" + target or target.startswith("../"):
                    target = re.sub(r"(^|/)[^/]+/\.\./", r"\1", target, count=1)
                    target = target.removeprefix("../")
                assert target in site.files, (path, href)


def test_failed_cells_bad_files_and_duplicates_are_not_rows(made, tmp_path):
    results, store, digests = made
    import shutil

    mine = tmp_path / "results"
    shutil.copytree(results, mine)
    one = next(mine.glob("digits/ipc1/*/*/seed0.json"))
    good = json.loads(one.read_text())
    failed = {
        "kind": "harness-sweep-failed/1",
        "status": "failed",
        "error": "boom",
        "cell": {**good["cell"], "seed": 7},
        "artifact": good["artifact"],
    }
    (one.parent / "seed7.json").write_text(json.dumps(failed))
    (one.parent / "seed8.json").write_text("{not json")
    misplaced = dict(good)
    (one.parent / "seed9.json").write_text(json.dumps(misplaced))  # holds seed 0's record
    (one.parent / "seed10.json").symlink_to(one)
    repo = FilesSource("repo", lambda: [(str(one.relative_to(mine)), record_bytes(good))])
    c = collect([ResultsDirSource(mine), repo])
    assert c.failed == 1 and c.duplicates == 1
    assert sorted(Path(p.path).name for p in c.problems) == ["seed10.json", "seed8.json", "seed9.json"]
    assert sum(r.runs for r in c.rows.values()) == sum(len(a) for *_, p in SETS for a in p.values())
    site = build_site([ResultsDirSource(mine)], None, grids=False)
    index = site.files["index.html"].decode()
    assert "1 failed cell(s)" in index and 'id="problems"' in index and "seed8.json" in index
    assert "5 set(s) are not in a reachable store" in index  # no store given


def test_a_results_repo_source_reads_one_line_records(made):
    results, _, _ = made
    files = []
    for p in sorted(results.glob("*/ipc*/*/*/seed*.json")):
        files.append((p.relative_to(results).as_posix(), record_bytes(json.loads(p.read_text()))))
    a = collect([ResultsDirSource(results)])
    b = collect([FilesSource("results repo lab/r", lambda: files)])
    assert {k: r.accuracies for k, r in a.rows.items()} == {k: r.accuracies for k, r in b.rows.items()}


def test_a_folder_of_sweeps_is_read_sweep_by_sweep(made, tmp_path):
    import shutil

    results, _, _ = made
    shutil.copytree(results, tmp_path / "sweep-results" / "one")
    c = collect([ResultsDirSource(tmp_path / "sweep-results")])
    assert len(c.rows) == len(collect([ResultsDirSource(results)]).rows) and not c.problems


def test_dcreg_leaderboard_cli(made, tmp_path):
    from click.testing import CliRunner

    from dcregistry.cli import cli, leaderboard_cmd  # noqa: F401 (registers the command)
    from dcregistry.cli.common import run_cli

    results, store, _ = made
    with CliRunner().isolation() as (out, err, _):
        code = run_cli(
            cli, "dcreg", ["leaderboard", str(results), "--store", str(store), "-o", str(tmp_path / "site")]
        )
    assert code == 0, err.getvalue()
    assert "7 rows (5 sets, 20 evaluations)" in out.getvalue().decode()
    assert (tmp_path / "site" / "index.html").is_file() and (
        tmp_path / "site" / "d" / "digits.html"
    ).is_file()
    with CliRunner().isolation() as (out, err, _):
        code = run_cli(cli, "dcreg", ["leaderboard", str(tmp_path / "nope"), "-o", str(tmp_path / "s2")])
    assert code == 1 and "no such results directory" in err.getvalue().decode()


def test_dcreg_leaderboard_looks_artifacts_up_in_the_default_store(made, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from dcregistry.cli import cli, leaderboard_cmd  # noqa: F401 (registers the command)
    from dcregistry.cli.common import run_cli

    results, store, digests = made
    monkeypatch.setenv("DCREG_HOME", str(store))
    monkeypatch.delenv("DCREG_STORE", raising=False)
    with CliRunner().isolation() as (_out, err, _):
        code = run_cli(cli, "dcreg", ["leaderboard", "--results", str(results), "-o", str(tmp_path / "s")])
    assert code == 0, err.getvalue()
    assert (tmp_path / "s" / "a" / f"{digests['lab/digits-random-ipc1'][7:]}.png").is_file()


def test_results_recorded_on_the_store_are_split_per_seed_and_counted_once(made, tmp_path):
    import shutil

    from dcregistry.leaderboard.annotations import StoreAnnotationsSource
    from dcregistry.records import EvalRecord, RankBlock
    from dcregistry.store import LocalStore

    results, store_dir, digests = made
    store = LocalStore(tmp_path / "store")
    shutil.copytree(store_dir, tmp_path / "store", dirs_exist_ok=True)
    name = "lab/digits-random-ipc1"
    rank = RankBlock(
        lam=0.5, labels="hard", set_acc=[0.4, 0.44, 0.42], random_acc=[0.3, 0.3, 0.32],
        set_hard_acc=[0.4, 0.44, 0.42], full_acc=[0.95, 0.95, 0.95],
    )  # fmt: skip
    merged = EvalRecord(
        artifact={
            "ref": f"{name}@v1",
            "digest": digests[name],
            "dataset": "digits",
            "method": "random",
            "ipc": 1,
        },
        protocol={"id": P_NOAUG, "name": "dc-noaug", "content": {"arch": "convnet"}},
        seeds=[0, 1, 2],
        accuracies=[0.40, 0.44, 0.42],
        mean=0.42,
        std=0.016,
        device="cpu",
        rank=rank,
    )
    store.annotate(f"{name}@v1", "eval", merged.to_json())
    store.annotate(f"{name}@v1", "eval", {"kind": "dcreg-eval/1", "protocol": "broken"})
    only = collect([StoreAnnotationsSource(store)])
    (row,) = only.rows.values()
    assert row.seeds == [0, 1, 2] and row.mean_std[0] == pytest.approx(0.42)
    ior = row.rank("ior")
    assert ior is not None and ior[0] == pytest.approx(statistics.fmean([0.10, 0.14, 0.10]))
    assert len(only.problems) == 1 and "annotation" in only.problems[0].path
    both = collect([ResultsDirSource(results), StoreAnnotationsSource(store)])
    assert both.duplicates == 3 and len(both.rows) == len(collect([ResultsDirSource(results)]).rows)
