"""jaxvision.inspect: summary totals against param_count and XLA, per-layer FLOPs against the
hand count, the training-memory estimate against XLA's memory_analysis, group gradient norms."""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxvision import inspect as ji
from jaxvision import models
from jaxvision.ops import param_count


class _Plain(nn.Module):
    """Only layers, nothing between them but a reshape (which costs no FLOPs)."""

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        x = nn.Conv(8, (3, 3), padding=((1, 1), (1, 1)), name="conv1")(x)
        x = nn.Conv(4, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)), name="conv2")(x)
        return nn.Dense(10, name="head")(x.reshape(x.shape[0], -1))


def _valid_taps(size, kernel, stride, pad):
    """Kernel taps over real (not padding) pixels, summed over the output positions."""
    out = (size + 2 * pad - kernel) // stride + 1
    return sum(sum(0 <= o * stride - pad + k < size for k in range(kernel)) for o in range(out))


def test_per_layer_flops_are_the_hand_count_and_sum_to_the_total():
    n, size = 2, 8
    s = ji.summary(_Plain(), (n, size, size, 3), print_fn=None)
    rows = {r.name: r for r in s.rows}
    # XLA: 2 FLOPs per multiply-add over the taps that hit real pixels, 1 per bias add.
    taps1 = _valid_taps(size, 3, 1, 1) ** 2
    assert rows["conv1"].flops == 2 * n * 8 * 3 * taps1 + n * size * size * 8
    taps2 = _valid_taps(size, 3, 2, 1) ** 2
    assert rows["conv2"].flops == 2 * n * 4 * 8 * taps2 + n * 4 * 4 * 4
    assert rows["head"].flops == 2 * n * 64 * 10 + n * 10
    assert rows["conv2"].output_shape == (n, 4, 4, 4)
    assert rows["conv2"].activation_bytes == n * 4 * 4 * 4 * 4
    assert rows["(outside leaf layers)"].flops == 0
    assert s.total_flops == sum(r.flops for r in s.rows if r.leaf)
    assert s.total_params == (27 * 8 + 8) + (72 * 4 + 4) + (64 * 10 + 10)


def test_summary_totals_equal_param_count_and_xla_flops(capsys):
    model = models.create("resnet18", num_classes=10, conv="xla", stage_sizes=(1, 1, 1, 1))
    shape = (2, 32, 32, 3)
    # Shapes are all it needs (initialising ResNet-18's values compiles for ~20 s on CPU).
    variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False),
                               jnp.zeros(shape))
    s = ji.summary(model, shape, variables=variables, max_depth=0)
    printed = capsys.readouterr().out
    assert f"Total params: {param_count(variables['params']):,}" in printed
    assert "layer1_0/conv1" not in printed and "layer1_0 " in printed  # max_depth=0
    assert s.total_params == param_count(variables["params"])
    assert s.state_size == param_count(variables["batch_stats"])
    # The total is XLA's cost analysis of the whole compiled forward pass ...
    whole = jax.jit(lambda v, x: model.apply(v, x, train=False)).lower(
        variables, jax.ShapeDtypeStruct(shape, jnp.float32)).compile().cost_analysis()["flops"]
    assert s.total_flops == whole == ji.flops(model, shape)
    # ... and the rows add up to it: leaves plus the work between layers (ReLU, adds, pools).
    assert sum(r.flops for r in s.rows if r.leaf) == pytest.approx(whole, rel=1e-9)
    between = s.rows[-1]
    assert between.name == "(outside leaf layers)" and 0 < between.flops < 0.02 * whole
    # A block's parameters and FLOPs are those of its layers.
    block = next(r for r in s.rows if r.name == "layer2_0")
    inner = [r for r in s.rows if r.name.startswith("layer2_0/")]
    assert block.params == sum(r.params for r in inner) == 230_144
    assert block.flops == pytest.approx(sum(r.flops for r in inner))


def test_memory_parts_are_exact():
    model = _Plain()
    shape = (16, 8, 8, 3)
    est = ji.training_memory(model, shape, optax.adam(1e-3))
    n_params = (27 * 8 + 8) + (72 * 4 + 4) + (64 * 10 + 10)
    assert est.params == est.gradients == 4 * n_params
    assert est.optimizer_state == 2 * 4 * n_params + 4  # mu, nu and the int32 step count
    assert est.inputs == 16 * 8 * 8 * 3 * 4 and est.model_state == 0
    assert ji.training_memory(model, shape, optax.sgd(0.1)).optimizer_state == 0
    # Autodiff's residuals for a dense layer under a mean-square loss: its output, nothing else.
    dense = nn.Dense(5)
    x = jnp.ones((8, 3))
    params = dense.init(jax.random.key(0), x)["params"]
    loss = lambda p, x: jnp.mean(jnp.square(dense.apply({"params": p}, x)))  # noqa: E731
    assert ji.saved_residual_bytes(loss, params, x) == 8 * 5 * 4


def _memory_ratio(name, shape):
    kwargs = dict(conv="xla") if name.startswith("resnet") else {}  # XLA's conv, as on GPU/TPU
    model = models.create(name, num_classes=1000, **kwargs)
    tx = optax.sgd(0.1, momentum=0.9)
    return ji.training_memory(model, shape, tx).total / ji.xla_training_memory(model, shape, tx)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet18", "vit_s16"])
def test_memory_estimate_within_20_percent_of_xla_at_batch_64(name):
    # Measured: ResNet-18 1.17 (XLA fuses BN+ReLU and keeps less), ViT-S/16 0.88.
    assert 0.8 <= _memory_ratio(name, (64, 224, 224, 3)) <= 1.2


@pytest.mark.slow
def test_memory_estimate_small_resnet():
    assert 0.8 <= _memory_ratio("resnet18", (16, 64, 64, 3)) <= 1.2  # measured 0.91


def test_grad_norms_by_group_match_the_hand_computed_norms():
    rng = np.random.default_rng(0)
    grads = {"layer1": {"conv": {"kernel": rng.normal(size=(3, 3, 2, 4))},
                        "bn": {"scale": rng.normal(size=(4,))}},
             "head": {"kernel": rng.normal(size=(4, 3)), "bias": rng.normal(size=(3,))}}
    norms = ji.grad_norms(grads)
    flat = lambda *arrays: np.sqrt(sum(np.sum(np.square(a)) for a in arrays))  # noqa: E731
    np.testing.assert_allclose(norms["layer1"], flat(grads["layer1"]["conv"]["kernel"],
                                                     grads["layer1"]["bn"]["scale"]), rtol=1e-6)
    np.testing.assert_allclose(norms["head"], flat(*grads["head"].values()), rtol=1e-6)
    combined = math.sqrt(sum(float(v) ** 2 for v in norms.values()))
    np.testing.assert_allclose(combined, optax.tree.norm(grads), rtol=1e-6)
    deeper = ji.grad_norms(grads, depth=2)
    assert set(deeper) == {"layer1/conv", "layer1/bn", "head/kernel", "head/bias"}
    by_kind = jax.jit(lambda g: ji.grad_norms(g, patterns={"kernels": r"kernel$"}))(grads)
    np.testing.assert_allclose(by_kind["kernels"], flat(grads["layer1"]["conv"]["kernel"],
                                                        grads["head"]["kernel"]), rtol=1e-6)
    np.testing.assert_allclose(by_kind["other"], flat(grads["layer1"]["bn"]["scale"],
                                                      grads["head"]["bias"]), rtol=1e-6)
