"""Dataset cards: README.md with Hugging Face YAML front matter, rendered from ``cards/``.

The card is a pure function of (metadata, results, ref) so that building the same artifact twice
gives byte-identical files and the same digest. Evaluation results are annotations: the card
inside a version is rendered without them; ``dcreg card`` re-renders with the current ones.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from importlib import resources
from string import Template
from typing import Any

import yaml

from .catalog import DATASETS
from .citations import method_citation, method_info, method_title
from .errors import ValidationError
from .method_config import condense_record
from .pixelspace import PixelSpace
from .records import CARD_TABLE_HEADER, EvalRecord, RecordError

TEMPLATE_NAME = "card_template.md"
#: Path of the parquet preview in a published repo (declared in the card's ``configs``).
PREVIEW_PATH = "preview/train.parquet"


def _size_category(n: int) -> str:
    for limit, label in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
    ):
        if n < limit:
            return label
    return "1M<n<10M"


def pretty_name(md: Mapping[str, Any]) -> str:
    """Short human title, e.g. ``DSA cifar10 IPC 10``."""
    return md.get("title") or f"{md['method'].upper()} {md['dataset']} IPC {md['ipc']}"


def front_matter(md: Mapping[str, Any]) -> dict[str, Any]:
    """The YAML front matter dict (Hugging Face dataset-card fields + the ``dcreg`` block)."""
    n = md["ipc"] * md["num_classes"]
    return {
        "license": md["license"],
        "task_categories": ["image-classification"],
        "tags": sorted(
            {"dataset-distillation", "dataset-condensation", "dcreg", md["method"], md["dataset"]}
        ),
        "pretty_name": pretty_name(md),
        "size_categories": [_size_category(n)],
        "dcreg": {"format": "dcreg/1", "metadata": json.loads(json.dumps(dict(md)))},
        # Where a published copy (Hub, `dcreg serve`) keeps its 8-bit parquet preview, so that
        # `datasets.load_dataset` and the dataset viewer read it; data.safetensors is canonical.
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": PREVIEW_PATH}]}],
    }


def describe_pixel_space(ps: Mapping[str, Any]) -> str:
    """One sentence that says how pixel values relate to the original images."""
    return PixelSpace.parse(ps).card_text()


def _results_table(results: Sequence[Mapping[str, Any] | EvalRecord]) -> str:
    if not results:
        return "_No evaluation recorded yet. Run `harness eval ... --record` to add one._"
    rows = [CARD_TABLE_HEADER]
    for r in results:
        try:
            rows.append((r if isinstance(r, EvalRecord) else EvalRecord.from_json(r)).card_row())
        except RecordError as exc:  # one damaged record must not hide the card or the others
            blank = " |" * (CARD_TABLE_HEADER.splitlines()[0].count("|") - 2)
            rows.append(f"| (unreadable result: {_cell(str(exc))}) |{blank}")
    return "\n".join(rows)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:200]


def _method_rows(mc: Mapping[str, Any]) -> list[tuple[str, str]]:
    """How the set was made, compactly (curves stay in the front matter's metadata)."""
    raw = [("method config", f"`{json.dumps(mc, sort_keys=True)}`")]
    try:
        rec = condense_record(mc)
    except RecordError as exc:  # a damaged condense record: show it as recorded, and say why
        return [*raw, ("method record", f"unreadable: {_cell(str(exc))}")]
    if rec is None:  # imported or hand-made: show the recorded config as is
        return raw
    rows = [
        ("made by", f"`harness condense` ({rec.kind} method)"),
        ("method config", f"`{json.dumps(rec.config, sort_keys=True)}`"),
        ("config hash", f"`{rec.config_hash}`"),
        ("network", f"`{rec.model}` on {rec.device}"),
    ]
    if rec.init is not None:
        how = rec.init_kind or "?"
        if how == "selection":  # a selection method's set, made in-process (no parent artifact)
            how = f"{rec.init.get('method', '?')} selection (`{rec.init.get('config_hash', '?')}`)"
        rows.append(("init", how))
    timing = f"{rec.wall_time_s:.1f} s"
    if rec.s_per_iter is not None:
        its = rec.iterations if rec.iterations is not None else "?"
        timing += f", {rec.s_per_iter:.4g} s/iteration over {its} iterations"
    rows.append(("time", timing))
    rows.append(("peak memory", f"{rec.peak_memory_bytes / 2**20:.0f} MiB ({rec.peak_memory_kind})"))
    net = rec.network
    if net is not None:
        tr = net.get("training") or {}
        rows.append(
            (
                "embedding net",
                f"`{net.get('net', '?')}`"
                + (
                    f", trained {tr.get('epochs')} epoch(s), {tr.get('optimizer', '')}, "
                    f"batch {tr.get('batch_size')}"
                    if tr
                    else ""
                ),
            )
        )
    val = rec.validation
    if val is not None and val.best_accuracy is not None:
        rows.append(
            (
                "model selection",
                f"validation split of the training data under "
                f"`{val.protocol or '?'}`: best {100 * val.best_accuracy:.2f} % at "
                f"iteration {val.best_iteration} (never the test set)",
            )
        )
    if rec.quality is not None and rec.quality.warning is not None:
        rows.append(("**quality warning**", rec.quality.warning))
    return rows


def render_card(
    md: Mapping[str, Any], results: Sequence[Mapping[str, Any] | EvalRecord] = (), ref: str | None = None
) -> str:
    """Render the README.md card for metadata ``md`` (and recorded ``results``)."""
    template = Template(resources.files("dcregistry.cards").joinpath(TEMPLATE_NAME).read_text())
    c, h, w = md["image_shape"]
    n = md["ipc"] * md["num_classes"]
    info = DATASETS.get(md["dataset"])
    made = [
        ("method", f"`{md['method']}`"),
        *_method_rows(md["method_config"]),
        ("seed", str(md["seed"])),
        ("created at", md["created_at"]),
        ("producer", " ".join(str(v) for v in md["producer"].values() if v)),
        ("license", md["license"]),
    ]
    if md["source"]:
        src = md["source"]
        made.append(
            (
                "imported from",
                f"`{src['file_name']}` (sha256 `{src['sha256'][:16]}…`)"
                + (f" {src['url']}" if src.get("url") else ""),
            )
        )
    soft = md["label_kind"] == "soft"
    lineage = md["lineage"]
    fm = yaml.safe_dump(front_matter(md), sort_keys=True, allow_unicode=True, width=100).strip()
    return (
        template.substitute(
            front_matter=fm,
            title=pretty_name(md),
            description=md.get("description") or "",
            dataset_title=info.description if info else md["dataset"],
            num_images=n,
            ipc=md["ipc"],
            num_classes=md["num_classes"],
            shape=f"[{c}, {h}, {w}]",
            method_title=method_title(md["method"]),
            made_rows="\n".join(f"| {k} | {v} |" for k, v in made),
            pixel_space_text=describe_pixel_space(md["pixel_space"]),
            images_doc=f"[{n}, {c}, {h}, {w}], pixel space: {md['pixel_space']['kind']}",
            label_key="soft_labels" if soft else "labels",
            labels_doc=f"[{n}, {md['num_classes']}] soft labels (logits)"
            if soft
            else f"[{n}] int64 class ids, names: {', '.join(md['class_names'][:5])}"
            + (", ..." if md["num_classes"] > 5 else ""),
            extra_load_line=(
                'lr = tensors["lr"].item()   # learned learning rate (use it to train)'
                if md["method_config"].get("learned_lr")
                else ""
            ),
            ref=ref or "NS/NAME",
            protocol_hint=method_info(md["method"]).protocol,
            results_table=_results_table(results),
            lineage_text="\n".join(f"- parent `{d}`" for d in lineage) if lineage else "No parent artifacts.",
            citation=method_citation(md["method"], md.get("citation")),
        ).rstrip()
        + "\n"
    )


def parse_card(text: str) -> tuple[dict[str, Any], str]:
    """Split a card into (front matter dict, body); raise ValidationError if malformed."""
    if not text.startswith("---\n"):
        raise ValidationError("README.md", "card has no YAML front matter")
    end = text.find("\n---\n", 4)
    if end < 0:
        raise ValidationError("README.md", "card front matter is not closed by '---'")
    try:
        data = yaml.safe_load(text[4:end]) or {}
    except yaml.YAMLError as exc:
        raise ValidationError("README.md", f"front matter is not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ValidationError("README.md", "front matter is not a mapping")
    return data, text[end + 5 :]
