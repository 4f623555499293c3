"""Receptive fields: worked vectors (the stride-2 stack gives 3/5/9; a common
slip gives 3/7/11), a brute-force index
propagation, the jaxpr tracer against the formula and against gradient supports, and the
effective receptive field against its closed form for stacked box filters."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxvision.models
from jaxvision.ops.receptive_field import (LayerSpec, effective_receptive_field, mass_extent,
                                           receptive_field, receptive_fields, support_extent)


def sizes(layers):
    return [r.size for r in receptive_field(layers)]


def test_course_vectors():
    assert sizes([(3, 1)] * 3) == [3, 5, 7]
    assert sizes([(3, 1)] * 4) == [3, 5, 7, 9]
    # A common slip gives 3, 7, 11 (it multiplies in the current layer's own stride).
    assert sizes([(3, 1), (3, 2), (3, 1)]) == [3, 5, 9]
    assert sizes([LayerSpec(3, dilation=2)]) == [5]
    assert sizes([LayerSpec(3, dilation=3)]) == [7]
    assert sizes([(3, 1)] * 5)[-1] == 11
    assert sizes([(2, 2), (2, 2)] + [(3, 1)] * 5)[-1] == 44      # downsampling first
    assert sizes([(3, 1)] * 5 + [(2, 2), (2, 2)])[-1] == 14      # ... and after the convs
    assert sizes([(3, 1)] * 2)[-1] == 5 and sizes([(3, 1)] * 3)[-1] == 7  # VGG's argument: two 3x3 see 5x5
    # Jumps multiply the strides; the stride only affects later layers.
    assert [r.jump for r in receptive_field([(3, 1), (3, 2), (3, 1)])] == [1, 2, 2]


def test_c1_seven_by_seven_grid():
    # Valid 3x3 convs on a 7x7 image: layer-1 unit (1, 1) is centred at (2, 2)
    # and covers rows/cols 1-3; layer-2 unit (0, 0) covers rows/cols 0-4, 5x5.
    first, second = receptive_field([(3, 1), (3, 1)])
    centre = first.start + 1 * first.jump
    assert (centre - (first.size - 1) / 2, centre + (first.size - 1) / 2) == (1, 3)
    assert (second.start - (second.size - 1) / 2, second.start + (second.size - 1) / 2) == (0, 4)


def _brute_force(layers):
    """Input positions seen by the last layer's unit 0, by propagating index sets backwards."""
    results = []
    for depth in range(1, len(layers) + 1):
        units = {0}
        for spec in reversed(layers[:depth]):
            k, s, d, p = spec
            units = {u * s - p + m * d for u in units for m in range(k)}
        jump = int(np.prod([spec[1] for spec in layers[:depth]]))
        results.append((max(units) - min(units) + 1, jump, (max(units) + min(units)) / 2))
    return results


def test_formula_equals_brute_force_index_propagation():
    rng = np.random.default_rng(0)
    for _ in range(40):
        layers = [(int(rng.integers(1, 6)), int(rng.integers(1, 4)), int(rng.integers(1, 3)),
                   int(rng.integers(0, 3))) for _ in range(int(rng.integers(1, 6)))]
        got = [(r.size, r.jump, r.start) for r in receptive_field(
            [LayerSpec(k, s, d, p) for k, s, d, p in layers])]
        assert got == _brute_force(layers), layers


class _Stack(nn.Module):
    """A sequential net mixing strides, dilation, padding and both pool types."""

    linear: bool = False

    @nn.compact
    def __call__(self, x):
        act = (lambda v: v) if self.linear else nn.relu
        pos = nn.initializers.constant(1.0) if self.linear else nn.initializers.lecun_normal()
        x = act(nn.Conv(2, (3, 3), padding=1, kernel_init=pos)(x))
        x = nn.avg_pool(x, (2, 2), strides=(2, 2)) if self.linear else nn.max_pool(
            x, (2, 2), strides=(2, 2))
        x = act(nn.Conv(2, (3, 3), strides=2, padding=((1, 0), (1, 0)), kernel_init=pos)(x))
        x = act(nn.Conv(2, (3, 3), kernel_dilation=2, padding=2, kernel_init=pos)(x))
        return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))


STACK_LAYERS = [LayerSpec(3, 1, 1, 1), LayerSpec(2, 2), LayerSpec(3, 2, 1, 1),
                LayerSpec(3, 1, 2, 2), LayerSpec(3, 1, 1, 1)]


def test_tracer_matches_formula_and_gradient_support():
    x = jnp.ones((1, 48, 48, 1))
    module = _Stack(linear=True)
    variables = module.init(jax.random.key(0), x)
    fov = receptive_fields(lambda v: module.apply(variables, v), x)
    want = receptive_field(STACK_LAYERS)[-1]
    assert fov.size == (want.size, want.size) and fov.jump == (want.jump, want.jump)
    assert fov.start == (want.start, want.start) and not fov.is_global
    # With positive weights, no ReLU and average pools, the gradient support of an interior
    # unit is exactly the theoretical field.
    grads = effective_receptive_field(lambda v: module.apply(variables, v), x, position=(6, 5))
    assert support_extent(np.asarray(grads)) == fov.size
    rows = np.nonzero(np.asarray(grads).sum(axis=1))[0]
    centre = want.start + 6 * want.jump
    assert (rows[0], rows[-1]) == (centre - (want.size - 1) / 2, centre + (want.size - 1) / 2)
    # The non-linear version has the same theoretical field (ReLU and max do not change it).
    relu_module = _Stack()
    relu_vars = relu_module.init(jax.random.key(1), x)
    assert receptive_fields(lambda v: relu_module.apply(relu_vars, v), x).size == fov.size
    # jit-wrapped functions are traced through.
    assert receptive_fields(jax.jit(lambda v: module.apply(variables, v)), x).size == fov.size


def test_tracer_branches_union_and_global_ops():
    x = jnp.ones((1, 16, 16, 1))
    k3, k5 = jnp.ones((3, 3, 1, 1)), jnp.ones((5, 5, 1, 1))

    def conv(v, k, pad):
        return jax.lax.conv_general_dilated(v, k, (1, 1), [(pad, pad)] * 2,
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))

    residual = receptive_fields(lambda v: conv(v, k3, 1) + conv(v, k5, 2) + v, x)
    assert residual.size == (5, 5) and residual.start == (0.0, 0.0)
    # Rectangular kernels give different fields per axis.
    rect = receptive_fields(lambda v: conv(conv(v, jnp.ones((3, 1, 1, 1)), 0), k3, 0), x)
    assert rect.size == (5, 3)
    gap = receptive_fields(lambda v: conv(v, k3, 1).mean(axis=(1, 2)), x)
    assert gap.is_global and gap.size == (16, 16) and gap.jump is None
    # A global gate (squeeze-and-excitation) makes a spatial map global, local size kept.
    se = receptive_fields(lambda v: conv(v, k3, 1) * jax.nn.sigmoid(v.mean(axis=(1, 2),
                                                                           keepdims=True)), x)
    assert se.is_global and se.size == (16, 16) and se.local_size == (3, 3)
    # Transposed conv (k2, s2) halves the jump.
    up = receptive_fields(lambda v: jax.lax.conv_transpose(
        v, jnp.ones((2, 2, 1, 1)), (2, 2), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")), x)
    assert up.jump == (0.5, 0.5)
    # An op the tracer does not model (a gather along a spatial axis) is treated as global and
    # named, rather than silently ignored.
    gathered = receptive_fields(lambda v: jnp.take(conv(v, k3, 1), jnp.array([3, 1, 2]),
                                                   axis=1), x)
    assert gathered.is_global and "gather" in gathered.unhandled
    # Outputs are returned in the function's pytree structure.
    both = receptive_fields(lambda v: {"a": conv(v, k3, 1), "b": (conv(v, k5, 0),)}, x)
    assert both["a"].size == (3, 3) and both["b"][0].size == (5, 5)


def test_registry_models():
    from jaxvision.models.feature_maps import features

    x = jnp.zeros((1, 32, 32, 3))
    model = jaxvision.models.create("small_cnn")
    variables = model.init(jax.random.key(0), x, train=False)
    fovs = receptive_fields(lambda v: features(model, variables, v, with_output=True), x)
    stage0, _, stage1 = receptive_field([LayerSpec(3, 1, 1, 1), LayerSpec(2, 2),
                                         LayerSpec(3, 1, 1, 1)])
    assert fovs["stage0"].size == (stage0.size,) * 2 == (3, 3)
    assert fovs["stage1"].size == (stage1.size,) * 2 == (8, 8)
    assert fovs["stage1"].start == (stage1.start,) * 2
    assert fovs["output"].is_global                    # flatten + Dense sees every pixel
    mlp = jaxvision.models.create("mlp")
    mlp_vars = mlp.init(jax.random.key(0), x, train=False)
    assert receptive_fields(lambda v: mlp.apply(mlp_vars, v, train=False), x).is_global


def test_the_fast_convolution_has_the_fields_of_xlas():
    """The default conv="auto" (Winograd/im2col behind lax.platform_dependent) is analysed
    through its exact branch: every field equals the one of conv="xla"."""
    from jaxvision.models.feature_maps import features

    x = jax.ShapeDtypeStruct((1, 64, 64, 3), jnp.float32)
    fields = {}
    for conv in ("auto", "xla"):
        model = jaxvision.models.create("resnet18", conv=conv)
        variables = model.init(jax.random.key(0), jnp.zeros(x.shape), train=False)
        fields[conv] = receptive_fields(
            lambda v: features(model, variables, v, with_output=True), x)
    assert fields["auto"] == fields["xla"]
    assert fields["xla"]["layer1"].size == (43, 43)  # 7 + 2 * 2 + 4 * 2 * 4 and not fields["xla"]["layer4"].is_global


def test_erf_of_stacked_box_filters_is_binomial_like():
    # L stacked 3x3 all-ones convs: the gradient map is outer(c, c) with c the coefficients of
    # (1 + z + z^2)^L: Gaussian-like and far from uniform over the theoretical 2L+1 field.
    layers = 4
    kernel = jnp.ones((3, 3, 1, 1))

    def stack(v):
        for _ in range(layers):
            v = jax.lax.conv_general_dilated(v, kernel, (1, 1), "SAME",
                                             dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return v

    x = jnp.zeros((1, 21, 21, 1))
    erf = np.asarray(effective_receptive_field(stack, x))
    coeffs = np.array([1.0])
    for _ in range(layers):
        coeffs = np.convolve(coeffs, [1.0, 1.0, 1.0])
    want = np.zeros((21, 21))
    want[6:15, 6:15] = np.outer(coeffs, coeffs)
    np.testing.assert_allclose(erf, want)
    assert support_extent(erf) == (9, 9) == (receptive_field([(3, 1)] * layers)[-1].size,) * 2
    # Most of the mass sits well inside the theoretical field.
    assert mass_extent(erf, mass=0.9) < 9


def test_extent_helpers():
    delta = np.zeros((7, 7))
    delta[3, 3] = 1.0
    assert mass_extent(delta) == 1 and support_extent(delta) == (1, 1)
    box = np.zeros((7, 7))
    box[2:5, 2:5] = 1.0
    assert mass_extent(box, mass=0.95) == 3 and support_extent(box) == (3, 3)
    assert support_extent(np.zeros((3, 3))) == (0, 0) and mass_extent(np.zeros((3, 3))) == 0


def test_errors():
    with pytest.raises(ValueError, match="NHWC feature map"):
        effective_receptive_field(lambda v: v.mean(axis=(1, 2)), jnp.zeros((1, 4, 4, 1)))
    with pytest.raises(ValueError, match="outside"):
        effective_receptive_field(lambda v: v, jnp.zeros((1, 4, 4, 1)), position=(4, 0))
    with pytest.raises(ValueError, match="kernel_size, stride"):
        receptive_field([(0, 1)])
    assert receptive_field([]) == []
