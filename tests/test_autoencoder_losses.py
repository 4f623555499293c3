"""Autoencoder losses and image metrics: worked vectors, skimage parity for
SSIM/PSNR, the closed-form KL against Monte Carlo, and the importance-weighted bound."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision import losses, models
from jaxvision.losses import autoencoder as ael
from jaxvision.metrics import image_quality as iq
from jaxvision.models.autoencoders import gaussian_sample


def test_worked_vectors():
    x, p = jnp.array([[0.0, 1.0]]), jnp.array([[0.5, 0.5]])
    assert float(losses.mse(p, x)) == 0.25
    assert float(losses.mae(p, x)) == 0.5
    assert float(losses.binary_cross_entropy(jnp.zeros((1, 2)), jnp.array([[1.0, 0.0]]))) == \
        pytest.approx(math.log(2), abs=1e-6)
    target, pred = jnp.array([1.0, 2, 3, 4]), jnp.array([0.0, 2, 0, 4])
    assert float(ael.masked_mse(pred, target, jnp.array([1.0, 0, 1, 0]))) == 5.0
    assert float(losses.mse(pred, target)) == 2.5
    # Reparameterisation z = mu + sigma eps with mu 1, sigma 2, eps 0.5.
    assert 1.0 + 2.0 * 0.5 == 2.0
    key = jax.random.key(0)
    eps = jax.random.normal(key, (1, 1))
    np.testing.assert_allclose(gaussian_sample(key, jnp.ones((1, 1)), jnp.full((1, 1), math.log(4.0))),
                               1.0 + 2.0 * eps, rtol=1e-6)
    assert float(ael.gaussian_kl(jnp.zeros((1, 3)), jnp.zeros((1, 3)))[0]) == 0.0
    assert float(ael.gaussian_kl(jnp.ones((1, 1)), jnp.zeros((1, 1)))[0]) == 0.5


def test_kl_matches_monte_carlo():
    mean = jnp.array([[0.5, -1.0, 2.0]])
    log_var = jnp.array([[0.3, -0.7, 0.1]])
    closed = float(ael.gaussian_kl(mean, log_var)[0])
    z = gaussian_sample(jax.random.key(1), jnp.broadcast_to(mean, (100_000, 3)),
                        jnp.broadcast_to(log_var, (100_000, 3)))
    log_q = -0.5 * jnp.sum(jnp.log(2 * jnp.pi) + log_var + (z - mean) ** 2 / jnp.exp(log_var), -1)
    log_p = -0.5 * jnp.sum(jnp.log(2 * jnp.pi) + z ** 2, -1)
    monte_carlo = float(jnp.mean(log_q - log_p))
    assert monte_carlo == pytest.approx(closed, rel=0.01)


def test_elbo_beta_annealing_and_errors():
    outputs = {"logits": jnp.zeros((2, 2, 2, 1)), "mean": jnp.ones((2, 3)),
               "log_var": jnp.zeros((2, 3))}
    x = jnp.ones((2, 2, 2, 1))
    value, ll, kl = ael.elbo(outputs, x, beta=2.0)
    np.testing.assert_allclose(ll, -4 * math.log(2), rtol=1e-6)
    np.testing.assert_allclose(kl, 1.5, rtol=1e-6)
    np.testing.assert_allclose(value, -4 * math.log(2) - 3.0, rtol=1e-6)
    with pytest.raises(ValueError, match="beta"):
        ael.elbo(outputs, x, beta=-0.5)
    with pytest.raises(ValueError, match="beta"):
        ael.kl_weight(3, beta=-1.0)
    assert [float(ael.kl_weight(s, beta=4.0, warmup_steps=10)) for s in (0, 5, 10, 20)] == \
        [0.0, 2.0, 4.0, 4.0]
    assert float(ael.kl_weight(15, beta=1.0, warmup_steps=10, cycle_steps=20)) == 1.0
    assert float(ael.kl_weight(25, beta=1.0, warmup_steps=10, cycle_steps=20)) == 0.5


def test_masked_mse_shapes():
    x = jnp.ones((2, 4, 4, 3))
    mask = jnp.zeros((2, 4, 4, 1)).at[:, :2].set(1.0)
    assert float(ael.masked_mse(jnp.zeros_like(x), x, mask)) == 1.0
    with pytest.raises(ValueError, match="mask shape"):
        ael.masked_mse(x, x, jnp.ones((2, 4, 4)))


def test_sparsity_penalties():
    z = jnp.array([[1.0, -2.0], [0.0, 3.0]])
    assert float(ael.l1_activity(z, weight=0.5)) == 0.5 * (3 + 3) / 2
    a = jnp.array([[0.1, 0.5], [0.3, 0.5]])  # unit means 0.2 and 0.5
    rho = 0.2
    expected = sum(rho * math.log(rho / r) + (1 - rho) * math.log((1 - rho) / (1 - r)) for r in (0.2, 0.5))
    assert float(ael.kl_sparsity(a, target=rho)) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="target"):
        ael.kl_sparsity(a, target=1.5)


@pytest.mark.slow
def test_perceptual_loss_on_classifier_features():
    net = models.create("small_cnn", num_classes=10)
    x = jax.random.uniform(jax.random.key(0), (2, 8, 8, 1))
    variables = jax.jit(lambda k, v: net.init(k, v, train=False))(jax.random.key(1), x)
    feature_fn = jax.jit(lambda im: models.features(net, variables, im))
    assert float(ael.perceptual_loss(x, x, feature_fn=feature_fn)) == 0.0
    y = x[::-1]
    fx, fy = feature_fn(x), feature_fn(y)
    expected = sum(float(jnp.mean((fx[n] - fy[n]) ** 2)) for n in fx)
    assert float(ael.perceptual_loss(x, y, feature_fn=feature_fn)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.slow
def test_importance_weighted_bound_tightens():
    vae = models.create("vae", image_shape=(8, 8, 1), latent_dim=4, hidden=(32,))
    x = (jax.random.uniform(jax.random.key(0), (16, 8, 8, 1)) > 0.5).astype(jnp.float32)
    variables = jax.jit(vae.init)({"params": jax.random.key(1), "sample": jax.random.key(2)}, x)
    mean, log_var = vae.apply(variables, x, method="encode")
    decode = lambda z: vae.apply(variables, z, method="decode_logits")  # noqa: E731
    bound = jax.jit(lambda key, k: jnp.mean(ael.importance_weighted_bound(
        decode, mean, log_var, x, key, num_samples=k)), static_argnums=1)
    bounds = [float(bound(jax.random.key(3), k)) for k in (1, 8, 64)]
    # k = 1 is an unbiased estimate of the (Monte Carlo) ELBO; more samples tighten the bound.
    assert bounds[0] < bounds[1] < bounds[2]
    mc_elbo = float(jnp.mean(jax.jit(jax.vmap(lambda key: bound(key, 1)))(
        jax.random.split(jax.random.key(4), 64))))
    assert bounds[2] >= mc_elbo


def test_psnr_and_ssim_match_skimage():
    metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(0)
    x = rng.random((3, 24, 20, 2)).astype(np.float32)
    y = np.clip(x + 0.1 * rng.standard_normal(x.shape), 0, 1).astype(np.float32)
    y[1] = x[1] * 0.5 + 0.2
    got = iq.ssim(x, y, data_range=1.0)
    for i in range(3):
        expected = metrics.structural_similarity(
            x[i], y[i], gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
            data_range=1.0, channel_axis=-1)
        assert float(got[i]) == pytest.approx(expected, abs=1e-4)
        assert float(iq.psnr(x, y)[i]) == pytest.approx(
            metrics.peak_signal_noise_ratio(x[i], y[i], data_range=1.0), abs=1e-4)
    # A small window for 8x8 digits: the same definition with sigma 0.5.
    small = metrics.structural_similarity(x[0, :8, :8, 0], y[0, :8, :8, 0], gaussian_weights=True,
                                          sigma=0.5, use_sample_covariance=False, data_range=1.0)
    assert float(iq.ssim(x[:1, :8, :8, :1], y[:1, :8, :8, :1], sigma=0.5)[0]) == pytest.approx(small, abs=1e-4)


@pytest.mark.slow
def test_ssim_ms_ssim_properties_and_errors():
    x = jax.random.uniform(jax.random.key(0), (2, 48, 48, 1))
    assert np.allclose(iq.ssim(x, x), 1.0, atol=1e-6)
    assert np.allclose(iq.ms_ssim(x, x, weights=(0.5, 0.5)), 1.0, atol=1e-5)
    # One scale of MS-SSIM is SSIM; noise lowers both.
    y = jnp.clip(x + 0.2 * jax.random.normal(jax.random.key(1), x.shape), 0, 1)
    np.testing.assert_allclose(iq.ms_ssim(x, y, weights=(1.0,)), iq.ssim(x, y), rtol=1e-5)
    assert float(iq.ms_ssim(x, y, weights=(0.3, 0.3, 0.4))[0]) < 1.0
    assert float(ael.ssim_loss(x, y)) == pytest.approx(1 - float(jnp.mean(iq.ssim(x, y))), abs=1e-6)
    with pytest.raises(ValueError, match="at least 161"):
        iq.ms_ssim(x, y)
    with pytest.raises(ValueError, match="smaller sigma"):
        iq.ssim(x[:, :8, :8], y[:, :8, :8])
    with pytest.raises(ValueError, match="one shape"):
        iq.psnr(x, y[:1])


def _ms_ssim_pair(channels: int):
    """Two related 176x176 images: every pooled level has even sides (176 -> 11), where the
    references' odd-side paddings play no part; one image pair is darker and smoother."""
    rng = np.random.default_rng(channels)
    x = rng.random((2, 176, 176, channels)).astype(np.float32)
    y = np.clip(x + 0.15 * rng.standard_normal(x.shape), 0, 1).astype(np.float32)
    y[1] = 0.6 * x[1] + 0.1
    return x, y


@pytest.mark.slow  # TensorFlow's import and graph: about 15 s
@pytest.mark.parametrize("channels", [1, 3])
def test_ms_ssim_equals_tensorflow(channels):
    tf = pytest.importorskip("tensorflow")
    x, y = _ms_ssim_pair(channels)
    expected = tf.image.ssim_multiscale(tf.constant(x), tf.constant(y), max_val=1.0,
                                        filter_size=11, filter_sigma=1.5).numpy()
    # TF filters in float32 with another summation order: 1.3e-5 apart at most here.
    np.testing.assert_allclose(np.asarray(iq.ms_ssim(x, y)), expected, atol=5e-5)


@pytest.mark.parametrize("channels", [1, 3])
def test_ms_ssim_equals_pytorch_msssim(channels):
    torch = pytest.importorskip("torch")
    reference = pytest.importorskip("pytorch_msssim")
    x, y = _ms_ssim_pair(channels)
    to_nchw = lambda a: torch.from_numpy(a.transpose(0, 3, 1, 2).copy()).double()  # noqa: E731
    expected = reference.ms_ssim(to_nchw(x), to_nchw(y), data_range=1.0, size_average=False,
                                 win_size=11, win_sigma=1.5).numpy()
    np.testing.assert_allclose(np.asarray(iq.ms_ssim(x, y)), expected, atol=1e-5)
