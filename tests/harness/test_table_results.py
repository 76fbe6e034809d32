"""harness.table.results.TableResults: exact round trips (the committed results.json files
included) and from_json refusing bad documents with the field named."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from dcregistry.records import RecordError
from harness.table.results import ProtocolResult, RowResult, SetResult, TableResults

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = [
    p for p in (ROOT / "results" / "results.json", ROOT / "results" / "ipc10-longer" / "results.json")
]


def _doc() -> dict:
    done = SetResult(
        name="dm-ipc1-s0-abc",
        seed=0,
        done=True,
        wall_time_s=3.5,
        s_per_iter=0.01,
        iterations=200,
        peak_memory_bytes=10,
        peak_memory_kind="ru_maxrss (whole process)",
        config_hash="sha256:" + "0" * 64,
        device="cpu",
        loss_first=2.0,
        loss_last=1.0,
        quality_warning=None,
        digest="sha256:" + "1" * 64,
        loadavg=[[1.0, 0.5, 0.25], [2.0, 1.0, 0.5]],
        process_wall_s=9.0,
    )
    row = RowResult(
        method="dm",
        ipc=1,
        iterations=200,
        options={},
        sets=[done, SetResult(name="dm-ipc1-s1-abc", seed=1, done=False)],
        protocols={
            "dc-noaug": ProtocolResult(
                protocol="dc-noaug@0123", epochs=50, runs={"0": 0.5, "1": 0.7}, n=2, mean=0.6, std=0.1
            )
        },
        wall_time_s=3.5,
        peak_memory_bytes=10,
        warnings=[],
    )
    res = TableResults(
        dataset="digits",
        image_size=32,
        model="convnet",
        runs=2,
        sets=2,
        epochs=50,
        protocols=["dc-noaug"],
        ipcs=[1],
        rows=[row],
        missing=["set dm-ipc1-s1-abc"],
        cpu_count=2,
        generated_at="2026-01-01T00:00:00Z",
    )
    return res.to_json()


def test_round_trip_is_exact():
    doc = _doc()
    res = TableResults.from_json(copy.deepcopy(doc))
    assert json.dumps(res.to_json(), sort_keys=True) == json.dumps(doc, sort_keys=True)
    assert TableResults.from_json(res.to_json()) == res
    assert res.measured_cells == 1
    assert set(doc["rows"][0]["sets"][1]) == {"name", "seed", "done"}  # an unfinished set


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.parent.name)
def test_committed_documents_round_trip_exactly(path):
    doc = json.loads(path.read_text())
    res = TableResults.from_json(doc)
    assert res.to_json() == doc  # written before quality checks: no quality_warning, no warnings
    assert res.measured_cells > 0


def _set(doc, path, value):
    root = d = copy.deepcopy(doc)
    *head, last = path
    for k in head:
        d = d[k]
    if value is KeyError:
        del d[last]
    else:
        d[last] = value
    return root


@pytest.mark.parametrize(
    "path, value, field",
    [
        (("runs",), "2", "results.runs"),
        (("dataset",), KeyError, "results.dataset"),
        (("surprise",), 1, "results.surprise"),
        (("rows",), {}, "results.rows"),
        (("rows", 0, "ipc"), 1.0, "results.rows[0].ipc"),
        (("rows", 0, "options", "x"), 1, "results.rows[0].options.x"),
        (
            ("rows", 0, "protocols", "dc-noaug", "mean"),
            float("nan"),
            "results.rows[0].protocols.dc-noaug.mean",
        ),
        (
            ("rows", 0, "protocols", "dc-noaug", "runs", "0"),
            None,
            "results.rows[0].protocols.dc-noaug.runs.0",
        ),
        (
            ("rows", 0, "protocols", "dc-noaug", "runs", "r1"),
            0.5,
            "results.rows[0].protocols.dc-noaug.runs.r1",
        ),
        (("rows", 0, "sets", 0, "done"), "yes", "results.rows[0].sets[0].done"),
        (("rows", 0, "sets", 0, "wall_time_s"), float("inf"), "results.rows[0].sets[0].wall_time_s"),
        (("rows", 0, "sets", 0, "loadavg"), [None], "results.rows[0].sets[0].loadavg"),
        (("rows", 0, "sets", 0, "colour"), "red", "results.rows[0].sets[0].colour"),
    ],
)
def test_from_json_names_the_bad_field(path, value, field):
    with pytest.raises(RecordError) as exc:
        TableResults.from_json(_set(_doc(), path, value))
    assert exc.value.field == field, str(exc.value)


def test_a_document_of_another_shape_is_refused():
    for doc in ([], "x", None, {"rows": []}):
        with pytest.raises(RecordError):
            TableResults.from_json(doc)
