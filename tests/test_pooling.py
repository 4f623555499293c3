"""Pooling: worked values (max, average, GAP and the advanced variants), PyTorch parity
(adaptive, ceil_mode, padding, Lp, fractional) and numpy references."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.ops import pooling as P

# The worked 4x4 map.
X = np.array([[3.1, 0.5, 2.3, 1.7], [8.2, 2.1, 7.4, 0.9], [1.8, 5.1, 4.0, 3.5],
              [3.7, 2.5, 9.3, 1.2]], np.float32)
# The worked 5x5 image of the convolution tests.
IMAGE_5X5 = np.array([[10, 20, 15, 25, 30], [40, 50, 60, 32, 18], [25, 33, 45, 60, 80],
               [15, 20, 30, 40, 50], [40, 30, 25, 15, 10]], np.float32)


def nhwc(a):
    return jnp.asarray(a)[None, :, :, None]


def as_map(out):
    return np.asarray(out)[0, :, :, 0]


def test_c1_two_by_two_region():
    region = nhwc(np.array([[3, 7], [4, 9]], np.float32))
    assert float(P.max_pool(region, window=2)[0, 0, 0, 0]) == 9.0
    assert float(P.avg_pool(region, window=2)[0, 0, 0, 0]) == 5.75


def test_c1_d7_on_worked_image():
    np.testing.assert_array_equal(as_map(P.max_pool(nhwc(IMAGE_5X5), window=2)), [[50, 60], [33, 60]])
    np.testing.assert_array_equal(as_map(P.avg_pool(nhwc(IMAGE_5X5), window=2)),
                                  [[30, 33], [23.25, 43.75]])
    np.testing.assert_array_equal(as_map(P.max_pool(nhwc(IMAGE_5X5), window=3, stride=2)),
                                  [[60, 80], [45, 80]])
    np.testing.assert_array_equal(as_map(P.max_pool(nhwc(IMAGE_5X5), window=2, stride=1)),
                                  [[50, 60, 60, 32], [50, 60, 60, 80], [33, 45, 60, 80],
                                   [40, 30, 40, 50]])
    assert float(P.global_max_pool(nhwc(IMAGE_5X5))[0, 0]) == 80.0
    assert float(P.global_avg_pool(nhwc(IMAGE_5X5))[0, 0]) == pytest.approx(32.72)


def test_c2_max_avg_and_global():
    np.testing.assert_allclose(as_map(P.max_pool(nhwc(X), window=2)), [[8.2, 7.4], [5.1, 9.3]],
                               rtol=1e-7)
    # The text rounds to [[3.48, 3.08], [3.28, 4.50]]; exact values below.
    np.testing.assert_allclose(as_map(P.avg_pool(nhwc(X), window=2)),
                               [[3.475, 3.075], [3.275, 4.5]], rtol=1e-6)
    np.testing.assert_allclose(as_map(P.avg_pool(nhwc(X), window=2)),
                               [[3.48, 3.08], [3.28, 4.50]], atol=0.006)
    np.testing.assert_allclose(as_map(P.max_pool(nhwc(X), window=3, stride=1)),
                               [[8.2, 7.4], [9.3, 9.3]], rtol=1e-7)  # 3x3 window, stride 1
    assert float(P.global_avg_pool(nhwc(X))[0, 0]) == pytest.approx(3.58125)  # GAP
    assert float(P.global_max_pool(nhwc(X))[0, 0]) == pytest.approx(9.3)
    # GAP of [[1, 2], [3, 4]] is 2.5; keepdims keeps NHWC.
    assert float(P.global_avg_pool(nhwc(np.array([[1., 2.], [3., 4.]])))[0, 0]) == 2.5
    assert P.global_avg_pool(nhwc(X), keepdims=True).shape == (1, 1, 1, 1)


def test_c2_lp_mixed_and_stochastic_values():
    np.testing.assert_allclose(as_map(P.lp_pool(nhwc(X), p=2, window=2)),
                               [[9.028289, 7.984360], [7.013558, 10.778683]], rtol=1e-6)  # L2 pooling
    np.testing.assert_allclose(as_map(P.lp_pool(nhwc(X), p=1, window=2)),
                               [[13.9, 12.3], [13.1, 18.0]], rtol=1e-6)  # L1 pooling: window sums
    np.testing.assert_allclose(as_map(P.mixed_pool(nhwc(X), alpha=0.5, window=2)),
                               [[5.8375, 5.2375], [4.1875, 6.9]], rtol=1e-6)  # half max, half average
    np.testing.assert_allclose(P.mixed_pool(nhwc(X), alpha=1.0, window=2),
                               P.max_pool(nhwc(X), window=2))
    np.testing.assert_allclose(P.mixed_pool(nhwc(X), alpha=0.0, window=2),
                               P.avg_pool(nhwc(X), window=2))
    np.testing.assert_allclose(as_map(P.stochastic_pool(nhwc(X), window=2, train=False)),
                               [[5.864029, 5.182927], [3.754962, 6.454444]], rtol=1e-6)  # eval: sum p x
    # Large p approaches max |x| (and does not overflow: 9.3^64 > float32 max).
    np.testing.assert_allclose(P.lp_pool(nhwc(X), p=64, window=2), P.max_pool(nhwc(X), window=2),
                               rtol=0.03)
    grads = jax.grad(lambda v: P.lp_pool(v, p=64, window=2).sum())(nhwc(X))
    assert np.isfinite(np.asarray(grads)).all()


def test_stochastic_pool_samples_in_proportion():
    # Top-left window [3.1, 0.5, 8.2, 2.1]: probabilities [0.223, 0.036, 0.590, 0.151] (x / sum x).
    keys = jax.random.split(jax.random.key(0), 4000)
    draws = jax.jit(jax.vmap(lambda k: P.stochastic_pool(nhwc(X), window=2, train=True,
                                                         key=k)[0, 0, 0, 0]))(keys)
    draws = np.asarray(draws)
    freq = [np.mean(draws == v) for v in (np.float32(3.1), np.float32(0.5), np.float32(8.2),
                                          np.float32(2.1))]
    np.testing.assert_allclose(freq, [0.223022, 0.035971, 0.589928, 0.151079], atol=0.025)
    assert set(np.unique(draws)) <= {np.float32(v) for v in (3.1, 0.5, 8.2, 2.1)}
    zeros = P.stochastic_pool(jnp.zeros((1, 2, 2, 1)), window=2, train=True, key=keys[0])
    assert float(zeros[0, 0, 0, 0]) == 0.0
    with pytest.raises(ValueError, match="key="):
        P.stochastic_pool(nhwc(X), window=2, train=True)


def test_adaptive_bins_c2_p11():
    assert P.adaptive_bins(10, 7) == ((0, 2), (1, 3), (2, 5), (4, 6), (5, 8), (7, 9), (8, 10))
    assert P.adaptive_bins(4, 2) == ((0, 2), (2, 4))
    assert P.adaptive_bins(2, 3) == ((0, 1), (0, 2), (1, 2))


def test_adaptive_pool_matches_numpy_bins():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 10, 13, 3)).astype(np.float32)
    out = np.asarray(P.adaptive_max_pool(x, (7, 5)))
    mean = np.asarray(P.adaptive_avg_pool(x, (7, 5)))
    for i, j in itertools.product(range(7), range(5)):
        r0, r1 = (i * 10) // 7, -(-((i + 1) * 10) // 7)
        c0, c1 = (j * 13) // 5, -(-((j + 1) * 13) // 5)
        np.testing.assert_allclose(out[:, i, j], x[:, r0:r1, c0:c1].max(axis=(1, 2)))
        np.testing.assert_allclose(mean[:, i, j], x[:, r0:r1, c0:c1].mean(axis=(1, 2)), rtol=1e-5)


@pytest.mark.parametrize("in_hw,out_hw", [((11, 9), (7, 7)), ((13, 7), (5, 3)), ((5, 7), (7, 9)),
                                          ((9, 9), (1, 1)), ((15, 10), (4, 6)),
                                          ((8, 12), (4, 3)), ((7, 7), (7, 7))])
def test_adaptive_pool_matches_torch(in_hw, out_hw):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, *in_hw, 3)).astype(np.float32)
    t = torch.from_numpy(x.transpose(0, 3, 1, 2))
    want_avg = torch.nn.functional.adaptive_avg_pool2d(t, out_hw).numpy().transpose(0, 2, 3, 1)
    want_max = torch.nn.functional.adaptive_max_pool2d(t, out_hw).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(P.adaptive_avg_pool(x, out_hw), want_avg, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(P.adaptive_max_pool(x, out_hw), want_max)


@pytest.mark.parametrize("window,stride,padding,ceil_mode", [
    (3, 2, 1, True), (2, 2, 0, True), (3, 2, 1, False), (3, 3, 1, True), (2, 1, 1, False),
])
def test_max_avg_pool_match_torch(window, stride, padding, ceil_mode):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 11, 9, 3)).astype(np.float32)
    t = torch.from_numpy(x.transpose(0, 3, 1, 2))

    def to_nhwc(y):
        return y.numpy().transpose(0, 2, 3, 1)

    options = dict(window=window, stride=stride, padding=padding, ceil_mode=ceil_mode)
    np.testing.assert_array_equal(P.max_pool(x, **options),
                                  to_nhwc(F.max_pool2d(t, window, stride, padding,
                                                       ceil_mode=ceil_mode)))
    for include in (True, False):
        np.testing.assert_allclose(
            P.avg_pool(x, count_include_pad=include, **options),
            to_nhwc(F.avg_pool2d(t, window, stride, padding, ceil_mode=ceil_mode,
                                 count_include_pad=include)), rtol=1e-5, atol=1e-6)


def test_lp_pool_matches_torch_on_nonnegative_input():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = np.abs(rng.normal(size=(1, 8, 6, 2))).astype(np.float32)
    want = torch.nn.functional.lp_pool2d(torch.from_numpy(x.transpose(0, 3, 1, 2)), 3, 2)
    np.testing.assert_allclose(P.lp_pool(x, p=3, window=2), want.numpy().transpose(0, 2, 3, 1),
                               rtol=1e-5)


def test_fractional_max_pool_matches_torch_given_samples():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 12, 9, 3)).astype(np.float32)
    samples = rng.uniform(size=(2, 3, 2)).astype(np.float32)
    for window, out in [(2, (8, 6)), (3, (5, 4))]:
        want = torch.nn.functional.fractional_max_pool2d(
            torch.from_numpy(x.transpose(0, 3, 1, 2)), window, output_size=out,
            _random_samples=torch.from_numpy(samples[..., ::-1].copy()))
        np.testing.assert_array_equal(
            P.fractional_max_pool(x, output_size=out, window=window, samples=samples),
            want.numpy().transpose(0, 2, 3, 1))


def test_fractional_max_pool_reduces_by_non_integer_factor():
    # Fractional pooling, ratio 1.5: 12 -> 8. Steps between windows are 1 or 2, ends at the border.
    for u in np.linspace(0, 0.99, 7):
        starts = np.asarray(P.fractional_starts(u, input_size=12, output_size=8, window=2))
        steps = np.diff(starts)
        assert set(steps.tolist()) <= {1, 2} and starts[0] == 0 and starts[-1] == 10
    x = jnp.arange(12 * 12, dtype=jnp.float32).reshape(1, 12, 12, 1)
    out = P.fractional_max_pool(x, output_size=(8, 8), key=jax.random.key(0))
    assert out.shape == (1, 8, 8, 1)
    # On an increasing ramp every window's max is its bottom-right element.
    assert float(out[0, -1, -1, 0]) == 143.0
    with pytest.raises(ValueError, match="key="):
        P.fractional_max_pool(x, output_size=8)
    with pytest.raises(ValueError, match="cannot map"):
        P.fractional_max_pool(x, output_size=12, key=jax.random.key(0))


def test_spatial_pyramid_pool_fixed_length():
    # SPP with 1x1, 2x2 and 4x4 bins: 21 C values whatever the input size (5376 for C = 256).
    for hw in [(13, 9), (24, 24), (4, 7)]:
        out = jax.eval_shape(lambda v: P.spatial_pyramid_pool(v), jnp.zeros((2, *hw, 256)))
        assert out.shape == (2, 5376)
    rng = np.random.default_rng(5)
    x = rng.normal(size=(1, 8, 8, 2)).astype(np.float32)
    out = np.asarray(P.spatial_pyramid_pool(x, levels=(1, 2), pool_fn=P.adaptive_avg_pool))
    np.testing.assert_allclose(out[0, :2], x[0].mean(axis=(0, 1)), rtol=1e-5)
    np.testing.assert_allclose(out[0, 2:4], x[0, :4, :4].mean(axis=(0, 1)), rtol=1e-5)


def test_invariances():
    # GAP is invariant to circular shifts; max over a window ignores moves inside it.
    rng = np.random.default_rng(6)
    x = rng.normal(size=(1, 6, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(P.global_avg_pool(np.roll(x, (2, 3), axis=(1, 2))),
                               P.global_avg_pool(x), rtol=1e-6)
    spike = np.zeros((1, 4, 4, 1), np.float32)
    spike[0, 0, 0, 0] = 1.0
    moved = np.zeros_like(spike)
    moved[0, 1, 1, 0] = 1.0
    np.testing.assert_array_equal(P.max_pool(spike, window=2), P.max_pool(moved, window=2))


def test_gradients_under_jit_match_torch():
    # Pools must lower to the differentiable reduce_window_max/sum primitives.
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(8)
    x = rng.normal(size=(1, 7, 6, 2)).astype(np.float32)
    pairs = [
        (lambda v: P.max_pool(v, window=3, stride=2, padding=1, ceil_mode=True),
         lambda v: F.max_pool2d(v, 3, 2, 1, ceil_mode=True)),
        (lambda v: P.avg_pool(v, window=3, stride=2, padding=1, ceil_mode=True),
         lambda v: F.avg_pool2d(v, 3, 2, 1, ceil_mode=True)),
        (lambda v: P.lp_pool(jnp.abs(v), p=2, window=2), lambda v: F.lp_pool2d(v.abs(), 2, 2)),
        (lambda v: P.adaptive_max_pool(v, (3, 4)), lambda v: F.adaptive_max_pool2d(v, (3, 4))),
    ]
    for ours, theirs in pairs:
        weights = rng.normal(size=jax.eval_shape(ours, x).shape).astype(np.float32)
        grad = jax.jit(jax.grad(lambda v: (ours(v) * weights).sum()))(x)
        t = torch.from_numpy(x.transpose(0, 3, 1, 2)).requires_grad_(True)
        (theirs(t) * torch.from_numpy(weights.transpose(0, 3, 1, 2))).sum().backward()
        np.testing.assert_allclose(grad, t.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-5,
                                   atol=1e-6)


def test_jit_vmap_and_errors():
    rng = np.random.default_rng(7)
    batch = rng.normal(size=(3, 1, 6, 6, 2)).astype(np.float32)
    fn = jax.jit(jax.vmap(lambda v: P.adaptive_avg_pool(v, 4) + P.max_pool(v, window=3, stride=1,
                                                                            padding=0)[:, :4, :4]))
    assert fn(batch).shape == (3, 1, 4, 4, 2)
    with pytest.raises(ValueError, match="NHWC"):
        P.max_pool(X, window=2)
    with pytest.raises(ValueError, match="p=0"):
        P.lp_pool(nhwc(X), p=0, window=2)
