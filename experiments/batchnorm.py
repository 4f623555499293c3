"""BatchNorm: train vs eval mode, momentum and epsilon options, and the higher-LR claim.

Command:  python -m experiments.batchnorm --workdir workdirs/batchnorm
Expected: report.md with
          (1) the normalisation of a worked vector: x = [1, 2, 3, 4] -> [-1.3416, -0.4472,
              0.4472, 1.3416] with epsilon 1e-5, and how epsilon 1e-1 shrinks it;
          (2) train vs eval mode: at initialisation the running statistics are (0, 1), so eval-mode
              logits differ from train-mode logits; after 4 epochs (88 steps) with Flax momentum
              0.9 (PyTorch 0.1) eval mode gives 95.5% vs 95.3% with batch statistics, while with
              0.99 (PyTorch 0.01) the running averages still lag: eval mode gives 47% (measured);
          (3) test accuracy of a 6-layer plain CNN with and without BN over learning rates 0.01-0.5
              (6 epochs): without BN 57.9% at lr 0.01, 55.4% at 0.05 and chance (9.2%, 8.9%) at
              0.2 and 0.5; with BN 86.4%, 96.1%, 93.6%, 96.4% at lr 0.01, 0.05, 0.2, 0.5
              (BatchNorm's claim: it allows higher learning rates).
Runtime:  about 2 minutes on 2 CPU cores. Needs no network.
"""

from __future__ import annotations

import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from experiments import _science as sci
from jaxvision import train
from jaxvision.data.builders import digits_arrays


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.momenta = (0.9, 0.99)
    config.epsilons = (1e-5, 1e-1)
    config.mode_epochs = 4
    config.learning_rates = (0.01, 0.05, 0.2, 0.5)
    config.lr_epochs = 6
    config.depth = 6
    config.seed = 0
    return config


def normalisation_vector(epsilon: float) -> list[float]:
    bn = nn.BatchNorm(use_running_average=False, epsilon=epsilon)
    x = jnp.array([1.0, 2.0, 3.0, 4.0]).reshape(4, 1)
    variables = bn.init(jax.random.key(0), x)
    y, _ = bn.apply(variables, x, mutable=["batch_stats"])
    return [round(float(v), 6) for v in y.ravel()]


def sgd(lr: float) -> dict:
    return dict(name="momentum", momentum=0.9, learning_rate=lr, schedule="constant")


def mode_gap(model, variables, images, labels) -> tuple[float, float]:
    """Accuracy with batch statistics (train mode) on the whole test set as one batch, and the
    largest logit difference from eval mode (running statistics)."""
    eval_logits = model.apply(variables, images, train=False)
    train_logits, _ = model.apply(variables, images, train=True, mutable=["batch_stats"])
    return (float(jnp.mean(train_logits.argmax(-1) == labels)),
            float(jnp.abs(eval_logits - train_logits).max()))


def main(config, workdir: str) -> dict:
    os.makedirs(workdir, exist_ok=True)
    datasets = sci.digits_datasets(sci.engine_config(epochs=1, seed=config.seed))
    x_test, y_test = digits_arrays("test")
    x_test, y_test = jnp.asarray(x_test, jnp.float32) / 255.0, jnp.asarray(y_test)
    sections = ["## 1. The normalisation: (x - mean) / sqrt(var + epsilon)",
                sci.markdown_table([{"epsilon": eps, "BN([1, 2, 3, 4])": normalisation_vector(eps)}
                                    for eps in (1e-5, *config.epsilons[1:])], ["epsilon", "BN([1, 2, 3, 4])"])]

    # 2. Train vs eval mode, per BN momentum and epsilon.
    rows, curves = [], {}
    for momentum in config.momenta:
        for eps in config.epsilons:
            model = sci.PlainCNN(depth=3, width=16, batch_norm=True, bn_momentum=momentum, bn_epsilon=eps)
            init = train.create_train_state(model, optax.identity(), seed=config.seed,
                                            input_shape=(1, *datasets.image_shape))
            gaps = []

            def probe(step, state, eval_metrics, model=model, gaps=gaps):
                gaps.append((eval_metrics["eval_accuracy"], *mode_gap(model, state.variables(), x_test, y_test)))

            cfg = sci.engine_config(epochs=config.mode_epochs, seed=config.seed, optimizer=sgd(0.05))
            sci.run_engine(cfg, os.path.join(workdir, f"mode_m{momentum:g}_eps{eps:g}"), datasets=datasets,
                           model=model, callbacks=[probe])
            label = f"momentum {momentum} (torch {1 - momentum:.2g}), eps {eps:g}"
            curves[label] = (np.arange(1, len(gaps) + 1), [g[2] for g in gaps])
            rows.append({"flax_momentum": momentum, "epsilon": eps,
                         "init_max_logit_gap": mode_gap(model, init.variables(), x_test, y_test)[1],
                         "final_max_logit_gap": gaps[-1][2], "test_acc_eval_mode": gaps[-1][0],
                         "test_acc_batch_stats": gaps[-1][1]})
    sci.plot_lines(curves, path=os.path.join(workdir, "running_stats.png"), xlabel="epoch",
                   ylabel="max |eval logits - train-mode logits|", title="running vs batch statistics", log_y=True)
    sections += ["## 2. Train vs eval mode",
                 "`train=True` normalises with the batch's statistics and updates the running averages "
                 "(`mutable=['batch_stats']`); `train=False` uses the running averages. Flax momentum m equals "
                 "PyTorch momentum 1 - m. Columns: the largest logit difference between the two modes on the "
                 f"test set at init and after {config.mode_epochs} epochs, and test accuracy in each mode "
                 "(eval mode: the engine's evaluation; batch statistics: the whole test set as one batch).",
                 sci.markdown_table(rows, ["flax_momentum", "epsilon", "init_max_logit_gap", "final_max_logit_gap",
                                           "test_acc_eval_mode", "test_acc_batch_stats"]),
                 "![running stats](running_stats.png)"]

    # 3. Learning-rate tolerance with and without BN.
    lr_rows = []
    for bn in (False, True):
        for lr in config.learning_rates:
            cfg = sci.engine_config(epochs=config.lr_epochs, seed=config.seed, optimizer=sgd(lr))
            cfg.log_every_steps = datasets.train.steps_per_epoch  # one train record per epoch
            run = sci.run_engine(cfg, os.path.join(workdir, f"lr{lr:g}_{'bn' if bn else 'plain'}"),
                                 datasets=datasets, model=sci.PlainCNN(depth=config.depth, width=16, batch_norm=bn))
            lr_rows.append({"batch_norm": bn, "learning_rate": lr,
                            "final_train_loss": float(sci.series(run.records, "train", "loss")[1][-1]),
                            "test_accuracy": run.summary["eval_accuracy"]})
    sections += ["## 3. Higher learning rates with BatchNorm",
                 f"Plain CNN, {config.depth} conv layers of 16 channels (He init), SGD momentum 0.9, "
                 f"{config.lr_epochs} epochs.",
                 sci.markdown_table(lr_rows, ["batch_norm", "learning_rate", "final_train_loss", "test_accuracy"])]
    sci.write_report(workdir, "BatchNorm", sections)
    return {f"bn={r['batch_norm']},lr={r['learning_rate']}": r["test_accuracy"] for r in lr_rows}


if __name__ == "__main__":
    from jaxvision import cli

    cli.run(get_config, main, name="batchnorm")
