"""Recipe: a small modern CNN on MNIST (3x3 convolutions with BatchNorm, max-pooling, dropout,
AdamW with one-cycle, random translation): the target is >= 99.4% test accuracy in <= 5
minutes on 2 CPU cores.

Command:  python -m experiments.mnist_modern_cnn --workdir workdirs/mnist_modern_cnn
Expected: >= 99.4% test accuracy (a two-stage 32-64 network with BatchNorm and light
          augmentation typically reaches 99.4-99.6%). Protocol: batch 128, AdamW 3e-3 on a
          one-cycle schedule, weight decay 5e-4, 6 epochs (2,814 steps), random translation
          by up to 2 pixels on device.
Runtime:  not measured, for the reason ``mnist_lenet5`` gives: no package on the reachable
          registries ships the MNIST files, so it needs MNIST prepared in TFDS. The same
          network on the embedded 8x8 ``digits`` is ``python -m experiments.quickstart``
          (99.4% in 15-30 s).
"""

from __future__ import annotations

from jaxvision import train


def get_config():
    config = train.default_config()
    config.dataset = "mnist"
    config.model = "small_cnn"
    config.batch_size = 128
    config.eval_batch_size = 1000
    config.num_epochs = 6
    config.optimizer.name = "adamw"
    config.optimizer.learning_rate = 3e-3
    config.optimizer.weight_decay = 5e-4
    config.optimizer.schedule = "one_cycle"
    config.augment.ops = ("translate",)
    config.augment.translate = {"fraction": (2 / 28, 2 / 28)}  # up to 2 pixels each way
    config.log_every_steps = 100
    return config


def main(config, workdir: str) -> dict:
    return train.train_and_evaluate(config, workdir)


if __name__ == "__main__":
    from jaxvision import cli

    cli.run(get_config, main, name="mnist_modern_cnn")
