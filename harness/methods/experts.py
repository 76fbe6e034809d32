"""MTT expert trajectories: networks trained on the real training set, their parameters saved
after every epoch, stored under the harness cache by digest.

Recipe (the official ``buffer.py`` defaults): SGD lr 0.01, no momentum, no weight decay, batch
256, cross-entropy, DSA augmentation of the real images (independent draws), no lr decay; 100
experts x 50 epochs. The images are the condensation context's: normalized, or ZCA-whitened for
MTT's ``zca`` (then DSA acts on the whitened images, as in ``buffer.py --zca``); the pixel space
is part of the digest, so ZCA and normalized experts never mix. Expert ``i`` is initialised and
shuffled from ``generator(seed, "experts/i")`` and trained with the engine's
:func:`~harness.engine.trainer.fit`.

Layout: ``$HARNESS_CACHE/experts/<digest>/`` (default cache ``~/.cache/harness``) with
``config.json`` (the canonical configuration, whose sha256 is the digest) and
``expert_<i>.safetensors`` holding ``trajectory`` float32 ``[epochs + 1, P]`` (the flattened
parameters, in ``named_parameters`` order, before training and after each epoch). Every file is
written to a temporary name and renamed, so an interrupted run leaves only whole experts and
continues where it stopped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from dcregistry.errors import UserError
from harness.methods.base import CondenseContext

CACHE_ENV = "HARNESS_CACHE"


class ExpertsError(UserError):
    """Expert trajectories are missing, incomplete or do not fit the request."""


@dataclass(frozen=True)
class ExpertSpec:
    """What defines a set of expert trajectories (hashed into the digest)."""

    dataset: str
    model: str
    image_shape: tuple[int, int, int]
    num_classes: int
    data_sha256: str  # the exact training tensors (images + labels) the experts saw
    num_experts: int = 100
    epochs: int = 50
    lr: float = 0.01
    momentum: float = 0.0
    weight_decay: float = 0.0
    batch_size: int = 256
    augmentation: str = "dsa"  # dsa | none
    seed: int = 0
    # "normalized" (the dataset's canonical stats) or "zca:<variant>:<inner kind>"; the exact ZCA
    # is pinned by data_sha256 (the whitened bytes). Left out of the record while "normalized",
    # so the digests of experts trained before this field existed stay valid.
    pixel_space: str = "normalized"

    def __post_init__(self) -> None:
        for name in ("num_experts", "epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ExpertsError(f"experts: {name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ExpertsError(f"experts: lr must be > 0, got {self.lr}")
        if self.augmentation not in ("dsa", "none"):
            raise ExpertsError(f"experts: augmentation must be dsa or none, got {self.augmentation!r}")

    def record(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["image_shape"] = list(self.image_shape)
        if d["pixel_space"] == "normalized":
            del d["pixel_space"]
        return d

    @property
    def digest(self) -> str:
        """sha256 of the canonical JSON of the record."""
        blob = json.dumps(self.record(), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(blob.encode()).hexdigest()


def cache_root() -> Path:
    """``$HARNESS_CACHE`` or ``~/.cache/harness``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "harness"


def experts_dir(spec: ExpertSpec) -> Path:
    return cache_root() / "experts" / spec.digest


def data_digest(images: Tensor, labels: Tensor) -> str:
    """sha256 of the training tensors' bytes (float32 images, int64 labels, little-endian)."""
    h = hashlib.sha256()
    h.update(json.dumps(list(images.shape)).encode())
    h.update(images.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    h.update(labels.detach().to("cpu", torch.int64).contiguous().numpy().tobytes())
    return h.hexdigest()


def spec_for(ctx: CondenseContext, **kw) -> ExpertSpec:
    """The expert spec for a condensation context (its data, pixel space, model and shape)."""
    return ExpertSpec(
        dataset=ctx.dataset,
        model=ctx.model,
        image_shape=(ctx.channels, *ctx.image_size),
        num_classes=ctx.num_classes,
        data_sha256=data_digest(ctx.images, ctx.labels),
        pixel_space=ctx.space.space.key,  # "normalized" or "zca:<variant>:<inner kind>"
        **kw,
    )


def flat_params(model: nn.Module) -> Tensor:
    """The parameters concatenated in ``named_parameters`` order (a detached float32 copy)."""
    return torch.cat([p.detach().reshape(-1).float() for p in model.parameters()]).cpu()


def _atomic_save(path: Path, tensors: dict[str, Tensor], metadata: dict[str, str]) -> None:
    from safetensors.torch import save_file

    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def expert_path(spec: ExpertSpec, i: int) -> Path:
    return experts_dir(spec) / f"expert_{i}.safetensors"


def missing_experts(spec: ExpertSpec) -> list[int]:
    """Indices of the experts not yet stored."""
    return [i for i in range(spec.num_experts) if not expert_path(spec, i).is_file()]


def train_experts(
    ctx: CondenseContext, spec: ExpertSpec, progress: Callable[[int, str], Callable[..., None]] | None = None
) -> Path:
    """Train (or finish training) the experts of ``spec`` on ``ctx``'s images; returns their directory."""
    import dataclasses as dc

    from harness.augment import Augmentation, create_augmentation
    from harness.engine.seeding import generator
    from harness.engine.trainer import TrainSet, fit
    from harness.protocols import load_protocol

    if tuple(spec.image_shape) != (ctx.channels, *ctx.image_size) or spec.num_classes != ctx.num_classes:
        raise ExpertsError("the expert spec does not match the training data's shape or classes")
    out = experts_dir(spec)
    out.mkdir(parents=True, exist_ok=True)
    cfg_path = out / "config.json"
    if not cfg_path.exists():
        _atomic_write_text(cfg_path, json.dumps(spec.record(), sort_keys=True, indent=1) + "\n")
    # The DC protocol's machinery with the expert recipe: `epochs` passes (the loop runs E + 1),
    # a decay of 1 (no lr change) and the given optimizer settings.
    protocol = dc.replace(
        load_protocol("dc-noaug"),
        name="mtt-expert",
        epochs=spec.epochs - 1,
        lr=spec.lr,
        momentum=spec.momentum,
        weight_decay=spec.weight_decay,
        decay=1.0,
        batch_size=spec.batch_size,
        runs=1,
    )
    aug: Augmentation
    if spec.augmentation == "dsa":
        from harness.augment.dsa import DSAAugmentation

        aug = DSAAugmentation(ctx.dsa_strategy)
    else:
        aug = create_augmentation("none")
    train = TrainSet(ctx.images, ctx.labels, ctx.num_classes)
    todo = missing_experts(spec)
    tick = progress(len(todo) * spec.epochs, f"experts ({len(todo)} to train)") if progress and todo else None
    for i in todo:
        gen = generator(spec.seed, f"experts/{i}")
        model = ctx.make_model(gen)
        traj = [flat_params(model)]

        def on_epoch(ep: int, model=model, traj=traj) -> None:
            traj.append(flat_params(model))
            if tick:
                tick(1)

        loss = fit(model, train, protocol, aug, gen, on_epoch=on_epoch)
        names = [n for n, _ in model.named_parameters()]
        shapes = [list(p.shape) for p in model.parameters()]
        _atomic_save(
            expert_path(spec, i),
            {"trajectory": torch.stack(traj)},
            {
                "digest": spec.digest,
                "names": json.dumps(names),
                "shapes": json.dumps(shapes),
                "final_loss": repr(float(loss)),
            },
        )
    return out


class Trajectories:
    """Read access to stored experts: ``epoch(i, e)`` -> flat parameters of expert ``i`` after epoch ``e``."""

    def __init__(self, spec: ExpertSpec):
        self.spec = spec
        missing = missing_experts(spec)
        if missing:
            raise ExpertsError(
                f"{len(missing)} of {spec.num_experts} experts for digest {spec.digest[:12]} "
                f"are missing in {experts_dir(spec)}; train them first"
            )

    def __len__(self) -> int:
        return self.spec.num_experts

    def epoch(self, i: int, e: int) -> Tensor:
        from safetensors import safe_open

        if not 0 <= e <= self.spec.epochs:
            raise ExpertsError(f"expert epoch {e} is outside 0..{self.spec.epochs}")
        with safe_open(str(expert_path(self.spec, i)), framework="pt") as f:
            theta: Tensor = f.get_slice("trajectory")[e].clone()
            return theta
