"""Depth: plain networks train worse as they get deeper, residual networks do not.

Command:  python -m experiments.resnet_vs_plain_depth --workdir workdirs/resnet_vs_plain_depth
          (smoke run: ``--config.depths=8 --config.seeds=1 --config.epochs=1``)
Expected: He et al.'s degradation problem: the plain (no-shortcut) 56-layer net reaches a higher
          training loss and lower accuracy than the plain 20-layer one, though it could copy it
          and add identities; with shortcuts the 56-layer net is at least as good as the 20-layer.
Measured: 2026-12-02, default config (widths 8/16/32, 10 epochs = 220 steps of 64, 3 seeds,
          mean ± std; loss = last epoch's mean training loss, accuracies in eval mode):
          net          train loss       train acc        test acc
          plain-20     0.0314 ± 0.0020  0.9975 ± 0.0003  0.9786 ± 0.0069
          plain-32     0.5882 ± 0.0103  0.8475 ± 0.0031  0.8189 ± 0.0149
          plain-56     1.7084 ± 0.1868  0.3792 ± 0.0666  0.3519 ± 0.0618
          residual-20  0.0048 ± 0.0017  0.9998 ± 0.0003  0.9879 ± 0.0013
          residual-32  0.0040 ± 0.0008  0.9998 ± 0.0003  0.9879 ± 0.0053
          residual-56  0.0090 ± 0.0025  0.9995 ± 0.0003  0.9824 ± 0.0013
          The degradation shows clearly: plain-56 ends at 54x plain-20's training loss (+1.68)
          and 63 points lower test accuracy, plain-32 in between. With shortcuts depth costs
          almost nothing, but at this short budget ResNet-56 is not better than ResNet-20: its
          training loss is 0.004 higher and its test accuracy 0.6 points lower, within about
          two standard deviations. He et al.'s deeper-is-better needs their 64k iterations (here
          220); plain-56 was still descending slowly when the schedule ended.
Runtime:  68 min for the 18 runs (07:29-08:37, compilation included: about 4 min per new
          56-layer program, seeds 1-2 read it from the on-disk cache) on the shared 2-core
          machine at load 11-15; reading the finished runs back for the report: 2 min.

Data and models: the engine's ``digits`` split (1,437 training and 360 test images, 8x8), the
CIFAR ResNets (``cifar_resnet{20,32,56}``: 3x3 stem then three stages of basic blocks, option-A
shortcuts) and their plain twins (``plain_resnet*``, the same layers and parameters without the
shortcuts), narrowed to ``widths`` so that 3 seeds x 6 nets fit on two CPU cores. SGD with
momentum and a cosine schedule, as He et al. but shorter; everything through
``train.train_and_evaluate``. Training loss is the engine's mean over each epoch (train mode);
train/test accuracy are the final model's in eval mode. Runs already finished in the workdir
under the same config are read back instead of retrained, so an interrupted run continues.
"""

from __future__ import annotations

import json
import os

import ml_collections
import numpy as np

from experiments import _science as sci
from jaxvision import cli, inference, plots, train
from jaxvision.data.builders import digits_arrays

KINDS = {"plain": "plain_resnet", "residual": "cifar_resnet"}
COLORS = {"plain": "tab:red", "residual": "tab:blue"}


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.depths = (20, 32, 56)
    config.seeds = 3  # seeds 0 .. seeds-1
    config.widths = (8, 16, 32)  # He et al.: 16, 32, 64
    config.epochs = 10
    config.batch_size = 64
    config.learning_rate = 0.1
    config.warmup_steps = 50
    config.weight_decay = 1e-4
    return config


def run_or_reuse(cfg, run_dir: str, *, model=None) -> tuple[dict, list[dict], float]:
    """The engine's summary, metrics records and the final model's train accuracy (eval mode)
    of the run of ``cfg`` in ``run_dir``: trained through the engine, unless ``run_dir`` already
    holds that run finished (same ``config.json``, a ``summary.json``), which is then read back."""
    saved = os.path.join(run_dir, "config.json")
    done = (os.path.exists(os.path.join(run_dir, "summary.json")) and os.path.exists(saved)
            and json.load(open(saved)) == json.loads(json.dumps(cfg.to_dict())))
    if not done:
        sci.run_engine(cfg, run_dir, model=model)
    images, labels = digits_arrays("train")
    probabilities = inference.load(run_dir, model=model)(images)
    summary = json.load(open(os.path.join(run_dir, "summary.json")))
    return summary, train.read_metrics(run_dir), float(np.mean(probabilities.argmax(-1) == labels))


def train_one(config, kind: str, depth: int, seed: int, workdir: str) -> dict:
    cfg = sci.engine_config(epochs=config.epochs, seed=seed, optimizer=dict(
        name="momentum", momentum=0.9, learning_rate=config.learning_rate, schedule="cosine",
        warmup_steps=config.warmup_steps, weight_decay=config.weight_decay))
    registered = depth in (20, 32, 56)  # other 6n+2 depths: the same class, depth overridden
    cfg.model = f"{KINDS[kind]}{depth if registered else 20}"
    cfg.model_kwargs = dict(widths=tuple(config.widths), conv="xla",
                            **({} if registered else dict(depth=depth)))
    cfg.batch_size = config.batch_size
    cfg.log_every_steps = len(digits_arrays("train")[1]) // config.batch_size  # once an epoch
    summary, records, train_accuracy = run_or_reuse(
        cfg, os.path.join(workdir, f"{kind}{depth}_seed{seed}"))
    losses = sci.series(records, "train", "loss")[1]
    return {"kind": kind, "depth": depth, "seed": seed, "train_loss": [float(v) for v in losses],
            "final_train_loss": float(losses[-1]), "train_accuracy": train_accuracy,
            "test_accuracy": float(summary["eval_accuracy"])}


def summarise(runs: list[dict]) -> dict:
    """``{kind: {depth: {metric: [mean, std]}}}`` over seeds (std with ddof 0)."""
    out: dict = {}
    for r in runs:
        out.setdefault(r["kind"], {}).setdefault(str(r["depth"]), []).append(r)
    return {kind: {depth: {m: [float(np.mean([r[m] for r in rs])), float(np.std([r[m] for r in rs]))]
                           for m in ("final_train_loss", "train_accuracy", "test_accuracy")}
                   for depth, rs in by_depth.items()}
            for kind, by_depth in out.items()}


def plot_curves(path: str, runs: list[dict], depths) -> None:
    """One panel per depth: training loss per epoch, mean over seeds, band = min..max."""
    fig, axes = plots.figure((4.2 * len(depths), 3.4), ncols=len(depths))
    axes = np.atleast_1d(axes).ravel()
    for ax, depth in zip(axes, depths):
        for kind in KINDS:
            curves = np.array([r["train_loss"] for r in runs if r["kind"] == kind and r["depth"] == depth])
            epochs = np.arange(1, curves.shape[1] + 1)
            ax.plot(epochs, curves.mean(0), color=COLORS[kind], label=f"{kind}-{depth}")
            ax.fill_between(epochs, curves.min(0), curves.max(0), color=COLORS[kind], alpha=0.2)
        ax.set(title=f"{depth} layers", xlabel="epoch", ylabel="training loss", yscale="log")
        ax.grid(alpha=0.3)
        ax.legend()
    plots.save(fig, path)


def plot_summary(path: str, summary: dict, depths) -> None:
    """Final training loss and test accuracy against depth, mean +- std over seeds."""
    fig, axes = plots.figure((9, 3.4), ncols=2)
    loss_ax, acc_ax = axes.flat
    for kind in KINDS:
        for ax, metric in ((loss_ax, "final_train_loss"), (acc_ax, "test_accuracy")):
            stats = np.array([summary[kind][str(d)][metric] for d in depths])
            ax.errorbar(depths, stats[:, 0], yerr=stats[:, 1], marker="o", capsize=4,
                        color=COLORS[kind], label=kind)
    loss_ax.set(xlabel="depth (layers)", ylabel="final training loss (last epoch)", yscale="log")
    acc_ax.set(xlabel="depth (layers)", ylabel="test accuracy")
    for ax in (loss_ax, acc_ax):
        ax.set_xticks(list(depths))
        ax.grid(alpha=0.3)
        ax.legend()
    plots.save(fig, path)


def main(config, workdir: str) -> dict:
    os.makedirs(workdir, exist_ok=True)
    sci.cache_compilations(workdir)
    depths = tuple(config.depths)
    runs = [train_one(config, kind, depth, seed, workdir)
            for seed in range(config.seeds) for depth in depths for kind in KINDS]
    summary = summarise(runs)
    plot_curves(os.path.join(workdir, "depth.png"), runs, depths)
    plot_summary(os.path.join(workdir, "summary.png"), summary, depths)
    shallow, deep = str(min(depths)), str(max(depths))
    claim = {kind: {"deep_minus_shallow_train_loss": summary[kind][deep]["final_train_loss"][0]
                    - summary[kind][shallow]["final_train_loss"][0],
                    "deep_minus_shallow_test_accuracy": summary[kind][deep]["test_accuracy"][0]
                    - summary[kind][shallow]["test_accuracy"][0]} for kind in KINDS}
    rows = [{"net": f"{kind}-{depth}",
             **{m: f"{s[0]:.4f} ± {s[1]:.4f}" for m, s in summary[kind][str(depth)].items()}}
            for depth in depths for kind in KINDS]
    sections = [
        f"digits (8x8), CIFAR ResNet layout at widths {tuple(config.widths)}, {config.epochs} epochs "
        f"of batch {config.batch_size}, SGD momentum 0.9, lr {config.learning_rate} cosine with "
        f"{config.warmup_steps} warmup steps, weight decay {config.weight_decay}; "
        f"mean ± std over {config.seeds} seeds. Training loss: the last epoch's mean (train mode); "
        "accuracies: the final model in eval mode.",
        sci.markdown_table(rows, ["net", "final_train_loss", "train_accuracy", "test_accuracy"]),
        f"Deepest minus shallowest ({deep} vs {shallow} layers), training loss: plain "
        f"{claim['plain']['deep_minus_shallow_train_loss']:+.4f}, residual "
        f"{claim['residual']['deep_minus_shallow_train_loss']:+.4f}; test accuracy: plain "
        f"{claim['plain']['deep_minus_shallow_test_accuracy']:+.4f}, residual "
        f"{claim['residual']['deep_minus_shallow_test_accuracy']:+.4f}.",
        "![training curves](depth.png)", "![summary](summary.png)"]
    cli.write_report(workdir, ["# Plain vs residual networks across depth", "", "\n\n".join(sections)],
                     {"config": config.to_dict(), "runs": runs, "summary": summary, "claim": claim})
    return claim


if __name__ == "__main__":
    cli.run(get_config, main, name="resnet_vs_plain_depth")
