"""The ``harness`` command line: evaluate artifacts under named protocols, list protocols."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from dcregistry.cli.common import emit_json, progress_disabled, run_cli

from . import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="harness")
def cli() -> None:
    """Evaluate condensed datasets under fixed, named, hashed protocols, and make them.

    Exit codes: 0 ok, 1 user error, 2 internal error.
    """


@cli.group("protocols", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def protocols_cmd(ctx: click.Context, as_json: bool) -> None:
    """List the built-in protocols (``protocols show NAME`` prints one)."""
    if ctx.invoked_subcommand is not None:
        return
    from .protocols import list_protocols, load_protocol

    protos = [load_protocol(n) for n in list_protocols()]
    if as_json:
        emit_json([p.to_record() | {"description": p.description} for p in protos])
        return
    width = max(len(p.id) for p in protos)
    for p in protos:
        click.echo(f"{p.id:<{width}}  {p.arch:<8} {p.augmentation:<9} {p.optimizer:<4} "
                   f"{p.epochs:>4}+1 ep  {p.runs} runs  lr {'learned' if p.lr_source == 'artifact' else p.lr}")


@protocols_cmd.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the resolved protocol as JSON.")
def protocols_show(name: str, as_json: bool) -> None:
    """Print a protocol's resolved content, id and frozen TOML."""
    from .protocols import load_protocol, protocol_toml

    p = load_protocol(name)
    if as_json:
        emit_json(p.to_record() | {"description": p.description})
        return
    click.echo(f"# id: {p.id}")
    click.echo(f"# {p.description}")
    click.echo(json.dumps(p.content(), indent=2, sort_keys=True))
    if not name.endswith(".toml"):
        click.echo("\n# frozen TOML:\n" + protocol_toml(name))


class DeviceParam(click.ParamType):
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
                self.fail(f"{text}: there are only {torch.cuda.device_count()} CUDA device(s) "
                          f"(cuda:0..cuda:{torch.cuda.device_count() - 1})", param, ctx)
        return text


DEVICE = DeviceParam()


def _progress_factory(disabled: bool, label: str, epochs_per_run: int):
    from tqdm.auto import tqdm

    def make(total: int, strategy: str):
        bar = tqdm(total=total, desc=f"{label} [{strategy}]", unit="ep", disable=disabled,
                   leave=False, dynamic_ncols=True)
        runs = max(1, total // epochs_per_run)

        def update(n: int) -> None:
            bar.update(n)
            bar.set_postfix_str(f"run {min(runs, bar.n // epochs_per_run + 1)}/{runs}", refresh=False)

        return update

    return make


@cli.command("eval")
@click.argument("ref")
@click.option("--protocol", "protocol_name", default="dsa", show_default=True,
              help="Protocol name (see `harness protocols`) or a TOML file.")
@click.option("--arch", default=None, help="Override the architecture (derived protocol).")
@click.option("--aug", default=None, help="Override the augmentation.")
@click.option("--optim", type=click.Choice(["sgd", "adam"]), default=None, help="Override the optimizer.")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Override the epochs.")
@click.option("--runs", type=click.IntRange(min=1), default=None, help="Override the number of runs.")
@click.option("--device", default="auto", show_default=True, type=DEVICE, help="auto, cpu or cuda[:N].")
@click.option("--strategy", type=click.Choice(["auto", "sequential", "compiled", "vmap", "processes"]),
              default="auto", show_default=True, help="How the runs are executed.")
@click.option("--data-root", type=click.Path(file_okay=False), default=None, envvar="HARNESS_DATA",
              help="Where the real datasets live (default $HARNESS_DATA or ~/.cache/harness/data).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None,
              help="Write the result record to this JSON file ('-' for stdout).")
@click.option("--record", is_flag=True, help="Attach the result to the artifact version in the store.")
@click.option("--baseline", is_flag=True,
              help="Also evaluate an equal-size random real subset and report the difference.")
@click.option("--store", "store_spec", default=None, help="Store for REF (default: local).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def eval_cmd(ref, protocol_name, arch, aug, optim, epochs, runs, device, strategy, data_root,
             json_out, record, baseline, store_spec, quiet) -> None:
    """Evaluate artifact REF (anything `dcreg pull` accepts) under a protocol."""
    from dcregistry.errors import UserError
    from dcregistry.store import get_store, resolve_ref

    from .engine.evaluate import evaluate, record_summary
    from .protocols import load_protocol

    protocol = load_protocol(protocol_name).with_overrides(
        arch=arch, augmentation=aug, optimizer=optim, epochs=epochs, runs=runs)
    # The one reference rule (dcregistry.refs): a store name means the store, a directory is
    # written as a path. Resolved once: the version evaluated is the version recorded.
    resolved = resolve_ref(ref, get_store(store_spec) if store_spec else None)
    if record and resolved.info is None:
        raise UserError("--record needs a store reference (ns/name[@v..]); push the directory first")
    artifact = resolved.open()
    canonical_ref = resolved.label
    store = resolved.store
    progress = _progress_factory(progress_disabled(quiet), f"eval {protocol.name}",
                                 protocol.epochs + 1)
    result = evaluate(artifact, protocol, ref=canonical_ref, device=device, data_root=data_root,
                      strategy=strategy, baseline=baseline, progress=progress)
    _print_table(result)
    if json_out == "-":
        emit_json(result)
    elif json_out:
        Path(json_out).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
        click.echo(f"result written to {json_out}", err=True)
    if record:
        assert store is not None and resolved.info is not None
        ann = store.annotate(resolved.info, "eval", result)
        click.echo(f"recorded on {canonical_ref} ({ann})", err=True)
    click.echo(record_summary(result), err=json_out == "-")


def _print_table(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True)
    table = Table(title=f"{result['artifact']['ref']} under {result['protocol']['id']}")
    table.add_column("seed", justify="right")
    table.add_column("accuracy %", justify="right")
    base = result.get("baseline")
    if base:
        table.add_column("random real %", justify="right")
    for i, (seed, acc) in enumerate(zip(result["seeds"], result["accuracies"])):
        row = [str(seed), f"{100 * acc:.2f}"]
        if base:
            row.append(f"{100 * base['accuracies'][i]:.2f}")
        table.add_row(*row)
    table.add_row("mean ± std", f"{100 * result['mean']:.2f} ± {100 * result['std']:.2f}",
                  *([f"{100 * base['mean']:.2f} ± {100 * base['std']:.2f}"] if base else []))
    console.print(table)
    console.print(f"device {result['device']}, strategy {result['strategy']['name']}, "
                  f"{result['wall_time_s']:.1f} s, clipped: {result['clipped']}")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    sys.exit(run_cli(cli, "harness", argv))
