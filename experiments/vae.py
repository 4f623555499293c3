"""VAE vs plain autoencoder: sampling, latent structure, bounds; the conditional VAE; t-SNE
of latents and attribute arithmetic.

Command:  python -m experiments.vae --workdir workdirs/vae
Expected: VAEs (Bernoulli decoder, 8-D latent, beta 1 and 4 with KL annealing) and a plain
          autoencoder with the same bottleneck, trained through the engine on digits. Images
          decoded from random latents look like digits for the VAE (sampled from its N(0, I)
          prior) more than for the plain autoencoder (sampled uniformly from the box its
          training latents span: its latent space has gaps). The importance-weighted bound
          rises with k (k=1 is a one-sample ELBO).
Measured: (2026-12-01, defaults) VAE beta=1: test -ELBO (at the posterior mean) 22.46 nats,
          KL 3.24, IW bound k=1/10/100 -24.10 / -23.88 / -23.82 (tightening), PSNR 16.32.
          VAE beta=4: posterior collapse (KL 0.0005, PSNR 11.48; its IW estimates are flat,
          -27.02 at every k, up to Monte Carlo noise). Plain AE PSNR 19.83. Prior samples
          (samples.png): the VAE's are blurry digits, the plain AE's box samples are sharp
          stroke blends that are mostly not digits; a logistic-regression judge (test
          accuracy 0.967) is about as confident on both (0.701 vs 0.697; 0.912 on real
          digits), so that number does not separate them: the figure does.
          Conditional VAE (same layout, the one-hot label into encoder and decoder, the
          'vae' task with conditional=True): -ELBO 20.23, and the judge names the
          conditioning label of 100% of 250 prior samples (cvae_samples.png). 5-NN digit
          accuracy in the latent space: VAE 0.964, plain AE 0.981; t-SNE maps in tsne.png.
          Ink arithmetic (thick-minus-thin vector within classes): the plain AE's moves the
          decoded ink from 0.272 to 0.333 for alpha -2..+2 (class kept 92-97%); the VAE's
          barely moves it (0.305-0.307): its few active dimensions hold the digit, not the
          pen width.
Runtime:  about 4 minutes on 2 shared CPU cores (trainings 46 s, 46 s, 31 s, 43 s, under load).
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from experiments._autoencoders import (ae_config, apply_batched, as_float, digits, image_row,
                                       train_model)
from jaxvision import cli, models, plots
from jaxvision.autoencoders import latent
from jaxvision.losses import autoencoder as ael


def get_config() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(dict(latent_dim=8, hidden=(128, 64), epochs=40,
                                          betas=(1.0, 4.0), warmup_epochs=5, learning_rate=3e-3,
                                          num_samples=256, seed=0))


def digit_classifier(images, labels):
    """A logistic-regression digit classifier on pixels (scikit-learn): the judge of samples."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=3000).fit(images.reshape(len(images), -1), labels)


def confidence(classifier, images) -> float:
    """Mean top-class probability the classifier gives ``images``: near 1 for clear digits,
    lower for the blends a decoder makes from latents off the data's manifold."""
    return float(classifier.predict_proba(images.reshape(len(images), -1)).max(1).mean())


def tile(images, gap: float = 0.5) -> np.ndarray:
    """A ``[R, C, h, w]`` array of images as one picture, tiles 1 pixel apart (grey)."""
    rows, cols, h, w = images.shape
    out = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), gap, np.float32)
    for r in range(rows):
        for c in range(cols):
            out[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = images[r, c]
    return out


def conditional_vae(config, workdir, results, judge, kwargs, train_u8, train_labels, test_u8,
                    test_labels, steps_per_epoch) -> np.ndarray:
    """Trains the CVAE through the engine (labels reach the model by the task's
    ``model_inputs``); records how often the judge names the conditioning label of a prior
    sample; returns a 10-row grid of samples (row c: label c)."""
    model = models.create("conditional_vae", num_classes=10, **kwargs)
    cfg = ae_config(epochs=config.epochs, task="vae", learning_rate=config.learning_rate,
                    conditional=True, warmup_steps=config.warmup_epochs * steps_per_epoch)
    cfg.best_metric = ""
    run = train_model(cfg, os.path.join(workdir, "cvae"), model, train_u8, test_u8,
                      train_labels=train_labels, test_labels=test_labels, num_classes=10)
    per_label = max(config.num_samples // 10, 1)
    labels = np.repeat(np.arange(10), per_label)
    z = np.random.default_rng(config.seed + 1).standard_normal(
        (len(labels), config.latent_dim)).astype(np.float32)
    samples = np.asarray(model.apply(run.state.variables(), z, labels, method="decode"))
    results["CVAE"] = {"neg_elbo": run.summary["eval_neg_elbo"], "kl": run.summary["eval_kl"],
                       "psnr": run.summary["eval_psnr"],
                       "sample_confidence": confidence(judge, samples),
                       "label_accuracy": float(np.mean(
                           judge.predict(samples.reshape(len(samples), -1)) == labels)),
                       "samples": len(labels), "seconds": run.seconds}
    return tile(samples.reshape(10, per_label, 8, 8)[:, :12])


def knn_accuracy(train_z, train_labels, test_z, test_labels, k: int = 5) -> float:
    """How class-structured a latent space is: k-nearest-neighbour accuracy of test latents
    against the training latents (scikit-learn)."""
    from sklearn.neighbors import KNeighborsClassifier

    return float(KNeighborsClassifier(k).fit(train_z, train_labels).score(test_z, test_labels))


def plot_tsne(path: str, latents: dict, labels, seed: int) -> None:
    """t-SNE maps of each model's test latents, coloured by digit."""
    from sklearn.manifold import TSNE

    fig, axes = plots.figure((10, 4.4), ncols=len(latents))
    for ax, (name, z) in zip(np.ravel(axes), latents.items()):
        xy = TSNE(2, perplexity=30, init="pca", random_state=seed).fit_transform(np.asarray(z))
        points = ax.scatter(xy[:, 0], xy[:, 1], c=labels, cmap="tab10", s=6)
        ax.set(title=f"{name}: t-SNE of the test latents", xticks=[], yticks=[])
    fig.colorbar(points, ax=np.ravel(axes)[-1], label="digit")
    plots.save(fig, path, dpi=110)


def ink_arithmetic(model, variables, judge, train_z, x_train, train_labels, test_z,
                   alphas=(-2.0, -1.0, 0.0, 1.0, 2.0)) -> tuple[list[dict], np.ndarray]:
    """Latent attribute arithmetic with 'ink' (mean pixel value) as the attribute: the vector
    from thin to thick writing within each class, added to test latents (see the report).
    Returns per-alpha rows and a grid of decoded test digits (row: alpha)."""
    ink = x_train.reshape(len(x_train), -1).mean(1)
    medians = np.array([np.median(ink[train_labels == c]) for c in range(10)])
    direction = latent.attribute_vector(train_z, ink > medians[train_labels])
    flat = lambda images: images.reshape(len(images), -1)  # noqa: E731
    base = judge.predict(flat(apply_batched(model, variables, test_z.astype(np.float32),
                                            method="decode")))
    rows, strips = [], []
    for alpha in alphas:
        decoded = apply_batched(model, variables, (test_z + alpha * direction).astype(np.float32),
                                method="decode")
        rows.append({"alpha": float(alpha), "ink": float(flat(decoded).mean()),
                     "class_kept": float(np.mean(judge.predict(flat(decoded)) == base))})
        strips.append(decoded[:12, :, :, 0])
    return rows, tile(np.stack(strips))


def plot_arithmetic(path: str, grids: dict, alphas) -> None:
    fig, axes = plots.figure((11, 3.6), ncols=len(grids))
    for ax, (name, grid) in zip(np.ravel(axes), grids.items()):
        ax.imshow(grid, cmap="gray", vmin=0, vmax=1)
        ax.set(title=f"{name}: z + alpha * ink vector", xticks=[],
               yticks=4 + 9 * np.arange(len(alphas)), yticklabels=[f"{a:+g}" for a in alphas])
        ax.set_ylabel("alpha")
    plots.save(fig, path, dpi=110)


def main(config, workdir: str) -> dict:
    os.makedirs(workdir, exist_ok=True)
    train_u8, train_labels = digits("train")
    test_u8, test_labels = digits("test")
    x_train, x_test = as_float(train_u8), as_float(test_u8)
    judge = digit_classifier(x_train, train_labels)
    steps_per_epoch = len(train_u8) // 32
    kwargs = dict(image_shape=(8, 8, 1), hidden=tuple(config.hidden), latent_dim=config.latent_dim)
    rng = np.random.default_rng(config.seed)
    results, trained = {}, {}
    for beta in config.betas:
        model = models.create("vae", **kwargs)
        cfg = ae_config(epochs=config.epochs, task="vae", learning_rate=config.learning_rate,
                        beta=float(beta), warmup_steps=config.warmup_epochs * steps_per_epoch)
        cfg.best_metric = ""
        run = train_model(cfg, os.path.join(workdir, f"vae_beta{beta:g}"), model, train_u8, test_u8)
        variables = run.state.variables()
        mean, log_var = apply_batched(model, variables, x_test, method="encode")
        decode = lambda z, v=variables, m=model: m.apply(v, z, method="decode_logits")  # noqa: E731
        bound = jax.jit(lambda key, k: jnp.mean(ael.importance_weighted_bound(
            decode, jnp.asarray(mean), jnp.asarray(log_var), jnp.asarray(x_test), key,
            num_samples=k)), static_argnums=1)
        iw = {k: float(bound(jax.random.key(1), k)) for k in (1, 10, 100)}
        z = rng.standard_normal((config.num_samples, config.latent_dim)).astype(np.float32)
        samples = apply_batched(model, variables, z, method="decode")
        name = f"VAE beta={beta:g}"
        results[name] = {"neg_elbo": run.summary["eval_neg_elbo"], "kl": run.summary["eval_kl"],
                         "psnr": run.summary["eval_psnr"], "iw_bound": iw,
                         "sample_confidence": confidence(judge, samples),
                         "seconds": run.seconds}
        trained[name] = (model, variables, mean, samples)

    ae = models.create("linear_autoencoder", **kwargs)
    run = train_model(ae_config(epochs=config.epochs, learning_rate=config.learning_rate,
                                loss_type="bce"),
                      os.path.join(workdir, "ae"), ae, train_u8, test_u8)
    ae_vars = run.state.variables()
    z_train = apply_batched(ae, ae_vars, x_train, method="encode")
    z = rng.uniform(z_train.min(0), z_train.max(0), (config.num_samples, config.latent_dim))
    ae_samples = apply_batched(ae, ae_vars, z.astype(np.float32), method="decode")
    results["plain AE"] = {"psnr": run.summary["eval_psnr"],
                           "sample_confidence": confidence(judge, ae_samples),
                           "seconds": run.seconds}
    ae_test_z = apply_batched(ae, ae_vars, x_test, method="encode")
    results["test_confidence"] = confidence(judge, x_test)
    cvae_grid = conditional_vae(config, workdir, results, judge, kwargs, train_u8, train_labels,
                                test_u8, test_labels, steps_per_epoch)
    results["judge_test_accuracy"] = float(judge.score(x_test.reshape(len(x_test), -1),
                                                       test_labels))

    # Figures: samples, latent maps, interpolation and traversal.
    first = f"VAE beta={config.betas[0]:g}"
    model, variables, mean, samples = trained[first]
    train_mean, _ = apply_batched(model, variables, x_train, method="encode")
    plot_tsne(os.path.join(workdir, "tsne.png"), {first: mean, "plain AE": ae_test_z},
              test_labels, config.seed)
    ae_train_z = apply_batched(ae, ae_vars, x_train, method="encode")
    results["latent_5nn_accuracy"] = {
        first: knn_accuracy(train_mean, train_labels, mean, test_labels),
        "plain AE": knn_accuracy(ae_train_z, train_labels, ae_test_z, test_labels)}
    results["attribute_arithmetic"], grids = {}, {}
    for name, (m, v, z_train, z_test) in {first: (model, variables, train_mean, mean),
                                          "plain AE": (ae, ae_vars, ae_train_z, ae_test_z)}.items():
        results["attribute_arithmetic"][name], grids[name] = ink_arithmetic(
            m, v, judge, z_train, x_train, train_labels, z_test)
    plot_arithmetic(os.path.join(workdir, "attribute.png"), grids,
                    [r["alpha"] for r in results["attribute_arithmetic"][first]])
    fig, axes = plots.figure((10, 3.4), nrows=3, ncols=12)
    image_row(axes[0], samples[:12], f"{first}\nprior samples")
    image_row(axes[1], ae_samples[:12], "plain AE\nrandom latents")
    image_row(axes[2], x_test[:12], "test images")
    plots.save(fig, os.path.join(workdir, "samples.png"), dpi=110)

    fig, axes = plots.figure((11, 3.6), ncols=3)
    axes = np.ravel(axes)
    for ax, (name, zs) in zip(axes, [(first, mean), ("plain AE", ae_test_z)]):
        center, comps, _ = latent.pca(zs, 2)
        xy = (zs - center) @ comps.T
        points = ax.scatter(xy[:, 0], xy[:, 1], c=test_labels, cmap="tab10", s=6)
        ax.set_title(f"{name}: test latents (PCA)", fontsize=9)
    fig.colorbar(points, ax=axes[1])
    i, j = int(np.flatnonzero(test_labels == 0)[0]), int(np.flatnonzero(test_labels == 7)[0])
    path = latent.interpolate(mean[i], mean[j], 8).astype(np.float32)
    walk = latent.traverse(np.zeros(config.latent_dim), np.eye(config.latent_dim)[0],
                           np.linspace(-2.5, 2.5, 8)).astype(np.float32)
    strip = np.concatenate([np.concatenate(list(apply_batched(model, variables, zz, method="decode")
                                                [..., 0]), 1) for zz in (path, walk)], 0)
    axes[2].imshow(strip, cmap="gray", vmin=0, vmax=1)
    axes[2].set(title="interpolation 0 -> 7 / traversal of z1", xticks=[], yticks=[])
    plots.save(fig, os.path.join(workdir, "latents.png"), dpi=110)

    fig, ax = plots.figure((6.5, 6))
    ax.imshow(cvae_grid, cmap="gray", vmin=0, vmax=1)
    ax.set(title="conditional VAE: row c decodes N(0, I) samples under label c",
           xticks=[], yticks=4 + 9 * np.arange(10), yticklabels=range(10))
    plots.save(fig, os.path.join(workdir, "cvae_samples.png"), dpi=110)

    lines = ["# VAE vs plain autoencoder (digits, 8-D latent)", "",
             f"MLP encoder/decoder 64-{'-'.join(map(str, config.hidden))}-{config.latent_dim}, "
             f"{config.epochs} epochs; VAEs: Bernoulli decoder, KL weight ramped from 0 to beta "
             f"over {config.warmup_epochs} epochs; plain AE: BCE loss.", "",
             "| model | test -ELBO at the mean (nats) | KL | IW bound k=1 / 10 / 100 | PSNR | sample confidence |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, r in results.items():
        if not isinstance(r, dict) or "psnr" not in r:  # the models only
            continue
        iw = r.get("iw_bound")
        lines.append(f"| {name} | {r.get('neg_elbo', float('nan')):.2f} | "
                     f"{r.get('kl', float('nan')):.2f} | "
                     + (f"{iw[1]:.2f} / {iw[10]:.2f} / {iw[100]:.2f}" if iw else "-")
                     + f" | {r['psnr']:.2f} | {r['sample_confidence']:.3f} |")
    lines += ["", "Sample confidence: the mean top-class probability that a logistic-regression "
              f"digit classifier (test accuracy {results['judge_test_accuracy']:.3f}) gives "
              f"{config.num_samples} decoded random latents: VAE latents from its N(0, I) prior, "
              "plain-AE latents uniform in the box its training latents span (its prior is "
              f"unknown); real test digits get {results['test_confidence']:.3f}.", "",
              "The IW bound at k=1 is a one-sample ELBO estimate (a log-likelihood bound, so "
              "negative); the table's -ELBO decodes the posterior mean, as the eval step does.",
              "", "## Conditional VAE", "",
              f"The same VAE conditioned on the digit (one-hot label into encoder and "
              f"decoder), trained through the engine's 'vae' task with conditional=True. "
              f"Prior samples decoded under label c are called c by the judge in "
              f"{100 * results['CVAE']['label_accuracy']:.1f}% of "
              f"{results['CVAE']['samples']} samples.", "",
              "## Latent structure", "",
              "5-nearest-neighbour digit accuracy in the latent space (train latents as the "
              "references, test latents as queries): "
              + ", ".join(f"{k} {v:.3f}" for k, v in results["latent_5nn_accuracy"].items())
              + ". t-SNE (scikit-learn, perplexity 30) of the test latents: tsne.png.", "",
              "## Attribute arithmetic: ink", "",
              "Each model's attribute vector is its mean latent of the training digits with "
              "more ink than their class's median minus that of the digits with less (within "
              "classes, so it is not a class direction). Adding alpha times it to the latents "
              "of test digits and decoding (the VAE encodes little besides the digit's identity "
              "and shape in its few active dimensions, so its ink barely moves):", "",
              "| model | alpha | mean ink of the decoded digits | judge keeps the class |",
              "|---|---:|---:|---:|"]
    for name, rows in results["attribute_arithmetic"].items():
        lines += [f"| {name} | {r['alpha']:+.1f} | {r['ink']:.3f} | {100 * r['class_kept']:.1f}% |"
                  for r in rows]
    lines += ["",
              "Command: `python -m experiments.vae --workdir workdirs/vae`", "",
              "![samples](samples.png)", "", "![latents](latents.png)", "",
              "![conditional VAE samples](cvae_samples.png)", "", "![t-SNE](tsne.png)", "",
              "![attribute arithmetic](attribute.png)"]
    cli.write_report(workdir, lines, results)
    return results


if __name__ == "__main__":
    cli.run(get_config, main, name="vae")
