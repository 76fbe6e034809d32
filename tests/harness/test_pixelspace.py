"""harness.data.pixelspace and harness.data.zca: descriptors, round trips, ZCA fits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dcregistry.catalog import get_dataset_info
from dcregistry.errors import ValidationError
from harness.data.pixelspace import (
    describe,
    normalized_space,
    to_pixel_space,
    to_unit,
    uint8_space,
    unit_space,
    zca_space,
)
from harness.data.zca import ZCATransform, fit_zca, parse_variant


def _images(n=64, shape=(3, 4, 4), seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    # correlated pixels (a smooth random field + noise), in [0, 1]
    base = torch.rand((n, shape[0], 1, 1), generator=g)
    return (0.6 * base + 0.4 * torch.rand((n, *shape), generator=g)).clamp(0, 1)


def _cov(x: torch.Tensor, unbiased=True, center=True) -> torch.Tensor:
    flat = x.reshape(x.shape[0], -1).double()
    if center:
        flat = flat - flat.mean(0)
    return flat.T @ flat / (flat.shape[0] - (1 if unbiased else 0))


CIFAR_NORM = normalized_space(get_dataset_info("cifar10"))


# ------------------------------------------------------------------------------------ descriptors


@pytest.mark.parametrize("desc", [unit_space(), uint8_space(), CIFAR_NORM])
def test_round_trip_simple_kinds(desc):
    x = _images()
    if desc["kind"] == "uint8":
        x = (x * 255).round() / 255  # representable exactly
    y = to_pixel_space(x, desc)
    assert y.dtype == torch.float32 and y.shape == x.shape
    assert torch.allclose(to_unit(y, desc), x, atol=1e-6)


def test_uint8_values_and_normalized_values():
    x = torch.tensor([0.0, 0.5, 1.0, 0.2]).view(1, 1, 2, 2).repeat(1, 3, 1, 1)
    u8 = to_pixel_space(x, uint8_space())
    assert u8.dtype == torch.float32
    assert u8[0, 0].flatten().tolist() == [0.0, 128.0, 255.0, 51.0]
    n = to_pixel_space(x, CIFAR_NORM)
    assert n[0, 1, 0, 0].item() == pytest.approx((0 - 0.4822) / 0.1994)
    # single image [C, H, W] works too
    assert to_pixel_space(x[0], CIFAR_NORM).shape == (3, 2, 2)


@pytest.mark.parametrize("variant", ["kornia-eps0.1"])
@pytest.mark.parametrize("then", [unit_space(), CIFAR_NORM])
def test_round_trip_zca_kornia(variant, then):
    x = _images(n=80)
    zca = fit_zca(to_pixel_space(x, then), variant)
    desc = zca_space(variant, {"digest": zca.digest()}, then)
    y = to_pixel_space(x, desc, zca)
    assert y.shape == x.shape
    assert not torch.allclose(y, to_pixel_space(x, then))
    assert torch.allclose(to_unit(y, desc, zca), x, atol=1e-4)


def test_zca_kip_to_unit_gives_standardized_images():
    x = _images(n=80)
    then = CIFAR_NORM
    zca = fit_zca(to_pixel_space(x, then), "kip-reg0.1")
    desc = zca_space("kip-reg0.1", "sha256:" + "0" * 64, then)
    back = to_unit(to_pixel_space(x, desc, zca), desc, zca)
    inner = to_pixel_space(x, then).reshape(80, -1)
    inner = inner - inner.mean(1, keepdim=True)
    standardized = (inner / inner.norm(dim=1, keepdim=True)).reshape(x.shape)
    assert torch.allclose(back, to_unit(standardized, then), atol=1e-4)


def test_describe_one_liners():
    assert describe(unit_space()) == "unit: floats in [0, 1]"
    assert "0..255" in describe(uint8_space())
    d = describe(CIFAR_NORM)
    assert d.startswith("normalized") and "0.4914" in d and "0.2023" in d
    z = describe(zca_space("kornia-eps0.1", {}, unit_space()))
    assert z == "ZCA-whitened (kornia-eps0.1) after unit: floats in [0, 1]"
    assert all("\n" not in s for s in (d, z))


def test_descriptor_validation_errors():
    x = _images(n=4)
    with pytest.raises(ValidationError, match="pixel_space.kind"):
        to_pixel_space(x, {"kind": "float"})
    with pytest.raises(ValidationError, match="pixel_space.std"):
        to_pixel_space(x, {"kind": "normalized", "mean": [0.5] * 3, "std": [1.0, 0.0, 1.0]})
    with pytest.raises(ValidationError, match="has 2 values for 3 channel"):
        to_pixel_space(x, {"kind": "normalized", "mean": [0.5, 0.5], "std": [1, 1]})
    # One value per channel, always: a single mean for all channels means nothing to a reader
    # that expects per-channel stats, so it is refused (metadata validation agrees).
    with pytest.raises(ValidationError, match="has 1 values for 3 channel"):
        to_pixel_space(x, {"kind": "normalized", "mean": [0.5], "std": [0.25]})
    with pytest.raises(ValidationError, match="pixel_space.variant"):
        zca_space("kornia-eps0.5", {}, unit_space())
    with pytest.raises(ValidationError, match="pixel_space.then"):
        zca_space(
            "kornia-eps0.1",
            {},
            {"kind": "zca", "variant": "kip-reg0.1", "transform": {}, "then": unit_space()},
        )
    desc = zca_space("kip-reg0.1", {}, unit_space())
    with pytest.raises(ValidationError, match="needs its fitted ZCATransform"):
        to_pixel_space(x, desc)
    kornia = fit_zca(x.repeat(4, 1, 1, 1) + torch.rand(16, 3, 4, 4) * 0.01, "kornia-eps0.1")
    with pytest.raises(ValidationError, match="given ZCA transform is 'kornia-eps0.1'"):
        to_pixel_space(x, desc, kornia)


# ------------------------------------------------------------------------------------ ZCA


def test_parse_variant():
    assert parse_variant("kornia-eps0.1") == ("kornia", 0.1)
    assert parse_variant("kip-reg0.1") == ("kip", 0.1)
    assert parse_variant("kornia-eps1e-6") == ("kornia", 1e-6)
    for bad in ("kornia", "zca-eps0.1", "kip-reg0", "kip-reg-1"):
        with pytest.raises(ValidationError):
            parse_variant(bad)


def test_kornia_whitening_gives_identity_covariance_for_tiny_eps():
    x = _images(n=400, shape=(1, 4, 4))
    zca = fit_zca(x, "kornia-eps1e-8")
    y = zca.apply(x)
    assert torch.allclose(_cov(y), torch.eye(16, dtype=torch.float64), atol=1e-3)
    assert torch.allclose(zca.matrix, zca.matrix.T, atol=1e-5)  # ZCA matrix is symmetric
    assert torch.allclose(zca.invert(y), x, atol=1e-4)


def test_kornia_matches_the_published_formula():
    x = _images(n=50, shape=(2, 3, 3))
    zca = fit_zca(x, "kornia-eps0.1")
    flat = x.reshape(50, -1).double().numpy()
    mean = flat.mean(0)
    cov = (flat - mean).T @ (flat - mean) / (50 - 1)
    u, s, _ = np.linalg.svd(cov)
    w = u @ np.diag(1 / np.sqrt(s + 0.1)) @ u.T
    w_inv = u @ np.diag(np.sqrt(s + 0.1)) @ u.T
    assert np.allclose(zca.mean.numpy(), mean, atol=1e-6)
    assert np.allclose(zca.matrix.numpy(), w, atol=1e-5)
    assert np.allclose(zca.inverse.numpy(), w_inv, atol=1e-5)
    expected = (flat - mean) @ w
    assert np.allclose(zca.apply(x).reshape(50, -1).numpy(), expected, atol=1e-4)


def test_kip_matches_the_published_formula_and_whitens():
    x = _images(n=300, shape=(1, 3, 3))
    zca = fit_zca(x, "kip-reg0.1")
    flat = x.reshape(300, -1).double().numpy()
    flat = flat - flat.mean(1, keepdims=True)
    flat = flat / np.linalg.norm(flat, axis=1, keepdims=True)
    cov = flat.T @ flat / 300
    reg = 0.1 * np.trace(cov) / 9
    u, s, _ = np.linalg.svd(cov + reg * np.eye(9))
    w = u @ np.diag(s**-0.5) @ u.T
    assert np.allclose(zca.matrix.numpy(), w, atol=1e-4)
    assert torch.count_nonzero(zca.mean) == 0
    assert np.allclose(zca.apply(x).reshape(300, -1).numpy(), flat @ w, atol=1e-4)
    # with a tiny regulariser the standardized data is white except along the constant direction
    # that per-image centring removes
    tiny = fit_zca(x, "kip-reg1e-5")
    y = tiny.apply(x)
    expected = torch.eye(9, dtype=torch.float64) - torch.full((9, 9), 1 / 9, dtype=torch.float64)
    assert torch.allclose(_cov(y, unbiased=False, center=False), expected, atol=1e-3)


def test_kip_rank_control_when_fewer_images_than_features():
    x = _images(n=5, shape=(1, 4, 4))
    zca = fit_zca(x, "kip-reg0.1")
    evals = torch.linalg.eigvalsh(zca.matrix.double())
    assert (evals > 0).all()
    assert (torch.isclose(evals, torch.ones_like(evals), atol=1e-4)).sum() >= 16 - 5
    assert torch.allclose(
        zca.matrix.double() @ zca.inverse.double(), torch.eye(16, dtype=torch.float64), atol=1e-4
    )


def test_tensors_round_trip_and_digest():
    x = _images(n=30, shape=(1, 2, 2))
    zca = fit_zca(x, "kornia-eps0.1")
    tensors = zca.to_tensors()
    assert set(tensors) == {"zca_mean", "zca_matrix", "zca_inverse"}
    assert all(t.dtype == torch.float32 and t.is_contiguous() for t in tensors.values())
    back = ZCATransform.from_tensors(tensors, "kornia-eps0.1")
    assert torch.equal(back.apply(x), zca.apply(x))
    assert back.digest() == zca.digest() and zca.digest().startswith("sha256:")
    assert ZCATransform.from_tensors(tensors, "kip-reg0.1").digest() != zca.digest()
    with pytest.raises(ValidationError, match="missing tensors"):
        ZCATransform.from_tensors({"zca_mean": tensors["zca_mean"]}, "kornia-eps0.1")
    with pytest.raises(ValidationError, match="do not agree"):
        ZCATransform(tensors["zca_mean"], tensors["zca_matrix"][:2], tensors["zca_inverse"], "kornia-eps0.1")
    with pytest.raises(ValidationError, match="features"):
        zca.apply(torch.zeros(2, 1, 3, 3))


# ------------------------------------------------------------------------------------ one type


def test_numpy_pixelspace_agrees_with_the_torch_wrapper_and_metadata():
    from dcregistry.errors import MetadataError
    from dcregistry.metadata import validate_metadata
    from dcregistry.pixelspace import ZCA_TENSOR_NAMES, PixelSpace
    from tests.conftest import artifact_metadata

    x = _images(n=40)
    for then in (unit_space(), CIFAR_NORM):
        zca = fit_zca(to_pixel_space(x, then), "kornia-eps0.1")
        desc = zca_space("kornia-eps0.1", {"source": "tensors"}, then)
        mats = {k: v.numpy() for k, v in zca.to_tensors().items()}
        assert set(mats) == set(ZCA_TENSOR_NAMES) == set(PixelSpace.parse(desc).tensor_names)
        space = PixelSpace.parse(desc, 3)
        y_np = space.from_unit(x.numpy(), mats)
        y_t = to_pixel_space(x, desc, zca)
        assert np.allclose(y_np, y_t.numpy(), atol=1e-4)
        assert np.allclose(space.to_unit(y_np, mats), to_unit(y_t, desc, zca).numpy(), atol=1e-4)
    for desc in (unit_space(), uint8_space(), CIFAR_NORM):
        sp = PixelSpace.parse(desc)
        assert np.allclose(sp.from_unit(x.numpy()), to_pixel_space(x, desc).numpy(), atol=1e-6)
        assert sp.to_dict() == desc and sp.describe() == describe(desc)
    # metadata validation uses the same parser: one mean per channel, ZCA only on normalized/unit
    with pytest.raises(MetadataError, match="metadata.pixel_space.mean"):
        validate_metadata(
            artifact_metadata(pixel_space={"kind": "normalized", "mean": [0.1, 0.2], "std": [0.3, 0.3]})
            | _filled()
        )
    bad_zca = {"kind": "zca", "variant": "kip-reg0.1", "transform": {}, "then": {"kind": "uint8"}}
    with pytest.raises(MetadataError, match="metadata.pixel_space"):
        validate_metadata(artifact_metadata(pixel_space=bad_zca) | _filled())
    with pytest.raises(ValidationError, match="pixel_space.then"):
        to_pixel_space(x, bad_zca)


def _filled() -> dict:
    from dcregistry.metadata import with_defaults

    return {k: v for k, v in with_defaults({"dataset": "digits"}).items() if k != "dataset"}


def test_kip_standardisation_and_variant_rule_are_defined_once():
    """numpy and torch run the same KIP standardisation; descriptors take only the published
    variants, fitting also takes experimental strengths, through one parser."""
    from dcregistry.errors import ValidationError
    from dcregistry.pixelspace import PixelSpace, parse_zca_variant, standardize_rows

    flat = torch.randn(5, 12, dtype=torch.float64)
    assert np.allclose(
        standardize_rows(flat, torch).numpy(), standardize_rows(flat.numpy()), rtol=1e-12, atol=0
    )
    assert parse_zca_variant("kip-reg0.1") == ("kip", 0.1)
    assert parse_zca_variant("kip-reg0.5", published=False) == ("kip", 0.5)
    for bad in ("kip-reg0.5", "kip-reg0.1x", " kornia-eps0.1", None):
        with pytest.raises(ValidationError, match="unknown ZCA variant"):
            parse_zca_variant(bad)
    x = _images(n=40)
    then = CIFAR_NORM
    zca = fit_zca(to_pixel_space(x, then), "kip-reg0.1")
    desc = zca_space("kip-reg0.1", {"source": "tensors"}, then)
    mats = {k: v.numpy() for k, v in zca.to_tensors().items()}
    y_np = PixelSpace.parse(desc).from_unit(x.numpy(), mats)
    assert np.allclose(y_np, to_pixel_space(x, desc, zca).numpy(), atol=1e-4)


def test_named_spaces_are_the_descriptors_the_importers_write():
    from dcregistry.catalog import get_dataset_info
    from dcregistry.errors import ValidationError
    from dcregistry.pixelspace import SPACE_NAMES, PixelSpace

    info = get_dataset_info("cifar10")
    assert PixelSpace.named("normalized", info).to_dict() == CIFAR_NORM
    assert PixelSpace.named("zca-kornia", info, zca_stored=True).to_dict() == zca_space(
        "kornia-eps0.1", {"source": "tensors"}, unit_space()
    )
    assert PixelSpace.named("zca-kip", info).to_dict() == zca_space(
        "kip-reg0.1", {"source": "fit", "split": "train"}, CIFAR_NORM
    )
    assert PixelSpace.named("zca-kip", info).key == "zca:kip-reg0.1:normalized"
    assert [PixelSpace.named(n, info).kind for n in SPACE_NAMES] == [
        "normalized",
        "unit",
        "uint8",
        "zca",
        "zca",
    ]
    with pytest.raises(ValidationError, match="unknown pixel space"):
        PixelSpace.named("zca", info)
