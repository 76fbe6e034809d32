"""``dcreg import`` and ``dcreg export``: published sets in, other formats out.

No torch, PIL or ``datasets`` at import time: the formats code loads each when a path needs it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import OutputExistsError, UserError
from ..formats.exporters import EXPORT_FORMATS, export_artifact
from ..formats.importers import (
    IMPORT_FORMATS,
    LAYOUTS,
    PIXEL_SPACES,
    ZCA_INNER,
    ImportOptionError,
    ImportOptions,
    import_file,
)
from . import cli
from .common import emit_json, json_option, progress_disabled, quiet_option

if TYPE_CHECKING:
    from ..artifact import Artifact


def _note(text: str) -> None:
    click.echo(f"dcreg: note: {text}", err=True)


def _option_flag(exc: ImportOptionError) -> ImportOptionError:
    """The importer's message plus the flag that sets the option it names (CLI wording)."""
    return ImportOptionError(f"{exc} (--{exc.option.replace('_', '-')})", exc.option)


def _flag_hint(exc: OutputExistsError, overwrite: bool) -> OutputExistsError:
    """The library's 'exists' refusal, plus the flag that allows replacing (CLI wording)."""
    return exc if overwrite else OutputExistsError(f"{exc} (pass --overwrite to replace it)")


@cli.command("import")
@click.argument("file", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--format",
    "fmt",
    required=True,
    type=click.Choice(IMPORT_FORMATS),
    help="dc-pt: DC/DSA/DM res_*.pt; mtt: MTT/DATM images_best.pt (+labels, lr) or "
    "their directory; kip-npz: KIP .npz (NHWC); npz: images + labels arrays.",
)
@click.option(
    "--dataset",
    required=True,
    help="Dataset the set was condensed from (e.g. cifar10): classes, names, stats.",
)
@click.option(
    "--pixel-space",
    type=click.Choice(PIXEL_SPACES),
    help="How pixels relate to the images. Default: normalized (dc-pt, mtt), "
    "zca-kip (kip-npz), unit/uint8 by dtype (npz).",
)
@click.option(
    "--zca-over",
    type=click.Choice(ZCA_INNER),
    help="Inner space of a zca-* pixel space (default: unit for zca-kornia as in MTT's "
    "code, normalized for zca-kip).",
)
@click.option(
    "--method", help="Method name (default: from a res_* file name, mtt/datm, kip; required for npz)."
)
@click.option("--ipc", type=click.IntRange(min=1), help="Images per class (checked; inferred).")
@click.option("--license", "license_", help="License id for the card (default: other).")
@click.option("--url", help="Where the file was published (recorded in source).")
@click.option("--seed", type=int, help="Seed the set was made with, if known.")
@click.option(
    "--exp",
    type=click.IntRange(min=0),
    help="dc-pt: import only experiment N (default: all, as -o DIR-e0, DIR-e1, ...).",
)
@click.option(
    "--layout",
    type=click.Choice(LAYOUTS),
    help="Image axis order of the file: nchw ([N, C, H, W]) or nhwc ([N, H, W, C]). "
    "Default: detected from the dataset's image shape; required when both "
    "readings fit.",
)
@click.option("--title", help="Human title for the card.")
@click.option(
    "-o",
    "--output",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    help="Artifact directory to write.",
)
@click.option(
    "--overwrite", is_flag=True, help="Replace an existing output, which must be an artifact directory."
)
@json_option
def import_cmd(
    file: Path,
    fmt: str,
    dataset: str,
    pixel_space: str | None,
    zca_over: str | None,
    method: str | None,
    ipc: int | None,
    license_: str | None,
    url: str | None,
    seed: int | None,
    exp: int | None,
    layout: str | None,
    title: str | None,
    out: Path,
    overwrite: bool,
    as_json: bool,
) -> None:
    """Import a published condensed set FILE into a dcreg/1 artifact directory.

    Pickled .pt files are read with torch.load(weights_only=True) only; anything needing
    arbitrary Python objects is refused. Prints each artifact's path and digest.
    """
    if exp is not None and fmt != "dc-pt":
        raise UserError("--exp only applies to --format dc-pt")
    options = ImportOptions(
        dataset=dataset,
        pixel_space=pixel_space,
        zca_over=zca_over,
        method=method,
        ipc=ipc,
        license=license_,
        url=url,
        seed=seed,
        exp=exp,
        title=title,
        layout=layout,
    )
    try:
        result = import_file(file, fmt, out, options, overwrite=overwrite)
    except OutputExistsError as exc:
        raise _flag_hint(exc, overwrite) from None
    except ImportOptionError as exc:
        raise _option_flag(exc) from None
    if as_json:
        emit_json(
            {
                "artifacts": [
                    {
                        "path": str(a.path),
                        "digest": a.digest,
                        "dataset": a.metadata["dataset"],
                        "method": a.metadata["method"],
                        "ipc": a.metadata["ipc"],
                        "label_kind": a.metadata["label_kind"],
                        "pixel_space": a.metadata["pixel_space"]["kind"],
                        "experiment": (a.metadata["source"] or {}).get("experiment"),
                    }
                    for a in result.artifacts
                ],
                "notes": result.notes,
            }
        )
        return
    for note in result.notes:
        _note(note)
    for a in result.artifacts:
        click.echo(f"{a.path} {a.digest}")


def _open(ref: str, store: str | None) -> Artifact:
    """Resolve REF through the store (``open_ref``); without a store module, a directory only."""
    try:
        from ..store import open_ref
    except ImportError:
        pass
    else:
        return open_ref(ref, store=store, verify=True) if store else open_ref(ref, verify=True)
    if Path(ref).is_dir():
        from ..artifact import open_artifact

        return open_artifact(ref)
    raise UserError(
        f"cannot resolve {ref!r}: the store is not available in this installation; pass an artifact directory"
    )


@cli.command("export")
@click.argument("ref")
@click.option(
    "--format",
    "fmt",
    required=True,
    type=click.Choice(EXPORT_FORMATS),
    help="pt: DC list format; npz; png: labelled grid; hf-datasets: saved Dataset.",
)
@click.option(
    "-o",
    "--output",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    help="Output file (directory for hf-datasets).",
)
@click.option(
    "--max-per-class",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="png: images shown per class.",
)
@click.option("--store", default=None, help="Store to resolve REF in (default: local).")
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace an existing output: a regular file (a directory an earlier "
    "hf-datasets export wrote, for hf-datasets); never links or devices.",
)
@quiet_option
@json_option
def export_cmd(
    ref: str,
    fmt: str,
    out: Path,
    max_per_class: int,
    store: str | None,
    overwrite: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Export the artifact REF (ns/name[@v3|@tag|@sha256:..] or a directory) to OUT."""
    art = _open(ref, store)
    try:
        result = export_artifact(
            art,
            fmt,
            out,
            overwrite=overwrite,
            max_per_class=max_per_class,
            progress=not progress_disabled(quiet),
        )
    except OutputExistsError as exc:
        raise _flag_hint(exc, overwrite) from None
    if as_json:
        emit_json(
            {"path": str(result.path), "format": fmt, "ref": ref, "digest": art.digest, "notes": result.notes}
        )
        return
    for note in result.notes:
        _note(note)
    click.echo(str(result.path))
