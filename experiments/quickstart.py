"""Quickstart: a small CNN (BatchNorm, dropout) on the embedded ``digits`` data set.

Command:  python -m experiments.quickstart [--workdir workdirs/quickstart] [--config.num_epochs=20]
Expected: test accuracy >= 97% (typically about 99%), checkpoints, metrics.jsonl, TensorBoard
          events and curves.png in the workdir.
Runtime:  about 30 s on 2 CPU cores, compilation included. Needs no network.
"""

from __future__ import annotations

from jaxvision import train


def get_config():
    config = train.default_config()
    config.dataset = "digits"
    config.model = "small_cnn"
    config.batch_size = 64
    config.num_epochs = 20
    config.optimizer.name = "adamw"
    config.optimizer.learning_rate = 3e-3
    config.optimizer.schedule = "cosine"
    config.log_every_steps = 20
    return config


def main(config, workdir: str) -> dict:
    return train.train_and_evaluate(config, workdir)


if __name__ == "__main__":
    from jaxvision import cli

    cli.run(get_config, main, name="quickstart")
