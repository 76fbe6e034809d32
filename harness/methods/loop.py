"""The shared condensation loop: data, validation split, init, iterations, checkpoints, model
selection, timing, peak memory, the artifact and the push.

Data: the dataset's TRAINING split only, in its canonical normalized pixel space (resized with
``image_size``), or, when the method's configuration asks for it (:meth:`Method.data_space`, e.g.
MTT's ``zca``), ZCA-whitened unit images with the ZCA fitted on exactly the images the method
sees; the validation images get the same ZCA and the artifact carries its tensors. With model
selection (``eval_every`` > 0) the fixed stratified validation split of
:func:`harness.data.validation_split` (10 % of each class, the same for every seed and method) is
held out from what the method sees and the candidate sets are evaluated on it under the given
protocol; the best set by validation accuracy is kept. A method that scores its own candidates on
the split (:meth:`Method.uses_validation`, e.g. ORS) gets it held out the same way and handed over
as ``ctx.val_images`` / ``ctx.val_labels``. The test split is never loaded.

Checkpoints live in ``OUT/.checkpoint/``: ``state-<iteration>.safetensors`` (tensors) and
``state.json`` (everything else, and the sha256 of the tensor file), each written to a temp file,
fsynced and renamed; ``state.json`` is the commit point. The artifact replaces the directory at
the end, checkpoint included.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from dcregistry.artifact import Artifact, build_artifact
from dcregistry.catalog import get_dataset_info
from dcregistry.errors import UserError
from dcregistry.manifest import is_artifact_dir
from dcregistry.method_config import LossSummary, MethodConfig, ValidationSummary
from dcregistry.pixelspace import PixelSpace
from harness.engine.allocator import allocator_tuned
from harness.engine.seeding import generator
from harness.methods import get_method
from harness.methods.base import (
    DATA_SPACES,
    CondenseContext,
    DivergedError,
    Method,
    MethodOptionError,
    SelectionMethod,
    SynthesisMethod,
    build_config,
    config_hash,
    config_record,
)
from harness.methods.checkpoint import (
    CHECKPOINT_DIR,
    Checkpoint,
    CheckpointError,
    flatten,
    load_checkpoint,
    save_checkpoint,
    unflatten,
)
from harness.methods.quality import LossTrend, QualityCheck

if TYPE_CHECKING:
    from harness.data.pixelspace import TensorSpace

MAX_CURVE_POINTS = 200
#: ``--init`` values that are neither a selection method nor an artifact: the random-real stream
#: (iteration 0 is the ``random`` set of the same seed) and standard-normal noise.
INIT_KINDS = ("real", "noise")
ZCA_VARIANT = "kornia-eps0.1"  # the ZCA of MTT's official code (kornia ZCAWhitening, eps 0.1)


@dataclass
class CondenseSpec:
    """Everything ``harness condense`` was asked to do."""

    dataset: str
    method: str
    ipc: int
    out: Path
    iterations: int | None = None  # None: the method's default
    model: str = "convnet"
    init: str = "real"  # real | noise | a selection method's name | a reference to an artifact
    seed: int = 0
    device: str = "auto"
    data_root: str | None = None
    image_size: int | None = None
    options: dict[str, str] = field(default_factory=dict)
    checkpoint_every: int = 0
    resume: bool = False
    eval_every: int = 0
    protocol: str | None = None  # name or TOML path; required with eval_every
    eval_epochs: int | None = None
    eval_runs: int | None = None
    overwrite: bool = False
    store: str | None = None  # for --init REF and --push

    def command_line(self) -> list[str]:
        """The ``harness condense`` arguments that ask for this spec (for records and people)."""
        args = [
            "condense",
            self.dataset,
            "--method",
            self.method,
            "--ipc",
            str(self.ipc),
            "-o",
            str(self.out),
            "--seed",
            str(self.seed),
            "--model",
            self.model,
            "--device",
            self.device,
        ]
        if self.init != "real":
            args += ["--init", self.init]
        for flag, value in (
            ("--iterations", self.iterations),
            ("--image-size", self.image_size),
            ("--data-root", self.data_root),
            ("--protocol", self.protocol),
            ("--eval-epochs", self.eval_epochs),
            ("--eval-runs", self.eval_runs),
            ("--store", self.store),
        ):
            if value is not None:
                args += [flag, str(value)]
        for flag, value in (("--checkpoint-every", self.checkpoint_every), ("--eval-every", self.eval_every)):
            if value:
                args += [flag, str(value)]
        args += [
            a
            for flag, on in (("--overwrite", self.overwrite), ("--resume", self.resume))
            if on
            for a in (flag,)
        ]
        for k, v in self.options.items():
            args += ["--option", f"{k}={v}"]
        return args


@dataclass
class Outcome:
    artifact: Artifact
    record: MethodConfig  # the artifact's method_config, typed

    @property
    def method_config(self) -> dict[str, Any]:
        """The ``method_config`` JSON stored in the artifact's metadata."""
        return self.record.to_json()


Progress = Callable[[int, str], Callable[..., None]]


# ---------------------------------------------------------------------------------------------


def _peak_memory(device: torch.device) -> dict[str, Any]:
    if device.type == "cuda":
        return {
            "peak_memory_bytes": int(torch.cuda.max_memory_allocated(device)),
            "peak_memory_kind": "torch.cuda.max_memory_allocated",
        }
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss = rss if sys.platform == "darwin" else rss * 1024  # Linux reports KiB
    return {"peak_memory_bytes": int(rss), "peak_memory_kind": "ru_maxrss (whole process)"}


def selection_names() -> list[str]:
    """The registered selection methods (sorted) a synthesis can start from (``--init NAME``):
    all but those that score on the validation split with their defaults (ORS), which a
    synthesis run trains on."""
    from harness.methods import list_methods

    out = []
    for n in list_methods():
        m = get_method(n)
        uses_val = getattr(m, "uses_validation", None)
        if isinstance(m, SelectionMethod) and not (uses_val and uses_val(build_config(m))):
            out.append(n)
    return out


def init_choices() -> list[str]:
    """The named ``--init`` values: ``real``, ``noise`` and every selection method."""
    return [*INIT_KINDS, *selection_names()]


def _looks_like_ref(text: str) -> bool:
    """A store reference (``ns/name``, ``hf://``), a path (``./d``, ``/abs``, ``~/d``) or an
    existing directory: what an ``--init`` that is not a named choice must be."""
    import os

    seps = {"/", os.sep, *([os.altsep] if os.altsep else [])}
    if any(c in text for c in seps) or text.startswith((".", "~")):
        return True
    try:
        return Path(text).is_dir()
    except OSError:  # e.g. a name too long for the file system: not a directory here
        return False


def check_init(init: str, what: str = "--init") -> str:
    """How ``init`` starts a synthesis: ``real`` | ``noise`` | ``selection`` | ``artifact``.

    A bare word that is none of the named choices (and no existing directory) is a
    :class:`UserError` listing them, never a reference lookup; a named choice wins over a
    directory of the same name (write ``./kcenter`` for the directory)."""
    if init in INIT_KINDS:
        return init
    names = selection_names()
    if init in names:
        return "selection"
    if _looks_like_ref(init):
        return "artifact"
    from harness.methods import list_methods

    choices = ", ".join([*INIT_KINDS, *names])
    kind = "a synthesis method" if init in list_methods() else "unknown"
    raise UserError(
        f"{what} {init!r}: {kind}; choose one of {choices} "
        "(a selection method's set starts the run), or an artifact reference (NS/NAME[@vN], "
        "hf://datasets/ORG/NAME, or a directory path such as ./DIR)"
    )


def _check_request(spec: CondenseSpec, method: Method[Any]) -> None:
    if spec.ipc < 1:
        raise UserError(f"ipc must be at least 1, got {spec.ipc}")
    if spec.eval_every < 0 or spec.checkpoint_every < 0:
        raise UserError("evaluation and checkpoint intervals must be >= 0")
    if spec.eval_every and not spec.protocol:
        raise UserError("model selection on the validation split needs a protocol to evaluate with")
    if isinstance(method, SelectionMethod):
        if spec.iterations is not None:
            raise UserError(f"{method.name} is a selection method: it has no iterations")
        if spec.init != "real":
            raise UserError(f"{method.name} selects real images; an init set does not apply")
    else:
        check_init(spec.init)


@dataclass
class _Data:
    ctx: CondenseContext
    val_images: torch.Tensor | None
    val_labels: torch.Tensor | None
    class_names: list[str]
    split_info: dict[str, Any]


def load_context(spec: CondenseSpec, device: torch.device, holdout: bool | None = None) -> _Data:
    """The training data a method sees for ``spec`` (``holdout``: without the validation
    split; default: when ``spec.eval_every`` asks for model selection), in the pixel space the
    method's configuration (``spec.options``) asks for."""
    method = get_method(spec.method)
    cfg = build_config(method, spec.options)
    if holdout is None:
        holdout = bool(spec.eval_every) or method.uses_validation(cfg)
    data = _load(spec, device, holdout, method.data_space(cfg))
    if method.uses_validation(cfg):
        data.ctx.val_images, data.ctx.val_labels = data.val_images, data.val_labels
    return data


def _load(
    spec: CondenseSpec, device: torch.device, holdout: bool | None = None, space: str = "normalized"
) -> _Data:
    from harness.data import TensorSpace, load_dataset, validation_split
    from harness.data.sampling import VALIDATION_FRACTION, VALIDATION_STREAM

    if space not in DATA_SPACES:
        raise ValueError(f"unknown data space {space!r} (one of {', '.join(DATA_SPACES)})")
    info = get_dataset_info(spec.dataset)
    train = load_dataset(info.name, "train", spec.data_root, image_size=spec.image_size)
    images = train.images  # unit range until the pixel space is applied below
    labels = train.labels
    val_x = val_y = None
    split_info: dict[str, Any] = {"split": "train", "images": int(len(labels))}
    if spec.eval_every if holdout is None else holdout:
        tr_idx, val_idx = validation_split(labels, info.num_classes)
        val_x, val_y = images[val_idx], labels[val_idx]
        images, labels = images[tr_idx], labels[tr_idx]
        split_info = {
            "split": "train minus validation",
            "images": int(len(tr_idx)),
            "validation": {
                "images": int(len(val_idx)),
                "fraction": VALIDATION_FRACTION,
                "stratified": True,
                "stream": f"(0, {VALIDATION_STREAM!r})",
                "indices_sha256": hashlib.sha256(val_idx.numpy().astype("<i8").tobytes()).hexdigest(),
            },
        }
    counts = torch.bincount(labels, minlength=info.num_classes)
    if int(counts.min()) < spec.ipc:
        raise UserError(
            f"{info.name} has only {int(counts.min())} training images in class "
            f"{int(counts.argmin())}"
            + (" (after the validation split)" if val_x is not None else "")
            + f", fewer than ipc {spec.ipc}"
        )
    if space == "zca":
        tspace = _fit_zca_space(images)  # on what the method trains on, never the validation split
        assert tspace.zca is not None
        split_info["zca"] = {
            "variant": ZCA_VARIANT,
            "fitted_on": split_info["split"],
            "digest": tspace.zca.digest(),
        }
        images, val_x = images.to(device), val_x.to(device) if val_x is not None else None
        tspace = TensorSpace(tspace.space, tspace.zca.to(device))
    else:
        tspace = TensorSpace(PixelSpace.of_dataset(info))
    images = tspace.from_unit(images)
    val_x = tspace.from_unit(val_x) if val_x is not None else None
    ctx = CondenseContext(
        dataset=info.name,
        images=images.to(device),
        labels=labels.to(device),
        num_classes=info.num_classes,
        ipc=spec.ipc,
        model=spec.model,
        device=device,
        space=tspace,
        seed=spec.seed,
        dsa_strategy=info.dsa_strategy,
    )
    if val_x is not None:
        assert val_y is not None  # split together with val_x
        val_x, val_y = val_x.to(device), val_y.to(device)
    return _Data(ctx, val_x, val_y, list(train.class_names), split_info)


def _fit_zca_space(unit_images: torch.Tensor) -> TensorSpace:
    """MTT's ZCA (kornia, eps 0.1) fitted on unit-range images; the artifact carries the
    tensors (``zca_mean``, ``zca_matrix``, ``zca_inverse``)."""
    from harness.data import TensorSpace, fit_zca

    space = PixelSpace.zca(ZCA_VARIANT, {"source": "tensors"}, PixelSpace.unit())
    return TensorSpace(space, fit_zca(unit_images, ZCA_VARIANT))


def _init_images(
    spec: CondenseSpec, ctx: CondenseContext, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, list[str], dict[str, Any]]:
    """(images, labels, lineage, init record) for a synthesis method."""
    from harness.data import random_real_indices

    k, ipc = ctx.num_classes, ctx.ipc
    if spec.init == "real":
        # The shared random-real stream: iteration 0 of a synthesis run is the `random` set.
        idx = random_real_indices(ctx.labels, ipc, ctx.seed, k).to(ctx.labels.device)
        return ctx.images[idx].clone(), ctx.labels[idx].clone(), [], {"init": "real"}
    labels = torch.arange(k, device=ctx.device).repeat_interleave(ipc)
    if spec.init == "noise":
        c, (h, w) = ctx.channels, ctx.image_size
        x = torch.randn(k * ipc, c, h, w, generator=gen).to(ctx.device)
        return x, labels, [], {"init": "noise", "distribution": "standard normal in pixel space"}
    if check_init(spec.init) == "selection":
        return _init_from_selection(spec.init, ctx)
    return _init_from_ref(spec, ctx)


def _init_from_selection(
    name: str, ctx: CondenseContext
) -> tuple[torch.Tensor, torch.Tensor, list[str], dict[str, Any]]:
    """The set the selection method ``name`` picks (its default configuration) from the images
    this run sees (same dataset, split, pixel space, IPC, seed and network), in-process: the
    images ``harness condense --method NAME`` with the same settings would write (its
    generator, ``(seed, "NAME/init")``, and its class order). No artifact is made, so the
    lineage stays empty; the init record names the method and its config hash."""
    sel = get_method(name)
    cfg = sel.configure(build_config(sel), ctx)
    record = config_record(cfg)
    tensors, extra, _, run = _run_selection(sel, cfg, ctx, None)
    rec: dict[str, Any] = {
        "init": "selection",
        "method": sel.name,
        "config": record,
        "config_hash": config_hash(sel.name, record),
        "selection_s": run["selection_s"],
    }
    if extra:
        rec["info"] = extra
    return tensors["images"].to(ctx.device), tensors["labels"].to(ctx.device), [], rec


def _init_from_ref(
    spec: CondenseSpec, ctx: CondenseContext
) -> tuple[torch.Tensor, torch.Tensor, list[str], dict[str, Any]]:
    from dcregistry.store import open_ref
    from harness.data import TensorSpace, ZCATransform

    art = open_ref(spec.init, store=spec.store)
    md = art.metadata
    want_shape = [ctx.channels, *ctx.image_size]
    problems = []
    if md["dataset"] != ctx.dataset:
        problems.append(f"dataset {md['dataset']} != {ctx.dataset}")
    if list(md["image_shape"]) != want_shape:
        problems.append(f"image_shape {md['image_shape']} != {want_shape}")
    if md["ipc"] != ctx.ipc:
        problems.append(f"ipc {md['ipc']} != {ctx.ipc}")
    if md["label_kind"] != "hard":
        problems.append("soft labels")
    space = TensorSpace.of(md["pixel_space"])
    if space.space.is_zca:
        # Another space is mapped through unit range only when that is exact: kornia ZCA with
        # its tensors stored (KIP's per-image standardisation cannot be undone).
        ps = space.space
        if ps.zca_standardizes or not ps.zca_stored:
            problems.append(
                f"its pixel space ({ps.describe()}) cannot be mapped back to "
                "unit range exactly; start from a set in this run's pixel space"
            )
        else:
            assert ps.variant is not None  # PixelSpace.parse gives every zca space its variant
            zca = ZCATransform.from_tensors({n: art.torch(n) for n in ps.tensor_names}, ps.variant)
            space = TensorSpace(ps, zca)
    if problems:
        raise UserError(f"init set {spec.init} cannot start this run: {'; '.join(problems)}")
    x = art.torch("images").float()
    same = space.same_as(ctx.space)
    if not same:
        x = ctx.space.from_unit(space.to_unit(x))
    y = art.torch("labels").long()
    return (
        x.to(ctx.device),
        y.to(ctx.device),
        [art.digest],
        {
            "init": "artifact",
            "ref": spec.init,
            "digest": art.digest,
            **({} if same else {"converted_from": md["pixel_space"]}),
        },
    )


def _protocol(spec: CondenseSpec):
    from harness.protocols import load_protocol

    if not spec.protocol:
        return None
    return load_protocol(spec.protocol).with_overrides(epochs=spec.eval_epochs, runs=spec.eval_runs)


class _Validator:
    """Evaluates candidate sets on the validation split under the protocol (never the test set)."""

    def __init__(self, protocol, data: _Data):
        from harness.engine.evaluate import protocol_aug_factory
        from harness.engine.trainer import TestSet

        self.protocol = protocol
        ctx = data.ctx
        self.factory = protocol_aug_factory(protocol, ctx.space, ctx.dsa_strategy, ctx.image_size[1])
        # eval_every loads the context with its validation split (see _load)
        assert data.val_images is not None and data.val_labels is not None
        self.val = TestSet(data.val_images, data.val_labels)
        self.num_classes = ctx.num_classes
        self.device = ctx.device
        # Sequential on CPU keeps the numbers independent of timing-based choices (resumes match).
        self.strategy = "sequential" if ctx.device.type == "cpu" else "auto"
        self.progress = ctx.progress

    def __call__(self, tensors: dict[str, torch.Tensor], at: int = 0) -> tuple[float, list[float]]:
        from harness.engine.evaluate import evaluate_sets
        from harness.engine.trainer import TrainSet

        lr = float(tensors["lr"]) if "lr" in tensors else None
        train = TrainSet(
            tensors["images"].to(self.device), tensors["labels"].to(self.device), self.num_classes, lr
        )
        p = self.protocol
        tick = (
            self.progress(p.runs * (p.epochs + 1), f"validation at iteration {at}") if self.progress else None
        )
        res = evaluate_sets(train, self.val, p, self.factory, strategy=self.strategy, tick=tick)
        accs = res.accuracies
        return sum(accs) / len(accs), accs


# --- the loop -----------------------------------------------------------------------------------


def _downsample(points: list[list[float]], n: int = MAX_CURVE_POINTS) -> list[list[float]]:
    if len(points) <= n:
        return points
    step = (len(points) - 1) / (n - 1)
    return [points[round(i * step)] for i in range(n)]


def _replaceable_out(out: Path) -> bool:
    """An output directory ours to replace: an artifact and/or a checkpoint, nothing else."""
    if out.is_symlink() or not out.is_dir():
        return False
    rest = [p for p in out.iterdir() if p.name != CHECKPOINT_DIR]
    return not rest or is_artifact_dir(out)


def _prepare_out(spec: CondenseSpec) -> None:
    out = spec.out
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} exists and is not a directory; choose another output directory")
    if out.is_dir():
        others = [p.name for p in out.iterdir() if p.name != CHECKPOINT_DIR]
        if others and not spec.overwrite:
            raise UserError(
                f"{out} exists and is not empty; choose another output directory or allow overwriting"
            )
        if (out / CHECKPOINT_DIR).exists() and not spec.resume:
            raise UserError(
                f"{out} holds a checkpoint of an unfinished run; resume it or delete {out / CHECKPOINT_DIR}"
            )


def condense(spec: CondenseSpec, progress: Progress | None = None) -> Outcome:
    """Run ``spec.method`` and write the artifact to ``spec.out``; see the module docstring."""
    from harness.engine.evaluate import resolve_device

    t_start = time.perf_counter()
    spec.out = Path(spec.out)
    method = get_method(spec.method)
    _check_request(spec, method)
    cfg = build_config(
        method, spec.options, {"iterations": spec.iterations} if spec.iterations is not None else None
    )
    if spec.iterations is not None and "iterations" not in {f.name for f in dataclasses.fields(cfg)}:
        raise MethodOptionError(f"method {method.name} has no iterations setting")
    from harness.models import model_factory

    model_factory(spec.model)  # unknown model names fail before any data is loaded
    protocol = _protocol(spec)
    if protocol is not None and not spec.eval_every:
        raise UserError("a validation protocol is only used with an evaluation interval")
    _prepare_out(spec)
    device = resolve_device(spec.device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    scores_on_validation = method.uses_validation(cfg)  # e.g. ORS: held out even without eval_every
    data = _load(spec, device, bool(spec.eval_every) or scores_on_validation, method.data_space(cfg))
    ctx = data.ctx
    if scores_on_validation:
        ctx.val_images, ctx.val_labels = data.val_images, data.val_labels
    ctx.progress = progress
    cfg = method.configure(cfg, ctx)
    record = config_record(cfg)
    chash = config_hash(method.name, record)
    validator = _Validator(protocol, data) if spec.eval_every else None  # after ctx.progress
    if isinstance(method, SelectionMethod):
        tensors, extra, lineage, run = _run_selection(method, cfg, ctx, validator)
    else:
        tensors, extra, lineage, run = _run_synthesis(method, cfg, ctx, spec, chash, validator, progress)
    wall = run.pop("wall_before_s", 0.0) + (time.perf_counter() - t_start)
    peak = _peak_memory(device)
    if protocol is not None:
        assert isinstance(run.get("validation"), ValidationSummary)  # a protocol comes with eval_every
        run["validation"] = dataclasses.replace(run["validation"], protocol=protocol.id)
    mc = MethodConfig(
        method=method.name,
        kind=method.kind,
        config=record,
        config_hash=chash,
        model=spec.model,
        device=device.type,
        data=data.split_info,
        wall_time_s=round(wall, 3),
        peak_memory_bytes=max(peak["peak_memory_bytes"], run.pop("peak_before", 0)),
        peak_memory_kind=peak["peak_memory_kind"],
        info=extra or None,
        threads=torch.get_num_threads(),
        allocator="heap" if allocator_tuned() else "system",
        **run,
    )
    method_config = mc.to_json()
    if ctx.space.zca is not None:  # the artifact carries the ZCA its pixels (and the test set) need
        tensors = {**tensors, **ctx.space.zca.to_tensors()}
    md = {
        "dataset": ctx.dataset,
        "num_classes": ctx.num_classes,
        "class_names": data.class_names,
        "image_shape": [ctx.channels, *ctx.image_size],
        "ipc": ctx.ipc,
        "method": method.name,
        "method_config": method_config,
        "pixel_space": ctx.space.to_dict(),
        "label_kind": "hard",
        "seed": spec.seed,
        "lineage": lineage,
    }
    # The finished set replaces the output directory, checkpoint included, in one rename.
    art = build_artifact(spec.out, tensors, md, overwrite=True, replace_ok=_replaceable_out)
    return Outcome(art, mc)


def _check_balanced(labels: torch.Tensor, k: int, ipc: int, who: str) -> None:
    counts = torch.bincount(labels.cpu(), minlength=k)
    if labels.numel() != k * ipc or bool((counts != ipc).any()):
        raise RuntimeError(f"{who} returned {counts.tolist()} images per class, expected {ipc}")


def _run_selection(method: SelectionMethod[Any], cfg, ctx: CondenseContext, validator):
    t0 = time.perf_counter()
    idx, extra = method.select(ctx, cfg, generator(ctx.seed, f"{method.name}/init"))
    idx = idx.to(ctx.labels.device).long()
    # Class order, as published sets are stored (class 0's images first).
    labels = ctx.labels[idx]
    order = torch.sort(labels.cpu(), stable=True).indices.to(idx.device)
    idx, labels = idx[order], labels[order]
    _check_balanced(labels, ctx.num_classes, ctx.ipc, method.name)
    if idx.unique().numel() != idx.numel():
        raise RuntimeError(f"{method.name} selected an image twice")
    seconds = time.perf_counter() - t0
    tensors = {"images": ctx.images[idx].detach().float().cpu().clone(), "labels": labels.cpu().clone()}
    run: dict[str, Any] = {"selection_s": round(seconds, 3)}  # MethodConfig fields
    if validator is not None:
        acc, accs = validator(tensors)
        run["validation"] = ValidationSummary(
            curve=[[0, acc]], best_iteration=0, best_accuracy=acc, accuracies=accs
        )
    return tensors, extra, [], run


def _run_synthesis(
    method: SynthesisMethod[Any],
    cfg,
    ctx: CondenseContext,
    spec: CondenseSpec,
    chash: str,
    validator,
    progress: Progress | None,
):
    iterations = int(cfg.iterations)
    identity = {
        "method": method.name,
        "config_hash": chash,
        "dataset": ctx.dataset,
        "ipc": ctx.ipc,
        "seed": spec.seed,
        "init": spec.init,
        "model": spec.model,
        "image_shape": [ctx.channels, *ctx.image_size],
        "eval_every": spec.eval_every,
        "protocol": validator.protocol.id if validator else None,
    }
    resumed = load_checkpoint(spec.out) if spec.resume else None
    init_gen = generator(spec.seed, f"{method.name}/init")
    best: dict[str, torch.Tensor] | None = None
    if resumed is not None:
        doc, flat = resumed
        diff = doc.differences(identity)
        if diff:
            raise CheckpointError(
                f"the checkpoint in {spec.out} was made with different "
                f"{', '.join(diff)}; resume with the same settings"
            )
        sd = unflatten(doc.state, flat)
        state = method.load_state_dict(ctx, cfg, sd)
        start = doc.iteration
        losses, curve = doc.losses, doc.curve
        lineage, init_rec = doc.lineage, doc.init_record
        best_it, best_acc = doc.best_iteration, doc.best_accuracy
        init_acc = doc.init_accuracy
        if best_it is not None:
            best = unflatten(doc.best, flat, "checkpoint.best")
        step_s, wall_before, peak_before = doc.step_s, doc.wall_s, doc.peak_bytes
    else:
        images, labels, lineage, init_rec = _init_images(spec, ctx, init_gen)
        _check_balanced(labels, ctx.num_classes, ctx.ipc, f"init {spec.init}")
        state = method.init_state(ctx, cfg, images, labels, init_gen)
        start, losses, curve = 0, [], []
        best_it, best_acc = None, None
        step_s, wall_before, peak_before = 0.0, 0.0, 0
        # The initial set on the same split and protocol: what the run must beat (not a
        # candidate for selection, or the check below could never fail).
        init_acc = validator(method.result(state), 0)[0] if validator is not None else None
    first_s = resumed[0].first_iteration_s if resumed is not None else None
    t_session = time.perf_counter()
    tick = progress(iterations, f"{method.name} ipc {ctx.ipc}") if progress else None
    if tick and start:
        tick(start)
    for it in range(start, iterations):
        t0 = time.perf_counter()
        loss = float(method.step(ctx, cfg, state, it, generator(spec.seed, f"{method.name}/iter{it}")))
        dt = time.perf_counter() - t0
        step_s += dt
        if it == 0:
            first_s = dt  # includes one-time work (torch.compile of the method's graphs)
        losses.append([it, loss])
        done = it + 1
        problem = (f"the loss is {loss}" if not math.isfinite(loss) else None) or method.diverged(state)
        if problem:
            ck = spec.out / CHECKPOINT_DIR / "state.json"
            kept = f"; the checkpoint {ck} is kept" if ck.is_file() else ""
            raise DivergedError(
                f"{method.name} diverged at iteration {done}: {problem}; no artifact was written{kept}. "
                "Lower the method's learning rates (see its options) and run again"
            )
        if validator is not None and (done % spec.eval_every == 0 or done == iterations):
            cand = method.result(state)
            acc, _ = validator(cand, done)
            curve.append([done, acc])
            if best_acc is None or acc > best_acc:  # ties keep the earlier (smaller) iteration
                best_it, best_acc, best = done, acc, cand
        if tick:
            tick(1, loss=loss, val=curve[-1][1] if curve else None)
        if spec.checkpoint_every and done % spec.checkpoint_every == 0 and done < iterations:
            flat = {}
            checkpoint = Checkpoint(
                identity=identity,
                iteration=done,
                state=flatten(method.state_dict(state), flat, "state"),
                best=flatten(best, flat, "best") if best is not None else None,
                losses=losses,
                curve=curve,
                lineage=lineage,
                init_record=init_rec,
                best_iteration=best_it,
                best_accuracy=best_acc,
                init_accuracy=init_acc,
                step_s=step_s,
                first_iteration_s=first_s,
                wall_s=wall_before + (time.perf_counter() - t_session),
                peak_bytes=max(peak_before, _peak_memory(ctx.device)["peak_memory_bytes"]),
            )
            save_checkpoint(spec.out, checkpoint, flat)
    final = method.result(state)
    tensors = best if best is not None else final
    _check_balanced(tensors["labels"], ctx.num_classes, ctx.ipc, method.name)
    run: dict[str, Any] = {  # MethodConfig fields, and what the loop adds to its totals
        "iterations": iterations,
        "s_per_iter": round(step_s / max(1, iterations), 6),
        "first_iteration_s": round(first_s, 6) if first_s is not None else None,
        "init": init_rec,
        "resumed": resumed is not None,
        "loss": LossSummary(
            first=losses[0][1] if losses else None,
            last=losses[-1][1] if losses else None,
            curve=_downsample(losses),
        ),
        "wall_before_s": wall_before,
        "peak_before": peak_before,
    }
    if validator is not None:
        run["validation"] = ValidationSummary(
            curve=curve,
            best_iteration=best_it,
            best_accuracy=best_acc,
            initial_accuracy=init_acc,
            every=spec.eval_every,
        )
    run["quality"] = QualityCheck(LossTrend.of([v for _, v in losses]), init_acc, best_acc).record()
    return tensors, None, lineage, run
