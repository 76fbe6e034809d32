"""``harness reproduce`` (re-run a recorded result) and ``harness rank`` (DD-Ranking's metrics),
registered on the ``harness`` group by :mod:`harness.cli`; the work is in
:mod:`harness.engine.reproduce` and :mod:`harness.engine.rank`."""

from __future__ import annotations

import click

from dcregistry.cli.common import progress_disabled

from .cli_options import (
    apply_overrides,
    data_root_option,
    device_option,
    json_file_option,
    protocol_override_options,
    quiet_option,
    store_option,
    write_json,
)


@click.command("reproduce")
@click.argument("source")
@click.option(
    "--protocol",
    "protocol_sel",
    default=None,
    help="Which of REF's eval records to re-run (protocol id, name or hash).",
)
@click.option(
    "--artifact",
    "artifact_ref",
    default=None,
    help="Where the recorded artifact is now (default: the record's ref); its digest must match.",
)
@store_option(help="Store for REF.")
@protocol_override_options
@device_option
@data_root_option
@json_file_option
@quiet_option
def reproduce_cmd(
    source, protocol_sel, artifact_ref, store_spec, overrides, device, data_root, json_out, quiet
) -> None:
    """Re-run a recorded result: SOURCE is a record JSON file (`harness eval --json`) or a store
    REF whose eval records (`harness eval --record`) are re-run, with the record's protocol,
    seeds and strategy on the recorded artifact digest.

    Reports per seed and overall: bit-exact, within noise (|Δ mean| <= max(2σ/√runs, one test
    image)) or differs, and what differs in the environment. Exit 0 for bit-exact or within
    noise, 1 for differs (and for a record that cannot be re-run as made). Of the protocol
    overrides only --runs R applies: it re-runs the first R recorded seeds."""
    from .cli_output import progress_factory
    from .engine.reproduce import ReproduceError, reproduce

    if any(v is not None for v in (overrides.arch, overrides.aug, overrides.optim, overrides.epochs)):
        raise ReproduceError(
            "reproduce re-runs the recorded protocol: --arch/--aug/--optim/--epochs would change it "
            "(evaluate a derived protocol with `harness eval`); --runs R re-runs the first R seeds"
        )

    report = reproduce(
        source,
        protocol=protocol_sel,
        store=store_spec,
        artifact_ref=artifact_ref,
        device=device,
        data_root=data_root,
        runs=overrides.runs,
        progress=progress_factory(progress_disabled(quiet), "reproduce", None),
    )
    write_json(report.to_json(), json_out)
    for line in report.lines():
        click.echo(line, err=json_out == "-")
    report.raise_if_differs()  # exit 1, one line


@click.command("rank")
@click.argument("ref")
@click.option(
    "--protocol",
    "protocol_name",
    required=True,
    help="Protocol name (see `harness protocols`) or a TOML file.",
)
@protocol_override_options
@click.option(
    "--lam",
    type=click.FloatRange(0.0, 1.0),
    default=0.5,
    show_default=True,
    help="DD-Ranking's λ: weight of IOR against HLR in LRS (and of augmented against unaugmented in ARS).",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Full-data accuracy cache (default $HARNESS_CACHE/fulldata or ~/.cache/harness/fulldata).",
)
@device_option
@click.option(
    "--strategy", default="auto", show_default=True, help="auto or a name from `harness strategies`."
)
@data_root_option
@json_file_option
@click.option(
    "--record", is_flag=True, help="Attach the result (with its rank block) to the artifact version."
)
@store_option(help="Store for REF.")
@quiet_option
def rank_cmd(
    ref,
    protocol_name,
    overrides,
    lam,
    cache_dir,
    device,
    strategy,
    data_root,
    json_out,
    record,
    store_spec,
    quiet,
) -> None:
    """DD-Ranking's IOR, HLR, LRS and ARS of artifact REF under a protocol, on fractions.

    IOR = acc(set) - acc(random real subset), HLR = acc(full real) - acc(set, hard labels),
    LRS = N(λ·IOR - (1-λ)·HLR), ARS = N(λ·IOR_aug + (1-λ)·IOR_noaug), N(x) = (e^x - e^-1)/(e - e^-1).
    The full-data accuracy is trained once per dataset, image size, protocol and pixel space, then cached."""
    from dcregistry.errors import UserError
    from dcregistry.store import get_store, resolve_ref

    from .cli_output import print_eval_table, progress_factory
    from .engine.rank import rank
    from .protocols import load_protocol

    protocol = apply_overrides(load_protocol(protocol_name), overrides)
    resolved = resolve_ref(ref, get_store(store_spec) if store_spec else None)
    if record and (resolved.info is None or resolved.store is None):
        raise UserError("--record needs a store reference (ns/name[@v..]); push the directory first")
    if record:
        assert resolved.store is not None
        resolved.store.require("annotate", "--record")
    result = rank(
        resolved.open(),
        protocol,
        ref=resolved.label,
        device=device,
        data_root=data_root,
        strategy=strategy,
        lam=lam,
        cache_dir=cache_dir,
        progress=progress_factory(progress_disabled(quiet), f"rank {protocol.name}", protocol.epochs + 1),
    )
    print_eval_table(result)  # with the rank block's lines
    data = result.to_json()
    write_json(data, json_out)
    if record:
        assert resolved.store is not None and resolved.info is not None
        ann = resolved.store.require("annotate", "--record").annotate(resolved.info, "eval", data)
        click.echo(f"recorded on {resolved.label} ({ann})", err=True)
    click.echo(result.summary(), err=json_out == "-")
