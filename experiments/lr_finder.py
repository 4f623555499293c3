"""LR range test (LR finder) and a one-cycle run at the suggested learning rate.

Command:  python -m experiments.lr_finder --workdir workdirs/lr_finder
Expected: lr_finder.png (loss against LR from 1e-7 to 10 over 100 steps, multiplier 10**(8/99) =
          1.2045 per step) with the suggested LR marked, and report.md comparing one-cycle
          runs (SGD momentum 0.9, 8 epochs on digits) at max_lr = suggestion / 10, suggestion and
          suggestion x 10. The range test runs on the engine's pieces (the model as the engine
          initialises it, the classification task's loss, the digits training stream). Measured
          (seed 0): suggested LR 0.038; one-cycle test accuracy 94.2% at 0.0038, 98.6% at 0.038
          and 96.9% at 0.38, past the range test's loss minimum (~0.2; it blows up above ~0.5).
Runtime:  about 1.2 minutes on 2 CPU cores. Needs no network.
"""

from __future__ import annotations

import os

import ml_collections

from experiments import _science as sci
from jaxvision import models
from jaxvision.tasks import ClassificationTask
from jaxvision.train import lr_finder

MODEL = dict(widths=(16, 32), hidden=64, dropout_rate=0.0)


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.start_lr = 1e-7
    config.end_lr = 10.0
    config.num_steps = 100
    config.epochs = 8
    config.factors = (0.1, 1.0, 10.0)
    config.seed = 0
    return config


def main(config, workdir: str) -> dict:
    os.makedirs(workdir, exist_ok=True)
    base = sci.engine_config(epochs=config.epochs, seed=config.seed, **MODEL)
    datasets = sci.digits_datasets(base)
    model = models.create(base.model, num_classes=datasets.num_classes, **base.model_kwargs)
    result = lr_finder.engine_range_test(model, ClassificationTask(), datasets.train, seed=config.seed,
                                         start_lr=config.start_lr, end_lr=config.end_lr,
                                         num_steps=config.num_steps, momentum=0.9)
    lr_finder.plot_lr_finder(result, path=os.path.join(workdir, "lr_finder.png"))
    suggested = result["suggested_lr"]

    rows = []
    for factor in config.factors:
        cfg = sci.engine_config(epochs=config.epochs, seed=config.seed, optimizer=dict(
            name="momentum", momentum=0.9, learning_rate=suggested * factor, schedule="one_cycle",
            warmup_steps=0), **MODEL)
        cfg.nonfinite = "skip"
        summary = sci.run_engine(cfg, os.path.join(workdir, f"one_cycle_x{factor:g}"), datasets=datasets).summary
        rows.append({"max_lr": suggested * factor, "factor": factor, "test_loss": summary["eval_loss"],
                     "test_accuracy": summary["eval_accuracy"], "skipped_steps": summary["skipped_steps"]})
    sci.write_report(workdir, "LR range test", [
        f"small_cnn on digits, SGD momentum 0.9, LR from {config.start_lr:g} to {config.end_lr:g} over "
        f"{config.num_steps} steps (x{(config.end_lr / config.start_lr) ** (1 / (config.num_steps - 1)):.6f} per "
        f"step); the test stopped after {len(result['lrs'])} steps. Suggested LR (steepest descent of the "
        f"smoothed loss): **{suggested:.3g}**.",
        "![lr finder](lr_finder.png)",
        f"One-cycle runs ({config.epochs} epochs) with max_lr around the suggestion:",
        sci.markdown_table(rows, ["factor", "max_lr", "test_loss", "test_accuracy", "skipped_steps"]),
    ])
    return {"suggested_lr": suggested, **{f"x{r['factor']:g}": r["test_accuracy"] for r in rows}}


if __name__ == "__main__":
    from jaxvision import cli

    cli.run(get_config, main, name="lr_finder")
