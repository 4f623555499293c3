"""Anomaly detection by reconstruction error with one digit held out.

Command:  python -m experiments.anomaly_detection --workdir workdirs/anomaly_detection
Expected: an autoencoder trained through the engine on the digits without class 4 reconstructs
          4s worse: ROC-AUC >= 0.90 on the test split (normal: the other classes; anomaly: the
          4s). Thresholds are picked on one half of the test split (the labelled validation
          set the text asks for) and scored on the other half.
Measured: (2026-12-01, defaults) ROC-AUC 0.997 (PCA-8 baseline 0.979; 33 anomalies, 326
          normal). On the test half: 95th percentile precision 0.677 / recall 1.000; mean +
          3 sigma 0.905 / 0.905; ROC-optimal 1.000 / 0.857.
Runtime:  about 1 minute on 2 shared CPU cores (30 s of training).

Threshold rules (the text gives none; the library's additions): the 95th percentile of normal
validation scores, mean + 3 sigma of them, and the ROC-optimal point (max TPR - FPR) of the
labelled validation set. A PCA with the same latent size is the linear baseline.
"""

from __future__ import annotations

import os

import ml_collections
import numpy as np

from experiments._autoencoders import (ae_config, apply_batched, as_float, digits, image_row,
                                       train_model)
from jaxvision import cli, models, plots
from jaxvision.autoencoders import anomaly, latent


def get_config() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(dict(anomaly_class=4, latent_dim=8, hidden=(128, 64),
                                          epochs=30, learning_rate=3e-3, seed=0))


def main(config, workdir: str) -> dict:
    os.makedirs(workdir, exist_ok=True)
    held_out = config.anomaly_class
    train_u8, _ = digits("train", exclude=held_out)
    test_u8, test_labels = digits("test")
    x_test = as_float(test_u8)
    is_anomaly = (test_labels == held_out).astype(int)
    model = models.create("linear_autoencoder", image_shape=(8, 8, 1), hidden=tuple(config.hidden),
                          latent_dim=config.latent_dim)
    cfg = ae_config(epochs=config.epochs, learning_rate=config.learning_rate)
    cfg.seed = config.seed
    normal_test = test_u8[is_anomaly == 0]
    run = train_model(cfg, os.path.join(workdir, "run"), model, train_u8, normal_test)
    recon = apply_batched(model, run.state.variables(), x_test)["reconstruction"]
    scores = anomaly.reconstruction_scores(recon, x_test)
    maps = anomaly.error_maps(recon, x_test)

    # PCA baseline with the same latent size.
    flat_train = as_float(train_u8).reshape(len(train_u8), -1)
    mean, comps, _ = latent.pca(flat_train, config.latent_dim)
    flat = x_test.reshape(len(x_test), -1)
    pca_scores = np.mean(((flat - mean) @ comps.T @ comps + mean - flat) ** 2, axis=1)

    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(scores))
    val, test = order[: len(order) // 2], order[len(order) // 2:]
    normal_val = scores[val][is_anomaly[val] == 0]
    thresholds = {"95th percentile": anomaly.percentile_threshold(normal_val, 95),
                  "mean + 3 sigma": anomaly.mean_std_threshold(normal_val, 3),
                  "ROC-optimal": anomaly.roc_optimal_threshold(is_anomaly[val], scores[val])}
    reports = {name: anomaly.detection_report(is_anomaly[test], scores[test], t)
               for name, t in thresholds.items()}
    results = {"anomaly_class": held_out, "roc_auc": anomaly.roc_auc(is_anomaly, scores),
               "roc_auc_test_half": anomaly.roc_auc(is_anomaly[test], scores[test]),
               "pca_roc_auc": anomaly.roc_auc(is_anomaly, pca_scores),
               "thresholds": reports, "eval_mse_normal": run.summary["eval_mse"],
               "train_seconds": run.seconds}

    fig, axes = plots.figure((9, 3.4), ncols=2)
    axes = np.ravel(axes)
    anomaly.plot_scores(axes[0], is_anomaly[test], scores[test], thresholds)
    axes[0].set_title(f"scores, test half (digit {held_out} = anomaly)", fontsize=9)
    for name, s in (("AE", scores), ("PCA", pca_scores)):
        fpr, tpr = anomaly.roc_curve(is_anomaly, s)[:2]
        axes[1].plot(fpr, tpr, label=f"{name} AUC {anomaly.roc_auc(is_anomaly, s):.3f}")
    axes[1].plot([0, 1], [0, 1], "k:")
    axes[1].set(xlabel="false-positive rate", ylabel="true-positive rate", title="ROC")
    axes[1].legend()
    plots.save(fig, os.path.join(workdir, "anomaly_scores.png"), dpi=110)

    picks = np.r_[np.flatnonzero(is_anomaly)[:6], np.flatnonzero(is_anomaly == 0)[:6]]
    fig, axes = plots.figure((9, 4.2), nrows=3, ncols=len(picks))
    image_row(axes[0], x_test[picks], "input")
    image_row(axes[1], recon[picks], "recon")
    for ax, i in zip(axes[2], picks):
        ax.imshow(maps[i], cmap="inferno", vmin=0, vmax=maps[picks].max())
        ax.set(xticks=[], yticks=[], title=f"{scores[i]:.3f}", )
        ax.title.set_fontsize(7)
    axes[2][0].set_ylabel("error map", fontsize=7)
    plots.save(fig, os.path.join(workdir, "error_maps.png"), dpi=110)

    lines = [f"# Anomaly detection: digit {held_out} held out of training", "",
             f"MLP autoencoder 64-{'-'.join(map(str, config.hidden))}-{config.latent_dim} "
             f"(ReLU, sigmoid output), {config.epochs} epochs on the {len(train_u8)} training "
             f"digits that are not {held_out}; score = per-image reconstruction MSE.", "",
             f"**ROC-AUC {results['roc_auc']:.3f}** on the whole test split "
             f"({is_anomaly.sum()} anomalies, {len(is_anomaly) - is_anomaly.sum()} normal); "
             f"{results['roc_auc_test_half']:.3f} on the half not used for thresholds; PCA-"
             f"{config.latent_dim} baseline {results['pca_roc_auc']:.3f}.", "",
             "Thresholds chosen on the validation half, scored on the test half:", "",
             "| rule | threshold | precision | recall | F1 | FPR |", "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {n} | {r['threshold']:.4f} | {r['precision']:.3f} | {r['recall']:.3f} | "
              f"{r['f1']:.3f} | {r['false_positive_rate']:.3f} |" for n, r in reports.items()]
    lines += ["", "Command: `python -m experiments.anomaly_detection --workdir "
              "workdirs/anomaly_detection`", "", "![scores](anomaly_scores.png)", "",
              "![error maps](error_maps.png)"]
    cli.write_report(workdir, lines, results)
    return results


if __name__ == "__main__":
    cli.run(get_config, main, name="anomaly_detection")
