"""Learning-rate schedules under one budget: constant, step, exponential, cosine, warmup+cosine,
cosine with warm restarts (SGDR), one-cycle and cyclic; plus a reduce-on-plateau trace.

Command:  python -m experiments.lr_schedules --workdir workdirs/lr_schedules
          (--config.variants=constant,cosine for a subset)
Expected: schedules.png (every schedule over the 330 steps), loss_curves.png, and report.md with
          the final test accuracy per schedule. Measured on digits (small_cnn, SGD momentum 0.9,
          peak LR 0.05, 15 epochs, seed 0): every schedule reaches 98.6-99.2% test accuracy
          (constant and cosine 99.2%; step, SGDR and cyclic 98.9%; exponential, warmup+cosine and
          one-cycle 98.6%); warmup+cosine has the lowest test loss (0.066 vs 0.068 constant).
          Digits is too easy for the schedules to separate by more than the 0.28% one test image
          is worth; the figures show the shapes (SGDR restarts at steps 66 and 198).
Runtime:  about 2 minutes on 2 CPU cores (8 runs). Needs no network.
"""

from __future__ import annotations

import os

import ml_collections
import numpy as np

from experiments import _science as sci
from jaxvision.optim import build_schedule
from jaxvision.optim import schedules as S


def schedule_configs(peak: float, total_steps: int) -> dict[str, dict]:
    return {
        "constant": dict(schedule="constant"),
        "step": dict(schedule="step", step_size=total_steps // 3, gamma=0.1),
        "exponential": dict(schedule="exponential", gamma=float(0.01 ** (1 / total_steps))),
        "cosine": dict(schedule="cosine"),
        "warmup_cosine": dict(schedule="cosine", warmup_steps=total_steps // 10),
        "cosine_restarts": dict(schedule="cosine_restarts", first_cycle_steps=total_steps // 5, cycle_mult=2),
        "one_cycle": dict(schedule="one_cycle", pct_start=0.3),
        "cyclic": dict(schedule="cyclic", max_learning_rate=peak, step_size_up=total_steps // 6,
                       learning_rate_override=peak / 10),
    }


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.variants = "constant,step,exponential,cosine,warmup_cosine,cosine_restarts,one_cycle,cyclic"
    config.epochs = 15
    config.peak_learning_rate = 0.05
    config.seed = 0
    return config


def main(config, workdir: str) -> dict:
    os.makedirs(workdir, exist_ok=True)
    datasets = sci.digits_datasets(sci.engine_config(epochs=config.epochs, seed=config.seed))
    steps_per_epoch = datasets.train.steps_per_epoch
    total_steps = config.epochs * steps_per_epoch
    all_configs = schedule_configs(config.peak_learning_rate, total_steps)
    names = config.variants.split(",")
    unknown = [n for n in names if n not in all_configs]
    if unknown:
        raise ValueError(f"unknown schedules {unknown}; choose from {', '.join(all_configs)}")
    opt_configs = {}
    for name in names:
        extra = dict(all_configs[name])
        lr = extra.pop("learning_rate_override", config.peak_learning_rate)
        opt_configs[name] = {"name": "momentum", "momentum": 0.9, "learning_rate": lr, "warmup_steps": 0, **extra}
    schedules = {n: build_schedule(c, total_steps) for n, c in opt_configs.items()}

    rows, loss_curves, eval_losses = [], {}, {}
    for name in names:
        cfg = sci.engine_config(epochs=config.epochs, seed=config.seed, optimizer=opt_configs[name],
                                widths=(16, 32), hidden=64, dropout_rate=0.0)
        summary, records, _, _ = sci.run_engine(cfg, os.path.join(workdir, name), datasets=datasets)
        loss_curves[name] = sci.series(records, "train", "loss")
        eval_losses[name] = sci.series(records, "eval", "loss")[1]
        rows.append({"schedule": name, "final_lr": float(schedules[name](total_steps - 1)),
                     "final_train_loss": float(loss_curves[name][1][-1]), "test_loss": summary["eval_loss"],
                     "test_accuracy": summary["eval_accuracy"]})

    # Reduce-on-plateau is driven by a metric: replay the first run's per-epoch eval losses.
    plateau_lrs = []
    state = S.reduce_on_plateau_init(config.peak_learning_rate)
    for loss in eval_losses[names[0]]:
        plateau_lrs += [float(state.lr)] * steps_per_epoch
        state = S.reduce_on_plateau_update(state, loss, factor=0.5, patience=2)
    S.plot_schedules(schedules, total_steps=total_steps, path=os.path.join(workdir, "schedules.png"),
                     title=f"schedules over {total_steps} steps")
    sci.plot_lines({**{n: (np.arange(total_steps), S.schedule_values(s, total_steps=total_steps))
                       for n, s in schedules.items()},
                    f"plateau (replay of {names[0]})": (np.arange(len(plateau_lrs)), plateau_lrs)},
                   path=os.path.join(workdir, "schedules_log.png"), xlabel="step", ylabel="learning rate",
                   title="schedules (log scale)", log_y=True)
    sci.plot_lines(loss_curves, path=os.path.join(workdir, "loss_curves.png"), xlabel="step",
                   ylabel="train loss", log_y=True, title="train loss per schedule")
    sci.write_report(workdir, "Learning-rate schedules", [
        f"digits, small_cnn, SGD momentum 0.9, peak LR {config.peak_learning_rate}, {config.epochs} epochs "
        f"({total_steps} steps). Schedules follow torch.optim.lr_scheduler step for step "
        "(tests/test_schedules.py).",
        sci.markdown_table(rows, ["schedule", "final_lr", "final_train_loss", "test_loss", "test_accuracy"]),
        "![schedules](schedules.png)\n\n![schedules log](schedules_log.png)\n\n![loss](loss_curves.png)",
        "The plateau trace halves the LR after 2 epochs without a relative improvement of 1e-4 in the "
        f"eval loss of the `{names[0]}` run (`jaxvision.optim.schedules.reduce_on_plateau_update`).",
    ])
    return {r["schedule"]: r["test_accuracy"] for r in rows}


if __name__ == "__main__":
    from jaxvision import cli

    cli.run(get_config, main, name="lr_schedules")
