"""Tests of harness.models: parameter counts (hand arithmetic), shapes, names, seeding."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dcregistry.errors import UnknownNameError, UserError
from harness.models import (
    MODELS,
    ConvNetConfig,
    ModelConfigError,
    create_model,
    list_models,
    model_factory,
    parse_convnet_name,
)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def conv(cin: int, cout: int, k: int, bias: bool = True) -> int:
    return cin * cout * k * k + (cout if bias else 0)


def linear(fin: int, fout: int) -> int:
    return fin * fout + fout


def affine(c: int) -> int:  # GroupNorm(C, C) / BatchNorm2d(C): weight + bias
    return 2 * c


# ---------------------------------------------------------------- parameter counts (by hand)


def test_convnet_default_cifar_is_320010():
    m = create_model("convnet", 3, 10, 32)
    expected = conv(3, 128, 3) + affine(128) + 2 * (conv(128, 128, 3) + affine(128)) + linear(128 * 4 * 4, 10)
    assert expected == 320_010
    assert n_params(m) == 320_010


def test_convnet_gray28_pads_to_32():
    m = create_model("convnet", 1, 10, 28)
    expected = conv(1, 128, 3) + affine(128) + 2 * (conv(128, 128, 3) + affine(128)) + linear(128 * 16, 10)
    assert n_params(m) == expected == 317_706
    assert m.features[0].padding == (3, 3)
    assert m.embed(torch.zeros(2, 1, 28, 28)).shape == (2, 128 * 4 * 4)


def test_convnet_d4_on_64px_and_auto_depth():
    expected = conv(3, 128, 3) + affine(128) + 3 * (conv(128, 128, 3) + affine(128)) + linear(128 * 4 * 4, 10)
    assert n_params(create_model("convnet-d4", 3, 10, 64)) == expected == 467_850
    assert n_params(create_model("convnet", 3, 10, 64)) == expected  # depth 4 chosen for 64 px
    assert sum(isinstance(mod, nn.Conv2d) for mod in create_model("convnet", 3, 10, 128).modules()) == 5


def test_convnet_w64():
    expected = conv(3, 64, 3) + affine(64) + 2 * (conv(64, 64, 3) + affine(64)) + linear(64 * 16, 10)
    assert n_params(create_model("convnet-w64", 3, 10, 32)) == expected == 86_282


def test_convnet_bn_and_ln_and_nn():
    m = create_model("convnet-bn", 3, 10, 32)
    assert n_params(m) == 320_010  # BatchNorm2d has the same weight+bias as GroupNorm(C, C)
    assert sum(isinstance(mod, nn.BatchNorm2d) for mod in m.modules()) == 3
    assert not any(isinstance(mod, nn.GroupNorm) for mod in m.modules())
    ln = create_model("convnet-ln", 3, 10, 32)  # LayerNorm([C, H, W]) before each pool
    expected = (
        conv(3, 128, 3)
        + 2 * 128 * 32 * 32
        + conv(128, 128, 3)
        + 2 * 128 * 16 * 16
        + conv(128, 128, 3)
        + 2 * 128 * 8 * 8
        + linear(2048, 10)
    )
    assert n_params(ln) == expected
    nn_ = create_model("convnet-nn", 3, 10, 32)
    assert n_params(nn_) == conv(3, 128, 3) + 2 * conv(128, 128, 3) + linear(2048, 10)


def test_convnet_instancenorm_is_groupnorm_c_c():
    gns = [mod for mod in create_model("convnet", 3, 10, 32).modules() if isinstance(mod, nn.GroupNorm)]
    assert len(gns) == 3 and all(g.num_groups == g.num_channels == 128 and g.affine for g in gns)
    gn4 = [mod for mod in create_model("convnet-gn", 3, 10, 32).modules() if isinstance(mod, nn.GroupNorm)]
    assert all(g.num_groups == 4 for g in gn4)


def test_mlp():
    assert n_params(create_model("mlp", 3, 10, 32)) == linear(3 * 32 * 32, 128) + linear(128, 128) + linear(
        128, 10
    )
    assert n_params(create_model("mlp", 1, 10, 28)) == linear(28 * 28, 128) + linear(128, 128) + linear(
        128, 10
    )


def test_lenet():
    tail = linear(16 * 5 * 5, 120) + linear(120, 84) + linear(84, 10)
    assert n_params(create_model("lenet", 3, 10, 32)) == conv(3, 6, 5) + conv(6, 16, 5) + tail == 62_006
    assert n_params(create_model("lenet", 1, 10, 28)) == conv(1, 6, 5) + conv(6, 16, 5) + tail


def test_alexnet():
    expected = (
        conv(3, 128, 5)
        + conv(128, 192, 5)
        + conv(192, 256, 3)
        + conv(256, 192, 3)
        + conv(192, 192, 3)
        + linear(192 * 4 * 4, 10)
    )
    assert n_params(create_model("alexnet", 3, 10, 32)) == expected == 1_872_202


def test_vgg11():
    widths = [(3, 64), (64, 128), (128, 256), (256, 256), (256, 512), (512, 512), (512, 512), (512, 512)]
    expected = sum(conv(a, b, 3) + affine(b) for a, b in widths) + linear(512, 10)
    assert n_params(create_model("vgg11", 3, 10, 32)) == expected
    assert n_params(create_model("vgg11-bn", 3, 10, 32)) == expected
    assert create_model("vgg11", 1, 10, 28).features[0].padding == (3, 3)


def test_resnet_variants():
    r18 = create_model("resnet18", 3, 10, 32)
    assert n_params(r18) == 11_173_962  # the usual CIFAR ResNet-18 count (norms have weight+bias)
    assert r18.classifier.in_features == 512
    assert any(isinstance(mod, nn.GroupNorm) for mod in r18.modules())
    bn = create_model("resnet18-bn", 3, 10, 32)
    assert n_params(bn) == n_params(r18) and not any(isinstance(mod, nn.GroupNorm) for mod in bn.modules())


# ---------------------------------------------------------------- shapes for every name

SHAPES = [(1, 28, 28), (1, 32, 32), (3, 32, 32), (3, 64, 64)]
HEAVY = {"resnet152", "vit"}
CASES = [
    (name, shape)
    for name in list_models()
    for shape in (SHAPES if name not in HEAVY else [(3, 32, 32), (1, 28, 28)])
]


@pytest.mark.parametrize(("name", "shape"), CASES, ids=[f"{n}-{'x'.join(map(str, s))}" for n, s in CASES])
def test_forward_shapes(name, shape):
    c, h, w = shape
    model = create_model(name, c, 7, (h, w)).eval()
    x = torch.randn(2, c, h, w)
    with torch.no_grad():
        out = model(x)
        emb = model.embed(x)
        assert out.shape == (2, 7)
        assert emb.ndim == 2 and emb.shape[0] == 2
        assert isinstance(model.classifier, nn.Linear)
        assert emb.shape[1] == model.classifier.in_features == model.embed_dim
        torch.testing.assert_close(out, model.classifier(emb))


def test_registered_names_match_listing():
    expected = {
        "convnet",
        "mlp",
        "lenet",
        "alexnet",
        "vgg11",
        "vgg11-bn",
        "resnet18",
        "resnet18-bn",
        "resnet152",
        "vit",
    }
    expected |= {f"convnet-d{d}" for d in range(1, 6)} | {f"convnet-w{w}" for w in (32, 64, 128, 256)}
    expected |= {
        f"convnet-{o}"
        for o in ("relu", "sigmoid", "leakyrelu", "swish", "nn", "bn", "ln", "in", "gn", "np", "mp", "ap")
    }
    assert set(list_models()) == expected


def test_digits_8x8_convnet():
    m = create_model("convnet", 1, 10, 8)  # depth 3: 8 -> 4 -> 2 -> 1
    assert m(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    assert m.embed_dim == 128
    with pytest.raises(ModelConfigError, match="too small"):
        create_model("convnet-d4", 1, 10, 8)
    assert isinstance(ModelConfigError("x"), UserError)


def test_non_square_input():
    m = create_model("convnet", 3, 5, (32, 16))
    assert m(torch.randn(2, 3, 32, 16)).shape == (2, 5)
    assert m.embed_dim == 128 * 4 * 2
    with pytest.raises(ModelConfigError, match="image_size"):
        create_model("convnet", 3, 5, (32, 32, 3))


# ---------------------------------------------------------------- names and options


def test_unknown_name():
    with pytest.raises(UnknownNameError, match="resnet18"):
        create_model("resnet19", 3, 10, 32)
    with pytest.raises(UnknownNameError):
        model_factory("transformer")


def test_combined_suffix_parsing():
    cfg = parse_convnet_name("ConvNet-D4-w64-BN-mp")
    assert cfg == ConvNetConfig(depth=4, width=64, norm="batchnorm", pool="max")
    m = create_model("convnet-d4-w64-bn-mp", 3, 10, 64)
    assert m.config == cfg
    assert sum(isinstance(mod, nn.Conv2d) for mod in m.modules()) == 4
    assert sum(isinstance(mod, nn.MaxPool2d) for mod in m.modules()) == 4
    assert sum(isinstance(mod, nn.BatchNorm2d) for mod in m.modules()) == 4
    assert m.features[0].out_channels == 64
    expected = conv(3, 64, 3) + affine(64) + 3 * (conv(64, 64, 3) + affine(64)) + linear(64 * 4 * 4, 10)
    assert n_params(m) == expected
    assert parse_convnet_name("convnet-sigmoid-np-d2") == ConvNetConfig(depth=2, act="sigmoid", pool="none")


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("convnet-d4-xx", "xx"),
        ("convnet-d0", "d0"),
        ("convnet-w64-tanh", "tanh"),
        ("convnet-bn-in", "in"),
        ("convnet-d3-d4", "d4"),
    ],
)
def test_bad_convnet_option(name, bad):
    with pytest.raises(UnknownNameError, match=f"'{bad}'"):
        create_model(name, 3, 10, 32)


def test_registered_convnet_names_agree_with_parser():
    for name in list_models():
        if name.startswith("convnet-"):
            assert MODELS.get(name).config == parse_convnet_name(name), name


def test_activations_are_used():
    def acts(name):
        return {type(mod) for mod in create_model(name, 3, 10, 32).features}

    assert nn.Sigmoid in acts("convnet-sigmoid") and nn.ReLU not in acts("convnet-sigmoid")
    leaky = [
        mod for mod in create_model("convnet-leakyrelu", 3, 10, 32).modules() if isinstance(mod, nn.LeakyReLU)
    ]
    assert len(leaky) == 3 and all(mod.negative_slope == 0.01 for mod in leaky)
    assert nn.SiLU in acts("convnet-swish")
    assert nn.ReLU in acts("convnet")
    assert nn.AvgPool2d in acts("convnet") and nn.MaxPool2d in acts("convnet-mp")
    assert not ({nn.AvgPool2d, nn.MaxPool2d} & acts("convnet-np"))


def test_overrides():
    m = create_model("convnet", 3, 10, 32, width=32, act="swish")
    assert m.config == ConvNetConfig(width=32, act="swish")
    assert any(
        isinstance(mod, nn.BatchNorm2d)
        for mod in create_model("vgg11", 3, 10, 32, norm="batchnorm").modules()
    )
    with pytest.raises(UnknownNameError, match="tanh"):
        create_model("convnet", 3, 10, 32, act="tanh")
    with pytest.raises(TypeError):
        create_model("convnet", 3, 10, 32, widht=32)


# ---------------------------------------------------------------- seeding


def _weights(model: nn.Module) -> list[torch.Tensor]:
    return [t.detach().clone() for t in model.state_dict().values()]


@pytest.mark.parametrize("name", ["convnet", "vit", "resnet18-bn"])
def test_generator_reproducible_and_leaves_global_rng(name):
    before = torch.get_rng_state()
    a = create_model(name, 3, 10, 32, generator=torch.Generator().manual_seed(7))
    b = create_model(name, 3, 10, 32, generator=torch.Generator().manual_seed(7))
    c = create_model(name, 3, 10, 32, generator=torch.Generator().manual_seed(8))
    assert torch.equal(torch.get_rng_state(), before)
    wa, wb, wc = _weights(a), _weights(b), _weights(c)
    assert all(torch.equal(x, y) for x, y in zip(wa, wb, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(wa, wc, strict=True))


def test_generator_advances_and_default_path_uses_global_rng():
    g = torch.Generator().manual_seed(0)
    first = _weights(create_model("mlp", 1, 10, 8, generator=g))
    second = _weights(create_model("mlp", 1, 10, 8, generator=g))
    assert not torch.equal(first[0], second[0])
    torch.manual_seed(3)
    x = _weights(create_model("mlp", 1, 10, 8))
    torch.manual_seed(3)
    y = _weights(create_model("mlp", 1, 10, 8))
    assert all(torch.equal(p, q) for p, q in zip(x, y, strict=True))
