"""The `harness` command line: protocols listing, eval errors as one-line exit-1 messages."""

from __future__ import annotations

import json

import torch
from click.testing import CliRunner

from harness.cli import cli, main
from harness.protocols import load_protocol


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_protocols_list_and_show():
    res = invoke("protocols")
    assert res.exit_code == 0
    assert load_protocol("dsa").id in res.output and "dcbench-autoaug-adam" in res.output
    shown = invoke("protocols", "show", "mtt", "--json")
    data = json.loads(shown.output)
    assert data["content"]["lr_source"] == "artifact" and data["id"] == load_protocol("mtt").id
    assert "frozen TOML" in invoke("protocols", "show", "dsa").output


def _exit(argv, capsys) -> tuple[int, str]:
    try:
        main(argv)
    except SystemExit as exc:
        return exc.code, capsys.readouterr().err
    raise AssertionError("main() did not exit")


def test_eval_user_errors_exit_1_with_one_line(digits_art, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DCREG_HOME", str(tmp_path / "home"))
    for argv, expect in [
        (["protocols", "show", "nope"], "unknown protocol"),
        (["eval", str(digits_art.path), "--protocol", "nope"], "unknown protocol"),
        (["eval", str(digits_art.path), "--arch", "convnet-q9"], "convnet"),
        (["eval", "me/missing"], "me/missing"),
        (["eval", "Bad Name"], "invalid"),
        (["eval", str(digits_art.path), "--record"], "--record needs a store reference"),
    ] + (
        []
        if torch.cuda.is_available()
        else [
            # Only where torch sees no CUDA; tiny epochs/runs so that a CUDA machine would not
            # run a full protocol even if this case were reached there.
            (["eval", str(digits_art.path), "--device", "cuda", "--epochs", "1", "--runs", "1"], "CUDA"),
        ]
    ):
        code, err = _exit(argv, capsys)
        assert code == 1, (argv, err)
        assert expect in err and err.count("\n") == 1, (argv, err)


def test_eval_missing_dataset_says_where_to_put_files(tmp_path, capsys, monkeypatch):
    import numpy as np

    from dcregistry.artifact import build_artifact

    monkeypatch.setenv("HARNESS_DATA", str(tmp_path / "empty"))
    art = build_artifact(
        tmp_path / "c10",
        {"images": np.zeros((10, 3, 32, 32), np.float32), "labels": np.arange(10, dtype=np.int64)},
        {
            "dataset": "cifar10",
            "image_shape": [3, 32, 32],
            "ipc": 1,
            "method": "dc",
            "pixel_space": {
                "kind": "normalized",
                "mean": [0.4914, 0.4822, 0.4465],
                "std": [0.2023, 0.1994, 0.2010],
            },
            "label_kind": "hard",
            "seed": 0,
        },
    )
    code, err = _exit(["eval", str(art.path), "--epochs", "1", "--runs", "1"], capsys)
    assert code == 1 and "cifar-10-batches-py" in err and err.count("\n") == 1


def test_eval_json_to_stdout(digits_art, capsys):
    code, _ = _exit(
        [
            "eval",
            str(digits_art.path),
            "--protocol",
            "dc-noaug",
            "--epochs",
            "1",
            "--runs",
            "1",
            "--json",
            "-",
            "--quiet",
        ],
        capsys,
    )
    assert code == 0
