"""What a deployed model's monitors see when its inputs shift, and how its accuracy falls.

Command:  python -m experiments.robustness_and_monitoring [--workdir workdirs/robustness]
Expected: the quickstart model (small_cnn, digits, 8 epochs) reloaded with ``inference.load``;
          the 359 test digits served in batches of 64, clean and under each corruption of
          ``jaxvision.production`` (Gaussian noise, blur, contrast, JPEG) at severities 1..5.
          For every stream: accuracy, the input-drift monitor's verdict (channel-mean shift in
          baseline standard deviations and PSI, against 1,000 training digits), the entropy
          (bits) of the predicted classes and the mean confidence. Clean batches raise no
          drift alarm; accuracy falls with severity. Measured (seed 0, CPU): clean accuracy
          0.989 with 0 of 6 batches flagged; blur 0.955 -> 0.106 and contrast 0.981 -> 0.106
          from severity 1 to 5, flagged in every batch from severity 1; noise 0.989 -> 0.919
          and JPEG 0.986 -> 0.905, flagged in 17% and 0% of batches at severity 1 and all at
          5. Mean confidence stays near 0.9 where accuracy is at chance (severe blur and
          contrast): confident and wrong, which only the input monitor catches; the predicted
          classes' entropy collapses from 3.31 bits to 0 there. FGSM: 0.989, 0.936, 0.738,
          0.206 at epsilon 0, 0.05, 0.1, 0.2. Writes report.md, results.json and
          corruption_curves.png.
Runtime:  about 1.5 minutes on 2 heavily shared CPU cores. Needs no network.

Production monitoring (input distribution, prediction distribution and entropy,
continuous validation) and robustness testing (corruptions, adversarial examples).
"""

from __future__ import annotations

import os

import ml_collections
import numpy as np

from experiments import quickstart
from jaxvision import cli, inference, monitor, production, train
from jaxvision.data.builders import digits_arrays


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.train = quickstart.get_config()
    config.train.num_epochs = 8
    config.batch = 64  # images per served batch seen by the monitors
    config.baseline_images = 1000
    return config


def stream_stats(predictor, drift, images, labels, batch: int) -> dict:
    """Accuracy, the share of batches flagged as drifted, entropy and confidence."""
    probs = np.asarray(predictor(images))
    flags = [drift.check(images[i:i + batch])["drift"] for i in range(0, len(images), batch)]
    predictions = monitor.PredictionMonitor(probs.shape[1])
    predictions.update(probs)
    summary = predictions.summary()
    return {"accuracy": float((probs.argmax(1) == labels).mean()),
            "drift_rate": float(np.mean(flags)), "entropy_bits": summary["entropy_bits"],
            "mean_confidence": summary["mean_confidence"]}


def plot(workdir: str, streams: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    severities = range(0, 6)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for kind in production.CORRUPTIONS:
        rows = [streams["clean"]] + [streams[f"{kind}_{s}"] for s in range(1, 6)]
        for ax, key in zip(axes, ("accuracy", "drift_rate", "mean_confidence")):
            ax.plot(severities, [r[key] for r in rows], marker="o", label=kind)
    titles = ("Accuracy", "Batches flagged by the drift monitor", "Mean confidence")
    for ax, title in zip(axes, titles):
        ax.set_title(title)
        ax.set_xlabel("corruption severity (0 = clean)")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(os.path.join(workdir, "corruption_curves.png"), dpi=120)
    plt.close(fig)


def main(config, workdir: str) -> dict:
    run_dir = os.path.join(workdir, "train")
    train.train_and_evaluate(config.train, run_dir)
    predictor = inference.load(run_dir)
    images, labels = digits_arrays("test")
    drift = monitor.DriftMonitor.from_images(digits_arrays("train")[0][:config.baseline_images])
    streams = {"clean": stream_stats(predictor, drift, images, labels, config.batch)}
    for kind in production.CORRUPTIONS:
        for severity in range(1, 6):
            corrupted = production.corrupt(images, kind, severity)
            streams[f"{kind}_{severity}"] = stream_stats(predictor, drift, corrupted, labels,
                                                         config.batch)
    plot(workdir, streams)
    checks = {"edge_cases": production.edge_cases(predictor),
              "consistency": production.consistency(predictor, images),
              "fgsm": production.fgsm_robustness(predictor, images, labels,
                                                 (0.0, 0.05, 0.1, 0.2))}
    table = ["| stream | accuracy | batches flagged | entropy (bits) | mean confidence |",
             "|---|---:|---:|---:|---:|"]
    table += [f"| {name} | {s['accuracy']:.4f} | {s['drift_rate']:.2f} | "
              f"{s['entropy_bits']:.3f} | {s['mean_confidence']:.3f} |"
              for name, s in streams.items()]
    results = {"streams": streams, "checks": checks}
    cli.write_report(workdir, [
        "# Robustness and monitoring of the quickstart model", "",
        f"{config.train.model} on digits, {len(labels)} test digits served in batches of "
        f"{config.batch}. The drift monitor's baseline: {config.baseline_images} training "
        "digits (a batch is flagged when a channel mean moves more than 3 standard errors or "
        "the pixel histogram's PSI exceeds 0.2). Entropy is of the predicted classes (ten "
        "balanced classes: at most log2 10 = 3.32 bits).", "", *table, "",
        f"- edge cases (finite probabilities summing to 1): {checks['edge_cases']}",
        f"- consistency (top-1 unchanged): flip {checks['consistency']['flip']:.3f}, "
        f"resize {checks['consistency']['resize']:.3f} (digits are not flip-symmetric, and "
        "8x8 digits halved to 4x4 and back lose their strokes)",
        "- FGSM accuracy by epsilon: " + ", ".join(f"{e:g}: {a:.3f}"
                                                  for e, a in checks["fgsm"].items()),
        "", "![corruption curves](corruption_curves.png)",
    ], results)
    return results


if __name__ == "__main__":
    cli.run(get_config, main, name="robustness_and_monitoring")
