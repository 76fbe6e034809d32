"""Synthesis methods (dc, dsa, dm, mtt): distances, equivalence with the official-style loops,
descent, checkpoint round trips, DSA at IPC 1, MTT's step-wise gradient == the unrolled one,
experts cache, CLI; one slow quality test (DC and DM beat random at IPC 1)."""

from __future__ import annotations

import copy
import json
import math
import statistics

import pytest
import torch
import torch.nn.functional as F

from harness.engine.seeding import generator
from harness.methods import get_method
from harness.methods.base import MethodOptionError, build_config
from harness.methods.matching import match_distance
from tests.harness.test_methods_synth_reference import ReferenceDC, ReferenceDM, digits_context, real_init

from .cli_helpers import run_harness
from .condense_helpers import kill_then_resume


def _setup(name, ipc=1, image_size=8, **options):
    ctx = digits_context(ipc, image_size)
    m = get_method(name)
    cfg = m.configure(build_config(m, {k: str(v) for k, v in options.items()}), ctx)
    images, labels = real_init(ctx, generator(0, "test/init"))
    return ctx, m, cfg, images, labels


# --- distances ---------------------------------------------------------------------------------


def _hand_grads():
    conv_s = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).reshape(2, 1, 1, 2)
    conv_r = torch.tensor([[1.0, 0.0], [1.0, 0.0]]).reshape(2, 1, 1, 2)
    bias_s, bias_r = torch.tensor([5.0, 5.0]), torch.tensor([0.0, 0.0])
    lin_s = torch.tensor([[1.0, 1.0], [0.0, 2.0]])
    lin_r = torch.tensor([[-1.0, -1.0], [0.0, 3.0]])
    return [conv_s, bias_s, lin_s], [conv_r, bias_r, lin_r]


def test_distances_on_hand_made_gradients():
    gs, gr = _hand_grads()
    # ours: conv rows 1-cos = 0 and 1; bias ignored; linear rows: opposite (2) and parallel (0)
    assert match_distance(gs, gr, "ours").item() == pytest.approx(3.0, abs=1e-5)
    # mse over everything: conv 0+0+1+1, bias 25+25, linear 4+4+0+1
    assert match_distance(gs, gr, "mse").item() == pytest.approx(61.0)
    # cos over the concatenated vectors: dot 5, |s|^2 58, |r|^2 13
    assert match_distance(gs, gr, "cos").item() == pytest.approx(1 - 5 / math.sqrt(58 * 13), rel=1e-5)
    assert match_distance(gs, gs, "ours").item() == pytest.approx(0.0, abs=1e-5)
    with pytest.raises(MethodOptionError):
        match_distance(gs, gr, "l1")


# --- equivalence with the official-style per-class loops ------------------------------------------


@pytest.mark.parametrize(
    "name,ipc,opts",
    [
        ("dc", 1, {}),
        ("dsa", 1, {}),  # Siamese DSA on a synthetic batch of one image per class
        ("dc", 2, {"outer_loop": 2, "inner_loop": 2, "dis_metric": "mse"}),
        ("dsa", 2, {"outer_loop": 2, "inner_loop": 1, "dis_metric": "cos"}),
    ],
)
def test_dc_and_dsa_follow_the_reference_loop(name, ipc, opts):
    ctx, m, cfg, images, labels = _setup(name, ipc, batch_real=32, compile="false", **opts)
    state = m.init_state(ctx, cfg, images, labels, generator(0, "i"))
    ref = ReferenceDC(ctx, cfg, images, labels, dsa=name == "dsa")
    for it in range(2):
        a = m.step(ctx, cfg, state, it, generator(0, f"it{it}"))
        b = ref.step(generator(0, f"it{it}"))
        assert a == pytest.approx(b, rel=1e-5)
    assert torch.allclose(state["images"], ref.image_syn, atol=1e-5)
    assert not torch.equal(state["images"], images)  # it did move


def test_dm_follows_the_reference_loop():
    """Per step the update equals the reference's within float tolerance (teacher-forced: ReLU
    nets make the input gradient piecewise constant, so free-running trajectories drift apart
    slowly); free-running losses agree for a few iterations."""
    ctx, m, cfg, images, labels = _setup("dm", 2, batch_real=32, compile="false")
    state = m.init_state(ctx, cfg, images, labels, generator(0, "i"))
    ref = ReferenceDM(ctx, cfg, images, labels)
    for it in range(3):
        before = ref.image_syn.detach().clone()
        a = m.step(ctx, cfg, state, it, generator(0, f"it{it}"))
        b = ref.step(generator(0, f"it{it}"))
        assert a == pytest.approx(b, rel=1e-4)
        moved = (ref.image_syn.detach() - before).norm()
        assert (state["images"] - ref.image_syn).detach().norm() <= 1e-4 * moved
        with torch.no_grad():
            state["images"].copy_(ref.image_syn)
            state["momentum"].copy_(ref.optimizer_img.state[ref.image_syn]["momentum_buffer"])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dc", "dm"])
def test_compiled_path_follows_the_reference_loop(name):
    ctx, m, cfg, images, labels = _setup(name, 1, batch_real=64)
    assert cfg.compile
    state = m.init_state(ctx, cfg, images, labels, generator(0, "i"))
    ref = ReferenceDM(ctx, cfg, images, labels) if name == "dm" else ReferenceDC(ctx, cfg, images, labels)
    for it in range(2):
        a = m.step(ctx, cfg, state, it, generator(0, f"it{it}"))
        b = ref.step(generator(0, f"it{it}"))
        assert a == pytest.approx(b, rel=1e-4)


# --- descent and checkpoints -----------------------------------------------------------------


@pytest.fixture(scope="module")
def experts_cache(tmp_path_factory):
    """One harness cache per module: the small experts are trained once and shared."""
    path = tmp_path_factory.mktemp("harness-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_CACHE", str(path))
        yield path


def _mtt_ready(ctx, m, cfg):
    from harness.methods.experts import train_experts

    train_experts(ctx, m.expert_spec(ctx, cfg))


# lr_lr 1e-7: with experts this small the published 1e-5 drives the learned lr below 0 within
# 2 iterations (the loop then stops with DivergedError)
SMALL_MTT = {
    "num_experts": 2,
    "expert_train_epochs": 2,
    "max_start_epoch": 2,
    "expert_epochs": 1,
    "syn_steps": 4,
    "lr_img": 100,
    "lr_lr": 1e-7,
}


@pytest.mark.parametrize(
    "name,size,opts",
    [
        # gradient matching at 8x8 (1x1 final feature maps) is too rough for one SGD step to descend
        ("dc", 16, {"batch_real": 16, "compile": "false"}),
        ("dsa", 16, {"batch_real": 16, "compile": "false"}),
        ("dm", 8, {"batch_real": 32, "compile": "false"}),
        ("mtt", 8, dict(SMALL_MTT, lr_lr=1e-5)),  # one step of pixels and lr (the published lr_lr)
    ],
)
def test_a_step_lowers_its_own_objective_on_average(name, size, opts, experts_cache):
    """Re-running a step with the same draws (same net, batches, expert) after the update gives a
    lower loss, averaged over seeds (a single draw can go either way)."""
    ctx, m, cfg, images, labels = _setup(name, 1, size, **opts)
    if name == "mtt":
        _mtt_ready(ctx, m, cfg)
    drops = []
    for seed in range(3):
        state = m.init_state(ctx, cfg, images, labels, generator(seed, "i"))
        before = m.step(ctx, cfg, state, 0, generator(seed, "same"))
        after = m.step(ctx, cfg, state, 0, generator(seed, "same"))
        drops.append(before - after)
    assert statistics.fmean(drops) > 0, drops


@pytest.mark.parametrize(
    "name,opts",
    [
        ("dc", {"batch_real": 16, "compile": "false"}),
        ("dm", {"batch_real": 16, "compile": "false"}),
        ("mtt", SMALL_MTT),
    ],
)
def test_state_dict_round_trip_continues_identically(name, opts, experts_cache):
    ctx, m, cfg, images, labels = _setup(name, 1, **opts)
    if name == "mtt":
        _mtt_ready(ctx, m, cfg)
    state = m.init_state(ctx, cfg, images, labels, generator(0, "i"))
    m.step(ctx, cfg, state, 0, generator(0, "it0"))
    sd = m.state_dict(state)
    assert all(v.device.type == "cpu" for v in sd.values() if isinstance(v, torch.Tensor))
    resumed = m.load_state_dict(ctx, cfg, copy.deepcopy(sd))
    for it in (1, 2):
        m.step(ctx, cfg, state, it, generator(0, f"it{it}"))
        m.step(ctx, cfg, resumed, it, generator(0, f"it{it}"))
    for key, val in m.result(state).items():
        assert torch.equal(val, m.result(resumed)[key]), key
    if name == "mtt":
        assert m.result(state)["lr"].item() != pytest.approx(0.01, abs=0)  # the lr is learned


# --- configuration ---------------------------------------------------------------------------


def test_dc_loops_follow_the_published_table_and_reject_other_ipcs():
    m = get_method("dc")
    for ipc, loops in {1: (1, 1), 10: (10, 50), 20: (20, 25), 50: (50, 10)}.items():
        cfg = m.configure(build_config(m), digits_context(ipc, 8))
        assert (cfg.outer_loop, cfg.inner_loop) == loops
    with pytest.raises(MethodOptionError, match="outer_loop"):
        m.configure(build_config(m), digits_context(3, 8))
    cfg = m.configure(build_config(m, {"outer_loop": "2", "inner_loop": "3"}), digits_context(3, 8))
    assert (cfg.outer_loop, cfg.inner_loop) == (2, 3)
    with pytest.raises(MethodOptionError):
        build_config(m, {"dis_metric": "l2"})
    d = build_config(get_method("dm"))
    assert (d.iterations, d.lr_img, d.momentum_img, d.batch_real) == (20000, 1.0, 0.5, 256)
    c = build_config(m)
    assert (c.iterations, c.lr_img, c.momentum_img, c.lr_net, c.batch_real) == (1000, 0.1, 0.5, 0.01, 256)
    t = build_config(get_method("mtt"))
    assert (t.lr_init, t.lr_lr, t.syn_steps, t.expert_epochs, t.max_start_epoch) == (0.01, 1e-5, 20, 3, 20)
    with pytest.raises(MethodOptionError, match="expert"):
        build_config(get_method("mtt"), {"max_start_epoch": "49", "expert_epochs": "3"})


def test_batchnorm_nets_freeze_statistics_from_real_images():
    ctx, m, cfg, images, labels = _setup("dc", 1, batch_real=16)
    ctx.model = "convnet-bn"
    assert cfg.compile  # ignored for BatchNorm nets (module state), eager path instead
    state = m.init_state(ctx, cfg, images, labels, generator(0, "i"))
    ref = ReferenceDC(ctx, cfg, images, labels)
    a = m.step(ctx, cfg, state, 0, generator(0, "it0"))
    b = ref.step(generator(0, "it0"))
    assert a == pytest.approx(b, rel=1e-5)
    assert torch.allclose(state["images"], ref.image_syn, atol=1e-5)


# --- MTT -------------------------------------------------------------------------------------


def _tiny_problem(dsa: bool):
    from harness.augment.dsa import apply_dsa, sample_dsa
    from harness.methods.mtt import FlatModel
    from harness.models import create_model

    g = torch.Generator().manual_seed(0)
    net = create_model("convnet-d1-w4", 1, 3, (8, 8), generator=g).double()
    fm = FlatModel(net)
    x = torch.randn(6, 1, 8, 8, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    theta0 = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    target = theta0 + 0.05 * torch.randn(theta0.shape, generator=g, dtype=torch.float64)
    steps = 5
    batches = [torch.randperm(6, generator=g)[:4] for _ in range(steps)]
    samples = [
        sample_dsa(4, "color_crop_cutout_scale_rotate", g, shape=(1, 8, 8)) if dsa else None
        for _ in range(steps)
    ]

    def step_loss(theta, i, images):
        xb = images[batches[i]]
        if samples[i] is not None:
            xb = apply_dsa(xb, samples[i])
        return F.cross_entropy(fm.logits(theta, xb), y[batches[i]])

    return step_loss, steps, theta0, target, x


@pytest.mark.parametrize("dsa", [False, True])
def test_mtt_stepwise_gradient_equals_the_unrolled_one(dsa):
    """Against torch.func through all steps (independent of both implementations) and the
    official-style autograd unroll; float64, so the tolerance is tight."""
    from harness.methods.mtt import stepwise_gradient, unrolled_gradient

    step_loss, steps, theta0, target, x = _tiny_problem(dsa)
    lr = torch.tensor(0.05, dtype=torch.float64)

    def full(images, alpha):
        theta = theta0
        for i in range(steps):
            theta = theta - alpha * torch.func.grad(lambda th: step_loss(th, i, images))(theta)  # noqa: B023 (called in this iteration)
        return torch.sum((theta - target) ** 2) / torch.sum((theta0 - target) ** 2)

    gx_ref, ga_ref = torch.func.grad(full, argnums=(0, 1))(x, lr)
    l_s, gx_s, ga_s = stepwise_gradient(step_loss, steps, theta0, target, x, lr)
    l_u, gx_u, ga_u = unrolled_gradient(step_loss, steps, theta0, target, x, lr)
    assert l_s == pytest.approx(float(full(x, lr)), rel=1e-12) and l_u == pytest.approx(l_s, rel=1e-12)
    assert gx_ref.abs().max() > 0 and ga_ref.abs() > 0
    for gx, ga in ((gx_s, ga_s), (gx_u, ga_u)):
        torch.testing.assert_close(gx, gx_ref, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(ga, ga_ref, rtol=1e-9, atol=1e-12)


def test_mtt_stepwise_graph_memory_does_not_grow_with_syn_steps():
    """Autograd-saved bytes: flat for step-wise, linear for unrolled (bench/condense_speed.py)."""
    from bench.condense_speed import SavedTensorMeter
    from harness.methods.mtt import stepwise_gradient, unrolled_gradient

    step_loss, _, theta0, target, x = _tiny_problem(False)
    peaks = {}
    for fn in (stepwise_gradient, unrolled_gradient):
        for steps in (2, 5):
            meter = SavedTensorMeter()
            with meter.hooks():
                fn(step_loss, steps, theta0, target, x, torch.tensor(0.05, dtype=torch.float64))
            peaks[fn.__name__, steps] = meter.peak
    assert peaks["stepwise_gradient", 5] <= 1.1 * peaks["stepwise_gradient", 2]
    assert peaks["unrolled_gradient", 5] > 2 * peaks["unrolled_gradient", 2]


def test_experts_are_cached_by_digest_and_resume(tmp_path, monkeypatch):
    from harness.methods.experts import ExpertSpec, Trajectories, experts_dir, spec_for, train_experts

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "c"))
    ctx = digits_context(1, 8)
    spec = spec_for(ctx, num_experts=2, epochs=1)
    d = train_experts(ctx, spec)
    assert d == experts_dir(spec) and d.parent == tmp_path / "c" / "experts"
    rec = json.loads((d / "config.json").read_text())
    assert ExpertSpec(**{**rec, "image_shape": tuple(rec["image_shape"])}).digest == spec.digest == d.name
    traj = Trajectories(spec)
    first = traj.epoch(1, 1)
    assert not torch.equal(traj.epoch(1, 0), first)  # it trained
    (d / "expert_1.safetensors").unlink()  # an interrupted run: only expert 1 is redone
    stamp = (d / "expert_0.safetensors").stat().st_mtime_ns
    train_experts(ctx, spec)
    assert (d / "expert_0.safetensors").stat().st_mtime_ns == stamp
    assert torch.equal(Trajectories(spec).epoch(1, 1), first)  # seeded: the same expert again
    assert spec_for(ctx, num_experts=2, epochs=2).digest != spec.digest


# --- CLI end to end --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,opts",
    [
        ("dc", ["batch_real=16", "compile=false"]),
        ("dm", ["batch_real=16", "compile=false"]),
        ("mtt", [f"{k}={v}" for k, v in SMALL_MTT.items()]),
    ],
)
def test_condense_cli_makes_a_verifiable_artifact(name, opts, tmp_path, capsys, experts_cache):
    from dcregistry.artifact import open_artifact
    from dcregistry.cli import main as dmain

    out = tmp_path / name
    argv = ["condense", "digits", "--method", name, "--ipc", "1", "--iterations", "2", "-o", str(out), "-q"]
    for o in opts:
        argv += ["--option", o]
    code, _, err = run_harness(argv, capsys)
    assert code == 0, err
    art = open_artifact(out)
    mc = art.metadata["method_config"]
    assert mc["method"] == name and mc["config"]["iterations"] == 2
    if name == "dc":
        assert (mc["config"]["outer_loop"], mc["config"]["inner_loop"]) == (1, 1)
    if name == "mtt":
        assert len(mc["config"]["experts_digest"]) == 64
        assert "lr" in art.tensor_names
        assert float(art.torch("lr")) != 0.01  # the learned lr, trained by `harness eval --protocol mtt`
    with pytest.raises(SystemExit) as exc:
        dmain(["verify", str(out)])
    assert exc.value.code == 0


def test_experts_cli(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    code, out, err = run_harness(["experts", "digits", "--num-experts", "1", "--epochs", "1", "-q"], capsys)
    assert code == 0, err
    files = list((tmp_path / "cache" / "experts").glob("*/expert_0.safetensors"))
    assert len(files) == 1 and files[0].parent.name in out


# --- quality (slow) --------------------------------------------------------------------------


@pytest.mark.slow
def test_dc_and_dm_beat_random_at_ipc1_on_digits(tmp_path):
    """Digits at its native 8x8, ConvNet, IPC 1, real init, seed 0; DC 20 and DM 100 iterations
    with ``batch_real`` 32; ``dc-noaug`` with 100+1 epochs, 2 runs; against ``random``. Before the
    1-channel padding fix DC made sets far below random here (loss 281 -> 370, 21 %). The test
    demands 8 points for DC (the issue's bar with the full budget is 10) and 5 for DM; measured
    margins are in the README's fidelity section."""
    from harness.engine.evaluate import evaluate
    from harness.methods.loop import CondenseSpec, condense
    from harness.protocols import load_protocol

    p = load_protocol("dc-noaug").with_overrides(epochs=100, runs=2)
    opts = {"batch_real": "32", "compile": "false"}
    acc, quality = {}, {}
    for key, method, iters in (("random", "random", None), ("dc", "dc", 20), ("dm", "dm", 100)):
        out = condense(
            CondenseSpec(
                "digits", method, 1, tmp_path / key, seed=0, iterations=iters, options=opts if iters else {}
            )
        )
        acc[key] = evaluate(out.artifact, p, device="cpu", strategy="sequential")["mean"]
        quality[key] = out.method_config.get("quality")
    print("quality", acc)
    assert acc["dc"] > acc["random"] + 0.08, acc
    assert acc["dm"] > acc["random"] + 0.05, acc
    assert quality["dc"]["warning"] is None and quality["dm"]["warning"] is None, quality


@pytest.mark.parametrize(
    "name,opts",
    [
        ("dsa", {"batch_real": "16", "compile": "false"}),
        ("mtt", {k: str(v) for k, v in SMALL_MTT.items()}),
    ],
)
def test_resume_of_a_killed_synthesis_run_gives_the_same_artifact(
    name, opts, tmp_path, monkeypatch, experts_cache
):
    from harness.methods import METHODS
    from harness.methods.loop import CondenseSpec

    def spec(out, **kw):
        return CondenseSpec(
            "digits", name, 1, tmp_path / out, iterations=4, seed=1, options=opts, checkpoint_every=2, **kw
        )

    # killed at iteration 3, after the checkpoint at 2
    ref, res = kill_then_resume(monkeypatch, METHODS.get(name), spec, kill_at=3)
    for key in ref.tensor_names:
        assert torch.equal(res.torch(key), ref.torch(key)), key
    assert res.metadata["method_config"]["loss"] == ref.metadata["method_config"]["loss"]
