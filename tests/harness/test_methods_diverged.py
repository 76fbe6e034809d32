"""A synthesis run that reaches non-finite pixels or an unusable learned lr stops at once with one
line (exit 1), instead of finishing the budget and failing when the artifact is built."""

from __future__ import annotations

import re

import torch

from harness.methods import get_method

from .cli_helpers import run_harness


def test_an_option_beyond_float32_is_refused(tmp_path, capsys):
    code, _, err = run_harness(
        [
            "condense",
            "digits",
            "--method",
            "dm",
            "--ipc",
            "1",
            "--option",
            "lr_img=1e39",
            "-o",
            tmp_path / "x",
            "-q",
        ],
        capsys,
    )
    assert code == 1 and "lr_img='1e39': must be within" in err and len(err.strip().splitlines()) == 1, err


def test_dm_with_an_overflowing_lr_stops_at_the_first_iteration(tmp_path, capsys):
    out = tmp_path / "dm"
    code, _, err = run_harness(
        [
            "condense",
            "digits",
            "--method",
            "dm",
            "--ipc",
            "1",
            "--iterations",
            "50",
            "--image-size",
            "8",
            "--option",
            "lr_img=3e38",
            "--option",
            "compile=false",
            "-o",
            out,
            "-q",
        ],
        capsys,
    )
    assert code == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and re.search(
        r"dm diverged at iteration [12]: the (loss is nan|synthetic images hold NaN or inf)", lines[0]
    ), err
    assert "no artifact was written" in lines[0]
    assert not (out / "metadata.json").exists()


def test_a_negative_or_nan_learned_lr_and_nan_pixels_are_named():
    mtt = get_method("mtt")
    ok = {"images": torch.zeros(2, 1, 4, 4), "labels": torch.tensor([0, 1]), "lr": torch.tensor(0.01)}
    assert mtt.diverged(ok) is None
    assert "learned lr is -0.002" in mtt.diverged(dict(ok, lr=torch.tensor(-0.002)))
    assert "learned lr is nan" in mtt.diverged(dict(ok, lr=torch.tensor(float("nan"))))
    assert "learned lr is 0" in mtt.diverged(dict(ok, lr=torch.tensor(0.0)))
    bad = ok["images"].clone()
    bad[1, 0, 2, 3] = float("inf")
    assert "NaN or inf" in get_method("dc").diverged(dict(ok, images=bad))
