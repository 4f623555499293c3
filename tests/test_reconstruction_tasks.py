"""Reconstruction tasks through the one engine (a few steps on embedded digits), corruptions
made on device, and the host PSNR/SSIM evaluator against skimage-checked metrics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import digits_config

from jaxvision import autoencoders, models, tasks, train
from jaxvision.metrics import image_quality as iq
from jaxvision.train import train_and_evaluate


def test_corruptions_and_curriculum():
    x = jnp.full((4, 8, 8, 1), 0.5)
    key = jax.random.key(0)
    noisy, mask = autoencoders.salt_and_pepper(key, x, 0.25)
    changed = np.asarray(noisy != 0.5)
    np.testing.assert_array_equal(changed, np.asarray(mask, bool))
    assert set(np.unique(np.asarray(noisy)[changed])) <= {0.0, 1.0}
    holed, mask = autoencoders.box_mask(key, x, 0.5)
    np.testing.assert_array_equal(mask.reshape(4, -1).sum(-1), [16.0] * 4)  # a 4x4 hole each
    np.testing.assert_array_equal(np.asarray(holed)[np.asarray(mask, bool)], 0.0)
    g, _ = autoencoders.gaussian_noise(key, x, 0.1)
    assert 0.05 < float(jnp.std(g)) < 0.15 and float(g.min()) >= 0
    assert [float(autoencoders.curriculum_level(s, start=0.1, end=0.5, steps=4))
            for s in (0, 2, 4, 9)] == pytest.approx([0.1, 0.3, 0.5, 0.5])
    with pytest.raises(ValueError, match="corruption must be one of"):
        autoencoders.corrupt("blur", key, x, 0.1)


def test_evaluator_psnr_ssim():
    x = np.random.default_rng(0).random((3, 8, 8, 1)).astype(np.float32)
    y = np.clip(x + 0.1, 0, 1)
    ev = tasks.ImageQualityEvaluator()
    ev.update({"reconstruction": y, "corrupted": x * 0.5},
              {"image": (x * 255).round().astype(np.uint8), "valid": np.array([1, 1, 0])})
    clean = (x * 255).round().astype(np.uint8).astype(np.float32) / 255
    result = ev.result()
    assert result["psnr"] == pytest.approx(float(np.mean(iq.psnr(y[:2], clean[:2]))), rel=1e-5)
    assert result["ssim"] == pytest.approx(float(np.mean(iq.ssim(y[:2], clean[:2], sigma=0.5))), rel=1e-5)
    assert result["input_psnr"] < result["psnr"]


def test_task_errors():
    with pytest.raises(ValueError, match="beta"):
        tasks.VAETask(beta=-1.0)
    with pytest.raises(ValueError, match="loss_type"):
        tasks.ReconstructionTask(loss_type="huber")
    task = tasks.ReconstructionTask(masked=True)
    with pytest.raises(ValueError, match="mask shape"):
        task.loss({"reconstruction": jnp.zeros((2, 4, 4, 1)), "mask": jnp.ones((2, 4, 4))},
                  {"image": jnp.zeros((2, 4, 4, 1))}, train=True)


@pytest.mark.slow
def test_denoising_trains_through_the_engine(tfds_dir, tmp_path):
    """A denoising conv AE (salt-and-pepper noise made in the step, with a curriculum), 44
    steps on digits: it beats its noisy input's PSNR; the curriculum counter advances once
    per step."""
    config = digits_config(tfds_dir, num_epochs=2, batch_size=64, best_metric="eval_psnr",
                           best_mode="max", task="reconstruction", tensorboard=False,
                           **{"optimizer.learning_rate": 1e-2})
    model = autoencoders.Corrupted(models.create("conv_autoencoder", channels=(16, 16)),
                                   kind="salt_pepper", level=0.3, start_level=0.1,
                                   curriculum_steps=20)
    seen = []
    summary = train_and_evaluate(
        config, str(tmp_path / "dae"), model=model,
        callbacks=[lambda step, state, m: seen.append(
            (int(state.step), int(state.model_state["curriculum"]["step"])))])
    print("denoising:", summary)
    assert summary["eval_psnr"] > summary["eval_input_psnr"] + 2.0
    assert seen == [(22, 22), (44, 44)]  # the curriculum counts the steps


@pytest.mark.slow
def test_vae_trains_through_the_engine(tfds_dir, tmp_path):
    """A beta-VAE by name (task "vae", model "vae") with KL annealing, one epoch: the KL
    weight ramps to beta, the bound beats a uniform Bernoulli decoder."""
    config = digits_config(tfds_dir, num_epochs=1, task="vae", best_metric="eval_neg_elbo",
                           best_mode="min", model="vae",
                           model_kwargs={"image_shape": (8, 8, 1), "latent_dim": 4,
                                         "hidden": (64,)},
                           task_kwargs={"beta": 2.0, "warmup_steps": 10}, tensorboard=False,
                           **{"optimizer.learning_rate": 1e-2})
    summary = train_and_evaluate(config, str(tmp_path / "vae"))
    print("vae:", summary)
    records = [r for r in train.read_metrics(str(tmp_path / "vae")) if r["split"] == "train"]
    assert records[0]["kl_weight"] < 2.0 and records[-1]["kl_weight"] == 2.0
    assert 0 < summary["eval_kl"] and summary["eval_neg_elbo"] < 44.0  # 64 * ln 2 at chance


def test_task_losses_by_definition():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.random((2, 4, 4, 1)), jnp.float32)
    recon = jnp.asarray(rng.random((2, 4, 4, 1)), jnp.float32)
    mask = jnp.zeros((2, 4, 4, 1)).at[0, :2].set(1.0).at[1, 3:].set(1.0)
    batch = {"image": x}
    loss, aux = tasks.ReconstructionTask(masked=True).loss(
        {"reconstruction": recon, "mask": mask}, batch, train=True)
    per = [float(jnp.sum(mask[i] * (recon[i] - x[i]) ** 2) / jnp.sum(mask[i])) for i in range(2)]
    assert float(loss) == pytest.approx(np.mean(per), rel=1e-6)
    assert float(aux["mse"]) == pytest.approx(float(jnp.mean((recon - x) ** 2)), rel=1e-6)
    sparse, _ = tasks.ReconstructionTask(sparsity_weight=0.1).loss(
        {"reconstruction": recon, "latent": jnp.array([[1.0, -1.0], [0.0, 2.0]])}, batch, train=True)
    assert float(sparse) == pytest.approx(float(jnp.mean((recon - x) ** 2)) + 0.1 * 2.0, rel=1e-6)
    vq = {"reconstruction": recon, "codebook_loss": jnp.asarray(0.5), "commitment_loss": jnp.asarray(2.0)}
    vq_loss, _ = tasks.VQVAETask().loss(vq, batch, train=True)
    assert float(vq_loss) == pytest.approx(float(jnp.mean((recon - x) ** 2)) + 0.5 + 0.25 * 2.0, rel=1e-6)
    # The VAE's loss is the negative ELBO at the annealed weight of the model's step counter.
    out = {"reconstruction": jax.nn.sigmoid(recon), "logits": recon, "mean": jnp.ones((2, 3)),
           "log_var": jnp.zeros((2, 3)), "train_step": jnp.asarray(5)}
    vae_loss, aux = tasks.VAETask(beta=4.0, warmup_steps=10).loss(out, batch, train=True)
    assert float(aux["kl_weight"]) == 2.0 and float(aux["kl"]) == pytest.approx(1.5)
    assert float(vae_loss) == pytest.approx(float(aux["recon"]) + 2.0 * 1.5, rel=1e-6)
