"""ZCA whitening as the published condensation code does it, in torch (no kornia, no jax).

Two variants, named by what they reproduce:

* ``kornia-eps0.1`` -- ``kornia.enhance.ZCAWhitening(eps=0.1)`` semantics, as used by MTT (and
  DATM etc.) on the training set: flatten each image to ``D = C*H*W`` features, subtract the
  per-feature mean over the dataset, covariance ``X^T X / (N - 1)`` (kornia's default unbiased
  estimate), decomposition ``U S U^T``, whitening ``W = U diag(1/sqrt(S + eps)) U^T``, inverse
  ``U diag(sqrt(S + eps)) U^T``; apply ``(x - mean) @ W``, invert ``y @ W^-1 + mean``.
  (MTT fits it on the [0, 1] ``ToTensor`` images -- pixel space ``then = {"kind": "unit"}``.)
* ``kip-reg0.1`` -- KIP's ``zca_normalize`` preprocessing: every image is centred on its own
  mean over all features and divided by its L2 norm ("layer norm"), covariance ``X^T X / N``
  (no dataset mean), regularisation ``reg = 0.1 * trace(cov) / D``,
  ``W = U diag(1/sqrt(S + reg)) U^T``, computed in float64; when ``N < D`` the eigenvalues past
  the N-th get factor 1 (KIP's rank control). KIP applied it to per-channel standardised images.
  The per-image centring/scaling is not invertible: :meth:`ZCATransform.invert` returns the
  standardised image (zero mean, unit norm per image), not the original pixels.

Both follow the published descriptions (the kornia docs and the KIP paper/code); the numbers are
computed in float64 here and stored as float32, so they agree with the originals to float32
precision, not bit for bit. ``fit_zca`` also accepts ``kornia-eps<x>`` / ``kip-reg<x>`` with any
positive number, for experiments and tests; artifacts use the two published names.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from dcregistry.errors import ValidationError
from dcregistry.pixelspace import ZCA_TENSOR_NAMES, ZCA_VARIANTS, parse_zca_variant, standardize_rows

# The names and the variant rule live in the one pixel-space type (dcregistry.pixelspace).
PUBLISHED_VARIANTS = ZCA_VARIANTS
TENSOR_NAMES = ZCA_TENSOR_NAMES


def parse_variant(variant: str) -> tuple[str, float]:
    """``"kornia-eps0.1"`` -> ``("kornia", 0.1)``; any positive strength is taken (experiments)."""
    return parse_zca_variant(variant, published=False)


def _standardize_per_image(flat: torch.Tensor) -> torch.Tensor:
    """KIP's per-image centring and L2 normalisation of ``[N, D]`` rows."""
    out: torch.Tensor = standardize_rows(flat, torch)
    return out


@dataclass
class ZCATransform:
    """A fitted ZCA transform on flattened ``C*H*W`` images.

    ``mean`` [D] (zeros for ``kip``), ``matrix`` [D, D] (the whitening ``W``, symmetric),
    ``inverse`` [D, D] (``W^-1``), ``variant`` (e.g. ``"kornia-eps0.1"``).
    """

    mean: torch.Tensor
    matrix: torch.Tensor
    inverse: torch.Tensor
    variant: str

    def __post_init__(self) -> None:
        parse_variant(self.variant)
        d = self.mean.numel()
        if self.mean.shape != (d,) or self.matrix.shape != (d, d) or self.inverse.shape != (d, d):
            raise ValidationError(
                "zca",
                f"tensor shapes mean {list(self.mean.shape)}, matrix {list(self.matrix.shape)}, "
                f"inverse {list(self.inverse.shape)} do not agree (expected [D], [D, D], [D, D])",
            )

    @property
    def kind(self) -> str:
        return parse_variant(self.variant)[0]

    @property
    def num_features(self) -> int:
        return int(self.mean.numel())

    def _flat(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Size]:
        if x.dim() < 3 or x.shape[-3:].numel() != self.num_features:
            raise ValidationError(
                "images",
                f"shape {list(x.shape)} does not match a ZCA transform of {self.num_features} features",
            )
        batch_shape = x.shape
        return x.reshape(-1, self.num_features), batch_shape

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """Whiten ``[..., C, H, W]`` images (float); same shape out."""
        flat, shape = self._flat(x)
        dtype = flat.dtype if flat.is_floating_point() else torch.float32
        flat = flat.to(dtype)
        m, w = self.mean.to(flat.device, dtype), self.matrix.to(flat.device, dtype)
        if self.kind == "kip":
            flat = _standardize_per_image(flat)
        return ((flat - m) @ w).reshape(shape)

    def invert(self, x: torch.Tensor) -> torch.Tensor:
        """Undo :meth:`apply` (for ``kip``: back to the per-image standardised images)."""
        flat, shape = self._flat(x)
        dtype = flat.dtype if flat.is_floating_point() else torch.float32
        flat = flat.to(dtype)
        m, inv = self.mean.to(flat.device, dtype), self.inverse.to(flat.device, dtype)
        return (flat @ inv + m).reshape(shape)

    def to(self, device: torch.device | str) -> ZCATransform:
        return ZCATransform(
            self.mean.to(device), self.matrix.to(device), self.inverse.to(device), self.variant
        )

    def to_tensors(self) -> dict[str, torch.Tensor]:
        """``{"zca_mean", "zca_matrix", "zca_inverse"}`` as contiguous float32 CPU tensors."""
        return {
            "zca_mean": self.mean.detach().to("cpu", torch.float32).contiguous(),
            "zca_matrix": self.matrix.detach().to("cpu", torch.float32).contiguous(),
            "zca_inverse": self.inverse.detach().to("cpu", torch.float32).contiguous(),
        }

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, torch.Tensor], variant: str) -> ZCATransform:
        """Rebuild from :meth:`to_tensors` output; ``variant`` comes from the pixel-space descriptor."""
        missing = [n for n in TENSOR_NAMES if n not in tensors]
        if missing:
            raise ValidationError(
                "zca", f"missing tensors {missing}", "a ZCA artifact stores zca_mean, zca_matrix, zca_inverse"
            )
        return cls(
            tensors["zca_mean"].float(),
            tensors["zca_matrix"].float(),
            tensors["zca_inverse"].float(),
            variant,
        )

    def digest(self) -> str:
        """``sha256:<hex>`` of the variant and the float32 tensors: names one fitted transform."""
        h = hashlib.sha256(self.variant.encode())
        for name, t in self.to_tensors().items():
            h.update(name.encode())
            h.update(str(list(t.shape)).encode())
            h.update(t.numpy().astype("<f4").tobytes())
        return "sha256:" + h.hexdigest()


def fit_zca(train_images: torch.Tensor, variant: str = "kornia-eps0.1", chunk: int = 4096) -> ZCATransform:
    """Fit ZCA on ``train_images`` ``[N, C, H, W]`` (already in the space it is applied on).

    See the module docstring for the two published variants. The covariance is accumulated in
    float64 in chunks of ``chunk`` images, and decomposed with ``torch.linalg.eigh`` in float64
    (for a symmetric PSD matrix this equals the SVD both originals use).
    """
    kind, strength = parse_variant(variant)
    if train_images.dim() != 4:
        raise ValidationError("images", f"expected [N, C, H, W], got shape {list(train_images.shape)}")
    n = int(train_images.shape[0])
    d = int(train_images[0].numel())
    if n < 2:
        raise ValidationError("images", f"ZCA needs at least 2 images, got {n}")
    flat = train_images.reshape(n, d)

    if kind == "kornia":
        mean = torch.zeros(d, dtype=torch.float64)
        for i in range(0, n, chunk):
            mean += flat[i : i + chunk].to("cpu", torch.float64).sum(0)
        mean /= n
    else:
        mean = torch.zeros(d, dtype=torch.float64)

    cov = torch.zeros(d, d, dtype=torch.float64)
    for i in range(0, n, chunk):
        x = flat[i : i + chunk].to("cpu", torch.float64)
        x = _standardize_per_image(x) if kind == "kip" else x - mean
        cov += x.T @ x

    if kind == "kornia":
        cov /= n - 1
        eps = strength
    else:
        cov /= n
        eps = strength * torch.trace(cov).item() / d

    evals, evecs = torch.linalg.eigh(cov)  # ascending
    evals = evals.clamp_min(0.0).flip(0)
    evecs = evecs.flip(1)
    scale = evals + eps
    inv_sqrt, sqrt = scale.rsqrt(), scale.sqrt()
    if kind == "kip" and n < d:  # KIP's rank control: directions past the N-th are left as is
        inv_sqrt[n:] = 1.0
        sqrt[n:] = 1.0
    matrix = (evecs * inv_sqrt) @ evecs.T
    inverse = (evecs * sqrt) @ evecs.T
    return ZCATransform(mean.float(), matrix.float(), inverse.float(), variant)
