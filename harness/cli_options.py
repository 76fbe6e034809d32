"""Options several `harness` commands share (``--device``, ``--data-root``, the protocol
overrides ``--arch --aug --optim --epochs --runs``), defined once; a
module of their own so that command groups in subpackages (``harness.sweep.cli``) use them too."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from harness.protocols import Protocol

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

# The shapes dcreg and harness share (--json, --quiet, --store) are dcreg's own.
from dcregistry.cli.common import json_option as json_option  # noqa: E402
from dcregistry.cli.common import quiet_option as quiet_option  # noqa: E402
from dcregistry.cli.common import store_option as store_option  # noqa: E402

#: ``--json FILE`` ('-': stdout): where a command writes its JSON record or report.
json_file_option = click.option(
    "--json",
    "json_out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the JSON (report or record) to this file ('-' for stdout).",
)


def write_json(data: object, json_out: str | None) -> None:
    """Write ``data`` where ``--json`` says (nothing without it)."""
    import json
    from pathlib import Path

    from dcregistry.cli.common import emit_json

    if json_out == "-":
        emit_json(data)
    elif json_out:
        Path(json_out).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        click.echo(f"written to {json_out}", err=True)


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


@dataclass(frozen=True)
class ProtocolOverrides:
    """What ``--arch --aug --optim --epochs --runs`` asked for (None: the protocol's own)."""

    arch: str | None = None
    aug: str | None = None
    optim: str | None = None
    epochs: int | None = None
    runs: int | None = None

    def apply(self, protocol: Protocol) -> Protocol:
        """The derived protocol (its own name and hash), or ``protocol`` itself if none is given."""
        return protocol.with_overrides(
            arch=self.arch, augmentation=self.aug, optimizer=self.optim, epochs=self.epochs, runs=self.runs
        )


def apply_overrides(protocol: Protocol, overrides: ProtocolOverrides | None) -> Protocol:
    """``protocol`` with the command line's overrides (the one place they are applied)."""
    return overrides.apply(protocol) if overrides is not None else protocol


_OVERRIDE_FIELDS = ("arch", "aug", "optim", "epochs", "runs")
_OVERRIDE_OPTIONS = (
    click.option("--arch", default=None, help="Override the architecture (derived protocol)."),
    click.option("--aug", default=None, help="Override the augmentation."),
    click.option("--optim", type=click.Choice(["sgd", "adam"]), default=None, help="Override the optimizer."),
    click.option("--epochs", type=click.IntRange(min=1), default=None, help="Override the epochs."),
    click.option("--runs", type=click.IntRange(min=1), default=None, help="Override the number of runs."),
)


def protocol_override_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--arch --aug --optim --epochs --runs``, handed to the command as one ``overrides``
    keyword (a :class:`ProtocolOverrides`); apply them with :func:`apply_overrides`."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        kwargs["overrides"] = ProtocolOverrides(**{k: kwargs.pop(k) for k in _OVERRIDE_FIELDS})
        return f(*args, **kwargs)

    for option in reversed(_OVERRIDE_OPTIONS):
        wrapper = option(wrapper)
    return wrapper
