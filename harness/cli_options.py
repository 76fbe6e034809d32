"""Options several `harness` commands share (``--device``, ``--data-root``), defined once; a
module of their own so that command groups in subpackages (``harness.sweep.cli``) use them too."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    _StrParamType = click.ParamType[str]
else:  # older click (pyproject allows >= 8.1): ParamType is not subscriptable at runtime
    _StrParamType = click.ParamType


class DeviceParam(_StrParamType):
    """``--device``: auto, cpu, cuda or cuda:N (N an existing CUDA device), checked up front."""

    name = "device"

    def convert(self, value, param, ctx):
        import re

        text = str(value)
        m = re.fullmatch(r"auto|cpu|cuda(?::([0-9]{1,4}))?", text)
        if not m:
            self.fail(f"{text!r} is not a device: use auto, cpu, cuda or cuda:N", param, ctx)
        if text.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                self.fail(f"{text}: torch sees no CUDA device; use cpu", param, ctx)
            if m.group(1) is not None and int(m.group(1)) >= torch.cuda.device_count():
                self.fail(
                    f"{text}: there are only {torch.cuda.device_count()} CUDA device(s) "
                    f"(cuda:0..cuda:{torch.cuda.device_count() - 1})",
                    param,
                    ctx,
                )
        return text


DEVICE = DeviceParam()

#: The options several commands share, defined once.
device_option = click.option(
    "--device", default="auto", show_default=True, type=DEVICE, help="auto, cpu or cuda[:N]."
)
data_root_option = click.option(
    "--data-root",
    type=click.Path(file_okay=False),
    default=None,
    envvar="HARNESS_DATA",
    help="Where the real datasets live (default $HARNESS_DATA or ~/.cache/harness/data).",
)
