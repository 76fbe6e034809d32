"""harness.augment: registry, determinism, DSA semantics, DC, torchvision policies (fast)."""

from __future__ import annotations

import math
import sys

import pytest
import torch

from dcregistry.errors import UnknownNameError, UserError, ValidationError
from harness.augment import (
    AUGMENTATIONS,
    DCAugmentation,
    DSAAugmentation,
    DSAParams,
    DSASample,
    apply_dsa,
    create_augmentation,
    sample_dsa,
)
from harness.augment.dsa import FAMILIES
from harness.data import TensorSpace

SHAPES = [(1, 28, 28), (1, 8, 8), (3, 32, 32), (3, 64, 64)]
CIFAR = TensorSpace.of(
    {"kind": "normalized", "mean": [0.4914, 0.4822, 0.4465], "std": [0.2023, 0.1994, 0.2010]}
)
TV_AUGS = ["imagenet", "randaug", "autoaug"]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(n=6, shape=(3, 32, 32), seed=0) -> torch.Tensor:
    return torch.randn(n, *shape, generator=gen(1000 + seed))


# --- registry, none, PixelStats ---------------------------------------------------------------


def test_registry_names_and_unknown():
    assert AUGMENTATIONS.names() == sorted(["none", "dsa", "dc", "imagenet", "randaug", "autoaug"])
    with pytest.raises(UnknownNameError, match="randaug"):
        create_augmentation("randaugment")
    clips = {n: create_augmentation(n).clips for n in AUGMENTATIONS.names()}
    assert clips == {
        "none": False,
        "dsa": False,
        "dc": False,
        "imagenet": True,
        "randaug": True,
        "autoaug": True,
    }


def test_import_does_not_import_torchvision():
    # harness.augment must not import torchvision at import time (it is imported lazily)
    code = "import sys, harness.augment; assert 'torchvision' not in sys.modules"
    import subprocess

    subprocess.run([sys.executable, "-c", code], check=True)


def test_none_is_identity():
    x = images()
    aug = create_augmentation("none")
    assert torch.equal(aug(x, gen(0)), x)
    assert aug.name == "none" and not aug.clipped


def test_pixel_space_round_trip_and_validation():
    u = torch.rand(2, 3, 4, 4)
    x = CIFAR.from_unit(u)
    assert torch.allclose(CIFAR.to_unit(x), u, atol=1e-6)
    assert torch.allclose(x[:, 0], (u[:, 0] - 0.4914) / 0.2023, atol=1e-5)
    assert torch.equal(TensorSpace.unit().to_unit(u), u)
    with pytest.raises(ValidationError):  # one value per channel, everywhere
        TensorSpace.of({"kind": "normalized", "mean": [0.5], "std": [0.2]}).from_unit(u)
    with pytest.raises(ValidationError):
        CIFAR.to_unit(torch.rand(1, 2, 4, 4))


def test_unit_range_augmentations_refuse_a_zca_space():
    """``needs_unit_range`` is a fact of the entry: the torchvision policies refuse ZCA pixels."""
    zca = TensorSpace.of(
        {"kind": "zca", "variant": "kornia-eps0.1", "transform": {}, "then": {"kind": "unit"}}
    )
    for name in AUGMENTATIONS.names():
        cls = AUGMENTATIONS.get(name)
        assert cls.needs_unit_range == (name in TV_AUGS)
        if cls.needs_unit_range:
            with pytest.raises(UserError, match="needs pixels in"):
                create_augmentation(name, space=zca)
        else:
            create_augmentation(name, space=zca)


def test_bad_generator_and_input_rejected():
    aug = create_augmentation("dsa")
    with pytest.raises(TypeError):
        aug(images(), 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        aug(torch.zeros(3, 32, 32), gen(0))


# --- DSA -----------------------------------------------------------------------------------------


def forced(family: str, x: torch.Tensor, seed: int = 0) -> DSASample:
    return sample_dsa(x.shape[0], "", gen(seed), shape=tuple(x.shape[1:]), family=family)


def test_dsa_deterministic_per_seed():
    x = images(8)
    aug = create_augmentation("dsa")
    outs = [aug(x, gen(s)) for s in (3, 3, 4)]
    assert torch.equal(outs[0], outs[1])
    assert not torch.equal(outs[0], outs[2])
    # the family choice is uniform over the strategy: all six families show up
    fams = {sample_dsa(2, aug.strategy, gen(s), shape=(3, 32, 32)).family for s in range(60)}
    assert fams == set(FAMILIES)
    fams = {sample_dsa(2, "crop_flip", gen(s), shape=(3, 32, 32)).family for s in range(30)}
    assert fams == {"crop", "flip"}


def test_dsa_strategy_defaults_and_errors():
    assert DSAAugmentation().strategy == "color_crop_cutout_flip_scale_rotate"
    assert "flip" not in DSAAugmentation.for_dataset("mnist").families
    assert create_augmentation("dsa", strategy="color_crop").families == ("color", "crop")
    with pytest.raises(UnknownNameError):
        DSAAugmentation("color_zoom")
    with pytest.raises(ValueError):
        sample_dsa(4, "color", gen(0))  # no shape


@pytest.mark.parametrize("family", FAMILIES)
def test_dsa_gradient_flows_through_every_family(family):
    x = images(4, (3, 16, 16)).requires_grad_(True)
    out = apply_dsa(x, forced(family, x))
    (out * torch.randn_like(out)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("shape", SHAPES)
def test_dsa_every_family_keeps_shape(shape):
    x = images(3, shape)
    for family in FAMILIES:
        out = apply_dsa(x, forced(family, x))
        assert out.shape == x.shape and out.is_contiguous(), family
        out.view(3, -1)  # the original's crop broke a following .view on 1-channel images


def test_dsa_siamese_same_sample_same_transform():
    x = images(5)
    for seed, family in enumerate(FAMILIES):
        s = forced(family, x, seed)
        assert torch.equal(apply_dsa(x, s), apply_dsa(x.clone(), s)), family
    # IPC 1: a sample for one image applies to a batch of one
    one = images(1, (1, 28, 28))
    for family in FAMILIES:
        assert apply_dsa(one, forced(family, one)).shape == one.shape
    # broadcast: one draw shared by the whole batch (and by a batch of another size)
    s1 = sample_dsa(1, "color_crop_cutout_flip_scale_rotate", gen(7), shape=(3, 32, 32))
    same = images(1).expand(4, -1, -1, -1)
    out = apply_dsa(same, s1, broadcast=True)
    assert all(torch.allclose(out[0], out[i]) for i in range(4))
    assert torch.allclose(apply_dsa(same[:1], s1), out[:1])
    with pytest.raises(ValueError, match="broadcast"):
        apply_dsa(same, s1)
    with pytest.raises(ValueError):
        apply_dsa(images(4, (3, 28, 28)), s1, broadcast=True)  # drawn for 32x32


def test_dsa_flip_semantics():
    x = images(4)
    on = DSASample("flip", 4, (3, 32, 32), {"flip": torch.ones(4, dtype=torch.bool)})
    off = DSASample("flip", 4, (3, 32, 32), {"flip": torch.zeros(4, dtype=torch.bool)})
    assert torch.equal(apply_dsa(x, on), x.flip(-1))
    assert torch.equal(apply_dsa(x, off), x)


def test_dsa_crop_is_integer_shift_with_zero_fill():
    x = images(2, (1, 8, 8))
    s = DSASample("crop", 2, (1, 8, 8), {"ty": torch.tensor([1, -1]), "tx": torch.tensor([-1, 0])})
    out = apply_dsa(x, s)
    exp = torch.zeros_like(x)
    exp[0, :, :7, 1:] = x[0, :, 1:, :7]  # out[i, j] = x[i + 1, j - 1]
    exp[1, :, 1:, :] = x[1, :, :7, :]  # out[i, j] = x[i - 1, j]
    assert torch.equal(out, exp)
    # drawn shifts stay within +-int(0.125 H + 0.5)
    d = sample_dsa(500, "crop", gen(0), shape=(3, 32, 32))
    assert d.values["ty"].abs().max() == 4 and d.values["tx"].abs().max() == 4
    assert d.values["ty"].dtype == torch.int64


def test_dsa_cutout_zeroes_a_half_size_square():
    x = torch.ones(3, 1, 32, 32)
    centres = {"cy": torch.tensor([16, 0, 31]), "cx": torch.tensor([16, 0, 20])}
    s = DSASample("cutout", 3, (1, 32, 32), centres)
    out = apply_dsa(x, s)
    zeros = (out == 0).sum(dim=(1, 2, 3)).tolist()
    # full square; clipped at a corner; at the bottom edge (rows 23..31)
    assert zeros == [16 * 16, 8 * 8, 9 * 16]
    assert (out[0, 0, 8:24, 8:24] == 0).all()
    drawn = apply_dsa(torch.ones(50, 1, 32, 32), sample_dsa(50, "cutout", gen(1), shape=(1, 32, 32)))
    z = (drawn == 0).sum(dim=(1, 2, 3))
    assert (z > 0).all() and (z <= 256).all() and (z == 256).any()


def test_dsa_scale_rotate_identity_and_ranges():
    x = images(2, (3, 16, 16))
    ident = DSASample("scale", 2, (3, 16, 16), {"sx": torch.ones(2), "sy": torch.ones(2)})
    assert torch.allclose(apply_dsa(x, ident), x, atol=1e-5)
    rot0 = DSASample("rotate", 2, (3, 16, 16), {"angle": torch.zeros(2)})
    assert torch.allclose(apply_dsa(x, rot0), x, atol=1e-5)
    sc = sample_dsa(1000, "scale", gen(0), shape=(3, 16, 16)).values
    assert sc["sx"].min() >= 1 / 1.2 and sc["sx"].max() <= 1.2 and not torch.equal(sc["sx"], sc["sy"])
    ang = sample_dsa(1000, "rotate", gen(0), shape=(3, 16, 16)).values["angle"]
    assert ang.abs().max() <= math.radians(15) and ang.abs().max() > math.radians(14)


def test_dsa_color_statistics():
    v = sample_dsa(2000, "color", gen(0), shape=(3, 32, 32)).values
    b, sat, con = v["brightness"], v["saturation"], v["contrast"]
    assert b.min() >= -0.5 and b.max() <= 0.5 and abs(float(b.mean())) < 0.03
    assert sat.min() >= 0 and sat.max() <= 2 and con.min() >= 0.5 and con.max() <= 1.5
    # brightness alone (saturation = contrast = 1) is a per-image constant shift within +-0.5
    x = images(4)
    s = DSASample(
        "color", 4, (3, 32, 32), {"brightness": b[:4], "saturation": torch.ones(4), "contrast": torch.ones(4)}
    )
    d = apply_dsa(x, s) - x
    assert torch.allclose(d, b[:4].view(-1, 1, 1, 1).expand_as(d), atol=1e-5)
    # saturation 0 makes every channel equal to the channel mean; contrast keeps the image mean
    s = DSASample(
        "color",
        4,
        (3, 32, 32),
        {"brightness": torch.zeros(4), "saturation": torch.zeros(4), "contrast": torch.full((4,), 1.3)},
    )
    out = apply_dsa(x, s)
    assert torch.allclose(out[:, 0], out[:, 1], atol=1e-5)
    assert torch.allclose(out.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)), atol=1e-5)


def test_dsa_align_corners_option():
    x = images(2, (3, 16, 16))
    s = forced("rotate", x)
    s_true = DSASample("rotate", 2, (3, 16, 16), s.values, DSAParams(align_corners=True))
    assert not torch.allclose(apply_dsa(x, s), apply_dsa(x, s_true))


# --- global RNG, DC -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["none", "dsa", "dc", "imagenet", "randaug", "autoaug"])
def test_global_rng_state_and_input_untouched(name):
    aug = create_augmentation(name)
    x = torch.rand(8, 3, 16, 16)
    x_copy = x.clone()
    before = torch.get_rng_state()
    aug(x, gen(0))
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(x, x_copy)


def test_dc_shapes_determinism_and_crop_fill():
    aug = create_augmentation("dc")
    for shape in SHAPES:
        x = images(6, shape)
        a, b = aug(x, gen(5)), aug(x, gen(5))
        assert a.shape == x.shape and torch.equal(a, b)
        assert not torch.equal(a, aug(x, gen(6)))
    # crop only: each image is an integer shift by <= 4, filled with the batch channel mean
    x = images(8, (1, 16, 16))
    out = DCAugmentation(ops=("crop",))(x, gen(0))
    fill = x.mean()
    for i in range(8):
        shifted = [
            (dy, dx)
            for dy in range(-4, 5)
            for dx in range(-4, 5)
            if torch.allclose(
                out[i, 0, max(0, -dy) : 16 - max(0, dy), max(0, -dx) : 16 - max(0, dx)],
                x[i, 0, max(0, dy) : 16 + min(0, dy), max(0, dx) : 16 + min(0, dx)],
                atol=1e-6,
            )
        ]
        assert shifted, i
        dy, dx = shifted[0]
        if dy > 0:
            assert torch.allclose(out[i, 0, 16 - dy :], fill, atol=1e-6)
    # rotate/scale fill with the channel mean: a constant image stays constant
    const = torch.full((4, 3, 12, 12), 0.7)
    assert torch.allclose(aug(const, gen(1)), const, atol=1e-5)
    with pytest.raises(ValueError):
        DCAugmentation(ops=("crop", "noise"))


# --- torchvision policies ----------------------------------------------------------------------


@pytest.mark.parametrize("name", TV_AUGS)
def test_tv_shapes_and_determinism(name):
    mnist = TensorSpace.of({"kind": "normalized", "mean": [0.1307], "std": [0.3081]})
    for stats, shape in [(mnist, (1, 28, 28)), (CIFAR, (3, 32, 32)), (mnist, (1, 8, 8))]:
        x = stats.from_unit(torch.rand(4, *shape, generator=gen(0)))
        out = create_augmentation(name, space=stats)(x, gen(1))
        assert out.shape == x.shape and out.dtype == x.dtype
    aug = create_augmentation(name, space=CIFAR)
    x = CIFAR.from_unit(torch.rand(6, 3, 32, 32, generator=gen(0)))
    a, b, c = aug(x, gen(9)), aug(x, gen(9)), aug(x, gen(10))
    assert torch.equal(a, b) and not torch.equal(a, c)
    # each image draws its own op: the first image's result does not depend on the batch size
    assert torch.equal(aug(x[:2], gen(9))[0], a[0])


@pytest.mark.parametrize("name", TV_AUGS)
def test_tv_output_in_input_pixel_space(name):
    levels = torch.randint(0, 255, (8, 3, 32, 32), generator=gen(2))
    u = (levels.float() + 0.5) / 255  # mid-bin values: uint8 round trips are exact
    x = CIFAR.from_unit(u)
    out_norm = create_augmentation(name, space=CIFAR)(x, gen(3))
    out_unit = create_augmentation(name)(u, gen(3))
    # normalized in -> normalized out, the same transform as in unit space
    assert torch.allclose(CIFAR.to_unit(out_norm), out_unit, atol=1e-4)
    assert abs(float(out_norm.mean() - x.mean())) < 1.0  # roughly mean-preserving, in std units
    assert out_unit.min() >= 0 and out_unit.max() <= 1


@pytest.mark.parametrize("name", TV_AUGS)
def test_tv_clipped_flag(name):
    u = torch.rand(32, 3, 16, 16, generator=gen(4))
    aug = create_augmentation(name, space=CIFAR)
    aug(CIFAR.from_unit(u), gen(0))
    assert not aug.clipped and aug.clipped_pixels == 0
    aug(CIFAR.from_unit(u * 2 - 0.5), gen(0))  # a quarter of the pixels outside [0, 1]
    assert aug.clipped and aug.clipped_pixels > 0 and aug.clipped_calls == 1
    n_last = aug.last_clipped_pixels
    assert 0 < n_last <= u.numel() // 2 + 2000
    aug.reset_clipping()
    assert not aug.clipped


def test_imagenet_clamps_everything_randaug_only_clamping_ops():
    u = torch.rand(16, 3, 16, 16, generator=gen(4)) * 2 - 0.5
    outside = int(((u < 0) | (u > 1)).sum())
    inet = create_augmentation("imagenet")
    inet(u, gen(0))
    assert inet.clipped_pixels == outside
    # randaug clamps only the images that drew a range-sensitive op (brightness, equalize, ...)
    ra = create_augmentation("randaug")
    ra(u, gen(0))
    assert 0 < ra.clipped_pixels < outside


def test_autoaug_policy_by_size():
    aug = create_augmentation("autoaug", image_size=64)
    assert aug.policy_name(64) == "imagenet" and create_augmentation("autoaug").policy_name(32) == "cifar10"
    out = aug(torch.rand(2, 3, 64, 64), gen(0))
    assert out.shape == (2, 3, 64, 64)
    with pytest.raises(ValueError):
        aug(torch.rand(2, 3, 32, 32), gen(0))
