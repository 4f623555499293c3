"""Optimizers on the same model and budget: SGD, momentum, Nesterov, AdaGrad, RMSprop, Adam, AdamW.

Command:  python -m experiments.optimizers --workdir workdirs/optimizers
          (--config.variants=sgd,adam to run a subset; --config.epochs=30 for longer)
Expected: report.md with one row per optimizer and loss_curves.png / accuracy_curves.png. On the
          engine's digits split (1438 train / 359 test, small_cnn, 15 epochs, batch 64, seed 0)
          measured: test accuracy SGD 98.1%, momentum 99.2%, Nesterov 99.2%, AdaGrad 98.9%,
          RMSprop 98.3%, Adam 98.6%, AdamW 98.6%; plain SGD ends with the highest train loss
          (0.034), momentum the lowest (5e-4). Learning rates are per-method typical values (not
          tuned), and with 359 test images one example is 0.28%, so rankings within ~1% are noise.
Runtime:  about 1.5 minutes on 2 CPU cores (7 runs of ~10 s). Needs no network.
"""

from __future__ import annotations

import os

import ml_collections

from experiments import _science as sci

OPTIMIZERS = {
    "sgd": dict(name="sgd", learning_rate=0.05),
    "momentum": dict(name="momentum", learning_rate=0.05, momentum=0.9),
    "nesterov": dict(name="nesterov", learning_rate=0.05, momentum=0.9),
    "adagrad": dict(name="adagrad", learning_rate=0.05),
    "rmsprop": dict(name="rmsprop", learning_rate=1e-3, decay=0.9),
    "adam": dict(name="adam", learning_rate=1e-3),
    "adamw": dict(name="adamw", learning_rate=1e-3, weight_decay=1e-2),
}


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.variants = ",".join(OPTIMIZERS)
    config.epochs = 15
    config.seed = 0
    config.schedule = "constant"
    config.model_widths = (16, 32)
    config.model_hidden = 64
    return config


def main(config, workdir: str) -> dict:
    os.makedirs(workdir, exist_ok=True)
    rows, loss_curves, acc_curves = [], {}, {}
    for name in config.variants.split(","):
        if name not in OPTIMIZERS:
            raise ValueError(f"unknown variant {name!r}; choose from {', '.join(OPTIMIZERS)}")
        cfg = sci.engine_config(epochs=config.epochs, seed=config.seed, widths=tuple(config.model_widths),
                                hidden=config.model_hidden, dropout_rate=0.0,
                                optimizer=dict(OPTIMIZERS[name], schedule=config.schedule, warmup_steps=0))
        summary, records, seconds, _ = sci.run_engine(cfg, os.path.join(workdir, name))
        loss_curves[name] = sci.series(records, "train", "loss")
        acc_curves[name] = sci.series(records, "eval", "accuracy")
        train_loss = loss_curves[name][1][-1]
        rows.append({"optimizer": name, "learning_rate": OPTIMIZERS[name]["learning_rate"],
                     "final_train_loss": float(train_loss), "test_loss": summary["eval_loss"],
                     "test_accuracy": summary["eval_accuracy"], "seconds": f"{seconds:.1f}"})
    sci.plot_lines(loss_curves, path=os.path.join(workdir, "loss_curves.png"), xlabel="step",
                   ylabel="train loss", title="train loss, same model and budget", log_y=True)
    sci.plot_lines(acc_curves, path=os.path.join(workdir, "accuracy_curves.png"), xlabel="step",
                   ylabel="test accuracy", title="test accuracy per epoch")
    sci.write_report(workdir, "Optimizers on the same model and budget", [
        f"digits, small_cnn widths {tuple(config.model_widths)}, {config.epochs} epochs, batch 64, "
        f"schedule {config.schedule}, seed {config.seed}.",
        sci.markdown_table(rows, ["optimizer", "learning_rate", "final_train_loss", "test_loss",
                                  "test_accuracy", "seconds"]),
        "![loss](loss_curves.png)\n\n![accuracy](accuracy_curves.png)",
    ])
    return {r["optimizer"]: r["test_accuracy"] for r in rows}


if __name__ == "__main__":
    from jaxvision import cli

    cli.run(get_config, main, name="optimizers")
