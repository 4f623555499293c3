"""Autoencoder models: the worked layer sizes, shapes, and the VAE/VQ-VAE mechanics."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision import models
from jaxvision.models.autoencoders import UPSAMPLINGS


def _params(model, x, **kwargs):
    shapes = jax.eval_shape(lambda: model.init({"params": jax.random.key(0),
                                                "sample": jax.random.key(1)}, x, **kwargs))
    return shapes


def _count(tree) -> int:
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(tree))


def test_linear_autoencoder_course_sizes():
    model = models.create("linear_autoencoder")
    variables = _params(model, jnp.zeros((1, 28, 28, 1)))
    params = variables["params"]
    assert _count(params) == 489_136
    assert _count(params["encoder"]) == 244_192 and _count(params["decoder"]) == 244_944
    assert [_count(params["encoder"][f"dense{i}"]) for i in range(4)] == [200_960, 32_896, 8_256, 2_080]
    out = jax.eval_shape(lambda v: model.apply(v, jnp.zeros((2, 28, 28, 1))), variables)
    assert out["latent"].shape == (2, 32) and out["reconstruction"].shape == (2, 28, 28, 1)
    assert 784 / 32 == 24.5


def test_latent_larger_than_input_is_an_error():
    with pytest.raises(ValueError, match="latent_dim=100 must lie in"):
        _params(models.create("linear_autoencoder", image_shape=(8, 8, 1), latent_dim=100),
                jnp.zeros((1, 8, 8, 1)))
    with pytest.raises(ValueError, match="latent_dim=65"):
        _params(models.create("vae", image_shape=(8, 8, 1), latent_dim=65), jnp.zeros((1, 8, 8, 1)))
    with pytest.raises(ValueError, match="built for images of shape"):
        _params(models.create("linear_autoencoder"), jnp.zeros((1, 8, 8, 1)))


def test_conv_autoencoder_shapes_and_counts():
    model = models.create("conv_autoencoder", norm=None)
    x = jnp.zeros((2, 28, 28, 1))
    variables = _params(model, x)
    p = variables["params"]
    assert _count({k: p[k] for k in ("enc_conv1", "enc_conv2")}) == 4_800
    assert _count({k: p[k] for k in ("dec_up1", "dec_up2")}) == 2_129
    out, state = jax.eval_shape(lambda v: model.apply(v, x, mutable=["intermediates"]), variables)
    assert out["latent"].shape == (2, 7, 7, 32)  # 1,568 values: twice the 784 inputs
    assert out["reconstruction"].shape == (2, 28, 28, 1)
    # The decoder's shapes: 32x7x7 -> 16x14x14 -> 1x28x28.
    assert state["intermediates"]["decoder1"][0].shape == (2, 14, 14, 16)
    for kind in UPSAMPLINGS:
        for skip in (None, "add", "concat"):
            m = models.create("conv_autoencoder", upsampling=kind, skip=skip, latent_channels=4)
            v = _params(m, x)
            o = jax.eval_shape(lambda v: m.apply(v, x, train=False), v)
            assert o["reconstruction"].shape == x.shape and o["latent"].shape == (2, 7, 7, 4)
    with pytest.raises(ValueError, match="upsampling must be one of"):
        _params(models.create("conv_autoencoder", upsampling="magic"), x)


@pytest.mark.slow
def test_conv_autoencoder_tanh_and_batchnorm():
    model = models.create("conv_autoencoder", output_act="tanh")
    x = jax.random.uniform(jax.random.key(0), (2, 8, 8, 1)) * 2 - 1
    variables = jax.jit(lambda: model.init(jax.random.key(1), x))()
    assert "batch_stats" in variables
    out, _ = jax.jit(lambda v: model.apply(v, x, train=True, mutable=["batch_stats"]))(variables)
    assert float(jnp.min(out["reconstruction"])) >= -1 and float(jnp.max(out["reconstruction"])) <= 1


@pytest.mark.slow
def test_vae_sampling_uses_the_sample_stream():
    model = models.create("vae", image_shape=(8, 8, 1), latent_dim=2, hidden=(16,))
    x = jax.random.uniform(jax.random.key(0), (3, 8, 8, 1))
    variables = jax.jit(model.init)({"params": jax.random.key(1)}, x)
    eval_out = jax.jit(model.apply)(variables, x)
    np.testing.assert_array_equal(eval_out["latent"], eval_out["mean"])  # eval decodes the mean
    a = model.apply(variables, x, train=True, rngs={"sample": jax.random.key(5)})
    b = model.apply(variables, x, train=True, rngs={"sample": jax.random.key(6)})
    assert not np.allclose(a["latent"], b["latent"])
    again = model.apply(variables, x, train=True, rngs={"sample": jax.random.key(5)})
    np.testing.assert_array_equal(a["latent"], again["latent"])
    cvae = models.create("conditional_vae", image_shape=(8, 8, 1), latent_dim=2, hidden=(16,))
    labels = jnp.array([0, 3, 9])
    cv = jax.jit(cvae.init)(jax.random.key(1), x, labels)
    z = jnp.zeros((3, 2))
    images = cvae.apply(cv, z, labels, method="decode")
    assert images.shape == (3, 8, 8, 1) and not np.allclose(images[0], images[1])  # label matters
    with pytest.raises(ValueError, match="needs labels"):
        cvae.apply(cv, x)


@pytest.mark.slow
def test_vq_vae_straight_through_and_losses():
    model = models.create("vq_vae", num_codes=16, embed_dim=4)
    x = jax.random.uniform(jax.random.key(0), (2, 8, 8, 1))
    variables = jax.jit(model.init)(jax.random.key(1), x)

    @jax.jit
    def run(params):  # one compile: the outputs and the gradients of two losses
        out = model.apply({"params": params}, x)
        recon = jax.grad(lambda p: jnp.mean(model.apply({"params": p}, x)["reconstruction"]))
        code = jax.grad(lambda p: model.apply({"params": p}, x)["codebook_loss"])
        return out, recon(params), code(params)

    out, grads, g_code = run(variables["params"])
    codebook = variables["params"]["quantizer"]["codebook"]
    z_e = out["latent"]
    nearest = jnp.argmin(((z_e[..., None, :] - codebook) ** 2).sum(-1), -1)
    np.testing.assert_array_equal(out["codes"], nearest)
    np.testing.assert_allclose(out["quantized"], codebook[nearest], atol=1e-6)
    np.testing.assert_allclose(out["commitment_loss"], jnp.mean((z_e - codebook[nearest]) ** 2), rtol=1e-5)
    # Straight-through: the reconstruction's gradient reaches the encoder through the quantizer
    # and not the codebook; the codebook loss moves the codebook and not the encoder.
    assert float(jnp.abs(grads["enc_0"]["kernel"]).sum()) > 0
    assert float(jnp.abs(grads["quantizer"]["codebook"]).sum()) == 0
    assert float(jnp.abs(g_code["quantizer"]["codebook"]).sum()) > 0
    assert float(jnp.abs(g_code["enc_0"]["kernel"]).sum()) == 0


def test_conditional_vae_trains_through_the_engine_with_labels(tmp_path):
    """The 'vae' task with ``conditional=True`` passes ``batch["label"]`` to the model in
    every step: decoding prior samples under label c then draws digits that a
    nearest-class-mean classifier (on the training images) calls c."""
    from jaxvision import train
    from jaxvision.data import make_datasets
    from jaxvision.data.builders import digits_arrays
    from jaxvision.data.sources import from_arrays

    (train_x, train_y), (test_x, test_y) = digits_arrays("train"), digits_arrays("test")
    datasets = make_datasets(from_arrays(train_x, train_y, num_classes=10),
                             from_arrays(test_x, test_y, num_classes=10), batch_size=64,
                             eval_batch_size=512, seed=0)
    config = train.default_config()
    config.update(task="vae", model="conditional_vae", num_epochs=6, parallel="none",
                  best_metric="", tensorboard=False, log_every_steps=1000)
    config.model_kwargs = dict(image_shape=(8, 8, 1), hidden=(64,), latent_dim=4)
    config.task_kwargs = dict(conditional=True, warmup_steps=50)
    config.optimizer.name, config.optimizer.learning_rate = "adam", 6e-3
    kept = {}
    summary = train.train_and_evaluate(
        config, str(tmp_path), datasets=datasets,
        callbacks=[lambda step, state, metrics: kept.update(variables=jax.device_get(state.variables()))])
    assert summary["eval_neg_elbo"] < 30.0  # nats per 64-pixel image; untrained: about 44

    model = models.create("conditional_vae", num_classes=10, **config.model_kwargs)
    labels = np.repeat(np.arange(10), 20)
    z = jax.random.normal(jax.random.key(0), (len(labels), 4))
    samples = np.asarray(model.apply(kept["variables"], z, labels, method="decode"))
    images = train_x.reshape(len(train_x), -1).astype(np.float32) / 255.0
    means = np.stack([images[train_y == c].mean(0) for c in range(10)])
    distances = ((samples.reshape(len(samples), 1, -1) - means[None]) ** 2).sum(-1)
    assert np.mean(distances.argmin(1) == labels) >= 0.75  # measured 0.84
