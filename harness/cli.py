"""The ``harness`` command line: evaluate artifacts under named protocols, list protocols."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from dcregistry.cli.common import emit_json, progress_disabled, run_cli

from . import __version__
from .cli_options import (  # noqa: F401  (re-exported)
    DEVICE,
    DeviceParam,
    apply_overrides,
    data_root_option,
    device_option,
    protocol_override_options,
)
from .cli_output import print_eval_table as _print_table
from .cli_output import progress_factory as _progress_factory


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
        click.echo(
            f"{p.id:<{width}}  {p.arch:<8} {p.augmentation:<9} {p.optimizer:<4} "
            f"{p.epochs:>4}+1 ep  {p.runs} runs  lr {'learned' if p.lr_source == 'artifact' else p.lr}"
        )


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


@cli.command("strategies")
def strategies_cmd() -> None:
    """List the ways the runs of a protocol can be executed (chosen by measurement under auto)."""
    from .engine.strategies import STRATEGIES, strategy_names

    names = strategy_names()
    width = max(len(n) for n in names)
    for n in names:
        click.echo(f"{n:<{width}}  {STRATEGIES.get(n).description}")


@cli.command("eval")
@click.argument("ref")
@click.option(
    "--protocol",
    "protocol_name",
    default="dsa",
    show_default=True,
    help="Protocol name (see `harness protocols`) or a TOML file.",
)
@protocol_override_options
@device_option
@click.option(
    "--strategy",
    default="auto",
    show_default=True,
    help="How the runs are executed: auto (measured) or a name from `harness strategies`.",
)
@data_root_option
@click.option(
    "--json",
    "json_out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the result record to this JSON file ('-' for stdout).",
)
@click.option("--record", is_flag=True, help="Attach the result to the artifact version in the store.")
@click.option(
    "--baseline",
    is_flag=True,
    help="Also evaluate an equal-size random real subset and report the difference.",
)
@click.option("--store", "store_spec", default=None, help="Store for REF (default: local).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def eval_cmd(
    ref,
    protocol_name,
    overrides,
    device,
    strategy,
    data_root,
    json_out,
    record,
    baseline,
    store_spec,
    quiet,
) -> None:
    """Evaluate artifact REF (anything `dcreg pull` accepts) under a protocol."""
    from dcregistry.errors import UserError
    from dcregistry.store import get_store, resolve_ref

    from .engine.evaluate import evaluate
    from .protocols import load_protocol

    protocol = apply_overrides(load_protocol(protocol_name), overrides)
    # The one reference rule (dcregistry.refs): a store name means the store, a directory is
    # written as a path. Resolved once: the version evaluated is the version recorded.
    resolved = resolve_ref(ref, get_store(store_spec) if store_spec else None)
    if record and resolved.info is None:
        raise UserError("--record needs a store reference (ns/name[@v..]); push the directory first")
    if record:  # before any training: a store that keeps no results is known now
        assert resolved.store is not None
        resolved.store.require("annotate", "--record")
    artifact = resolved.open()
    canonical_ref = resolved.label
    store = resolved.store
    progress = _progress_factory(progress_disabled(quiet), f"eval {protocol.name}", protocol.epochs + 1)
    result = evaluate(
        artifact,
        protocol,
        ref=canonical_ref,
        device=device,
        data_root=data_root,
        strategy=strategy,
        baseline=baseline,
        progress=progress,
    )
    _print_table(result)
    data = result.to_json()
    if json_out == "-":
        emit_json(data)
    elif json_out:
        Path(json_out).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        click.echo(f"result written to {json_out}", err=True)
    if record:
        assert store is not None and resolved.info is not None
        ann = store.require("annotate", "--record").annotate(resolved.info, "eval", data)
        click.echo(f"recorded on {canonical_ref} ({ann})", err=True)
    click.echo(result.summary(), err=json_out == "-")


@cli.command("condense")
@click.argument("dataset")
@click.option("--method", "-m", required=True, help="Method name (see `harness methods`).")
@click.option("--ipc", type=click.IntRange(min=1), required=True, help="Images per class.")
@click.option(
    "--out", "-o", type=click.Path(file_okay=False), required=True, help="Artifact directory to write."
)
@click.option(
    "--iterations",
    type=click.IntRange(min=0),
    default=None,
    help="Outer iterations (synthesis methods; default: the method's published value).",
)
@click.option("--model", default="convnet", show_default=True, help="Network the method uses.")
@click.option(
    "--init",
    default="real",
    show_default=True,
    help="Initial images of a synthesis method: real (random real images), noise, a selection "
    "method's set (random, herding, kcenter, forgetting: run with its defaults), or an artifact "
    "reference.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@device_option
@data_root_option
@click.option(
    "--image-size",
    type=click.IntRange(min=1),
    default=None,
    help="Resize the real images to this size (e.g. 32 for digits).",
)
@click.option(
    "--option",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="A method option (see `harness methods show M`); repeatable.",
)
@click.option(
    "--checkpoint-every",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Save a checkpoint every N iterations (0: never).",
)
@click.option("--resume", is_flag=True, help="Continue from the checkpoint in the output directory.")
@click.option(
    "--eval-every",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Evaluate on the validation split every N iterations and keep the best set.",
)
@click.option(
    "--protocol", "protocol_name", default=None, help="Protocol for --eval-every (name or TOML file)."
)
@click.option(
    "--eval-epochs",
    type=click.IntRange(min=1),
    default=None,
    help="Override the validation protocol's epochs.",
)
@click.option(
    "--eval-runs", type=click.IntRange(min=1), default=None, help="Override the validation protocol's runs."
)
@click.option("--push", "push_name", default=None, metavar="NS/NAME", help="Push the artifact.")
@click.option("--tag", "tags", multiple=True, help="Tag for --push; repeatable.")
@click.option("--store", "store_spec", default=None, help="Store for --push and --init REF.")
@click.option("--overwrite", is_flag=True, help="Replace an existing artifact directory.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def condense_cmd(
    dataset,
    method,
    ipc,
    out,
    iterations,
    model,
    init,
    seed,
    device,
    data_root,
    image_size,
    options,
    checkpoint_every,
    resume,
    eval_every,
    protocol_name,
    eval_epochs,
    eval_runs,
    push_name,
    tags,
    store_spec,
    overwrite,
    quiet,
) -> None:
    """Condense DATASET with a method into an artifact directory (optionally push it)."""
    from dcregistry.errors import UserError
    from dcregistry.refs import validate_name

    from .methods.base import parse_options
    from .methods.loop import CondenseSpec, condense

    if tags and not push_name:
        raise UserError("--tag needs --push NS/NAME")
    if push_name:
        validate_name(push_name)
    if (eval_epochs or eval_runs) and not protocol_name:
        raise UserError("--eval-epochs/--eval-runs need --protocol")
    spec = CondenseSpec(
        dataset=dataset,
        method=method,
        ipc=ipc,
        out=Path(out),
        iterations=iterations,
        model=model,
        init=init,
        seed=seed,
        device=device,
        data_root=data_root,
        image_size=image_size,
        options=parse_options(options),
        checkpoint_every=checkpoint_every,
        resume=resume,
        eval_every=eval_every,
        protocol=protocol_name,
        eval_epochs=eval_epochs,
        eval_runs=eval_runs,
        overwrite=overwrite,
        store=store_spec,
    )
    from .methods.checkpoint import CHECKPOINT_DIR

    if resume and not (Path(out) / CHECKPOINT_DIR / "state.json").is_file():
        click.echo(f"no checkpoint in {out}: starting from the beginning", err=True)
    from .progress import condense_progress

    outcome = condense(spec, progress=condense_progress(progress_disabled(quiet)))
    rec = outcome.record
    line = f"wrote {out} ({rec.method}, ipc {ipc}, {rec.wall_time_s:.1f} s"
    if rec.s_per_iter is not None:
        line += f", {rec.s_per_iter:.3g} s/iter"
    best = rec.best_validation
    if best is not None:
        line += f", best validation {100 * best[0]:.2f} % at iteration {best[1]}"
    click.echo(line + ")")
    if rec.quality_warning:
        click.echo(f"warning: {rec.method}: {rec.quality_warning}", err=True)
    if push_name:
        from dcregistry.store import get_store

        res = get_store(store_spec).require("write", "--push").push(outcome.artifact.path, push_name, tags)
        click.echo(str(res))


@cli.command("experts")
@click.argument("dataset")
@click.option("--model", default="convnet", show_default=True, help="Network of the experts.")
@click.option("--num-experts", type=click.IntRange(min=1), default=100, show_default=True)
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Epochs per expert (parameters saved after each).",
)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=0.01, show_default=True)
@click.option("--augmentation", type=click.Choice(["dsa", "none"]), default="dsa", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--image-size", type=click.IntRange(min=1), default=None)
@data_root_option
@device_option
@click.option(
    "--holdout-validation",
    is_flag=True,
    help="Train on the training split minus the validation split (what `condense --eval-every` runs see).",
)
@click.option(
    "--zca",
    is_flag=True,
    help="Train on ZCA-whitened unit images (what `condense --method mtt --option zca=true` uses).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def experts_cmd(
    dataset,
    model,
    num_experts,
    epochs,
    lr,
    augmentation,
    seed,
    image_size,
    data_root,
    device,
    holdout_validation,
    zca,
    quiet,
) -> None:
    """Train MTT expert trajectories for DATASET into the harness cache (resumable)."""
    from .engine.evaluate import resolve_device
    from .methods.experts import spec_for, train_experts
    from .methods.loop import CondenseSpec, load_context
    from .models import model_factory
    from .progress import condense_progress

    model_factory(model)
    spec = CondenseSpec(
        dataset=dataset,
        method="mtt",
        ipc=1,
        out=Path("."),
        model=model,
        seed=seed,
        device=device,
        data_root=data_root,
        image_size=image_size,
        options={"zca": "true"} if zca else {},
    )
    data = load_context(spec, resolve_device(device), holdout=holdout_validation)
    espec = spec_for(
        data.ctx, num_experts=num_experts, epochs=epochs, lr=lr, augmentation=augmentation, seed=seed
    )
    out = train_experts(data.ctx, espec, condense_progress(progress_disabled(quiet)))
    click.echo(f"{out} sha256:{espec.digest}")


@cli.group("methods", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def methods_cmd(ctx: click.Context, as_json: bool) -> None:
    """List the condensation methods (``methods show M`` prints a method's options)."""
    if ctx.invoked_subcommand is not None:
        return
    from .methods import get_method, list_methods

    rows = [get_method(n) for n in list_methods()]
    if as_json:
        emit_json([{"name": m.name, "kind": m.kind, "description": m.description} for m in rows])
        return
    width = max(len(m.name) for m in rows)
    for m in rows:
        click.echo(f"{m.name:<{width}}  {m.kind:<9}  {m.description}")


@methods_cmd.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def methods_show(name: str, as_json: bool) -> None:
    """Print a method's options (``--option key=value``) with their defaults."""
    from .methods import get_method
    from .methods.base import option_rows

    m = get_method(name)
    rows = option_rows(m)
    if as_json:
        emit_json(
            {
                "name": m.name,
                "kind": m.kind,
                "description": m.description,
                "options": [{"name": r[0], "type": r[1], "default": r[2], "help": r[3]} for r in rows],
            }
        )
        return
    click.echo(f"{m.name} ({m.kind}): {m.description}")
    if not rows:
        click.echo("no options")
        return
    w = max(len(r[0]) for r in rows)
    tw = max(len(r[1]) for r in rows)
    for opt, typ, default, help_ in rows:
        click.echo(f"  {opt:<{w}}  {typ:<{tw}}  default {default}" + (f"  {help_}" if help_ else ""))


#: What `pip install dcregistry[harness]` adds; the registry-only install lacks them.
HARNESS_MODULES = ("torch", "sklearn")


def missing_harness_modules() -> list[str]:
    """Top-level modules the harness needs that cannot be found (checked without importing)."""
    import importlib.util

    missing = []
    for name in HARNESS_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    missing = missing_harness_modules()
    if missing:
        click.echo(
            f"harness: error: {', '.join(missing)} not installed: the harness needs the "
            "'harness' extra: pip install 'dcregistry[harness]' (the registry-only install "
            "gives dcreg alone)",
            err=True,
        )
        sys.exit(1)
    from .engine.allocator import tune_allocator

    tune_allocator()  # before any large tensor exists; HARNESS_MALLOC=system opts out
    sys.exit(run_cli(cli, "harness", argv))


from .cli_reproduce import rank_cmd, reproduce_cmd  # noqa: E402  (harness reproduce, harness rank)

cli.add_command(reproduce_cmd)
cli.add_command(rank_cmd)


from .sweep.cli import results_group, sweep_group  # noqa: E402  (the sweep commands, in their package)

cli.add_command(sweep_group)
cli.add_command(results_group)


from .tables.cli import table_group  # noqa: E402  (harness table list|show|run|render)

cli.add_command(table_group)


from dcregistry.cli.leaderboard_cmd import leaderboard_cmd  # noqa: E402  (the same command as dcreg's)

cli.add_command(leaderboard_cmd)
