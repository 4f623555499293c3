"""Monitoring functions against direct numpy computations; LR finder on a known quadratic."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxvision.train import lr_finder, monitoring


def _params():
    rng = np.random.default_rng(0)
    return {"conv0": {"kernel": jnp.array(rng.normal(size=(3, 3, 2, 4)), jnp.float32), "bias": jnp.ones(4)},
            "head": {"kernel": jnp.array(rng.normal(size=(4, 3)), jnp.float32)}}


def test_grad_norms_and_update_ratios():
    params = _params()
    grads = jax.tree.map(lambda p: 0.1 * p, params)
    norms = jax.jit(monitoring.layer_grad_norms)(grads)
    conv = np.concatenate([np.ravel(params["conv0"]["kernel"]), np.ravel(params["conv0"]["bias"])]) * 0.1
    np.testing.assert_allclose(norms["grad_norm/conv0"], np.linalg.norm(conv), rtol=1e-5)
    np.testing.assert_allclose(norms["grad_norm"], optax.tree.norm(grads), rtol=1e-5)
    ratios = monitoring.update_ratios(jax.tree.map(lambda p: -0.01 * p, params), params)
    for key in ("update_ratio/conv0", "update_ratio/head", "update_ratio"):
        np.testing.assert_allclose(ratios[key], 0.01, rtol=1e-5)


def test_activation_stats_dead_units():
    x = np.random.default_rng(1).normal(size=(8, 4, 4, 3)).astype(np.float32)
    x[..., 1] = -np.abs(x[..., 1])       # channel 1 never positive: a dead ReLU unit
    stats = monitoring.activation_stats({"stage0": jnp.array(x)})
    np.testing.assert_allclose(stats["act/stage0/dead"], 1 / 3, rtol=1e-6)
    np.testing.assert_allclose(stats["act/stage0/mean"], x.mean(), rtol=1e-5)
    np.testing.assert_allclose(stats["act/stage0/std"], x.std(), rtol=1e-5)
    np.testing.assert_allclose(stats["act/stage0/zero_fraction"], (x <= 0).mean(), rtol=1e-6)


def test_histograms_logger_and_capture(tmp_path):
    from jaxvision.models import create

    hists = monitoring.weight_histograms(_params(), bins=10)
    counts, edges = hists["conv0/kernel"]
    assert counts.sum() == 72 and len(edges) == 11 and "conv0/bias" not in hists
    logger = monitoring.MonitoringLogger(str(tmp_path))
    logger.log(3, {"grad_norm": jnp.float32(1.5)}, params=_params())
    logger.close()
    assert monitoring.read_monitoring(str(tmp_path)) == [{"step": 3, "grad_norm": 1.5}]
    assert any((tmp_path / "tensorboard" / "monitoring").iterdir())
    model = create("mlp", num_classes=3, hidden=(5,))
    variables = model.init(jax.random.key(0), jnp.zeros((2, 4)), train=False)
    acts = monitoring.capture_activations(model, variables, jnp.ones((2, 4)))
    assert acts["hidden0"].shape == (2, 5) and acts["head"].shape == (2, 3)


def test_lr_finder_on_quadratic():
    # L(w) = 0.5 * c * ||w||^2: plain SGD diverges above lr = 2 / c.
    c = 4.0
    w0 = {"w": jnp.ones(10)}
    lrs = lr_finder.range_test_lrs(start_lr=1e-7, end_lr=10, num_steps=100)
    np.testing.assert_allclose(lrs[1] / lrs[0], 10 ** (8 / 99), rtol=1e-12)   # 1.204504 per step
    np.testing.assert_allclose(lrs[[0, -1]], [1e-7, 10])
    result = lr_finder.lr_range_test(lambda p, b: 0.5 * c * jnp.sum(p["w"] ** 2), w0, itertools.repeat(None),
                                     start_lr=1e-4, end_lr=10.0, num_steps=60, momentum=0.0)
    assert len(result["lrs"]) < 60                       # stopped early on divergence
    assert result["lrs"][-1] > 2 / c                      # ... only after the stability limit
    assert 1e-2 < result["suggested_lr"] < 2 / c
    np.testing.assert_array_equal(w0["w"], 1.0)          # input params untouched


def test_suggestion_ignores_recovery_after_a_spike():
    lrs = np.geomspace(1e-4, 10, 50)
    smoothed = np.concatenate([np.full(15, 2.3), np.linspace(2.3, 0.5, 15), np.full(5, 6.0), np.linspace(6.0, 1.0, 15)])
    suggested = lr_finder.suggest_lr(lrs, smoothed, skip_start=5, skip_end=2)
    assert lrs[15] <= suggested <= lrs[29]     # on the real descent, not the fall after the spike
