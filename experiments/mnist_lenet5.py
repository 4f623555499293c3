"""Recipe: LeNet-5 (LeCun et al. 1998) on MNIST, the classic network on the classic data set.

Command:  python -m experiments.mnist_lenet5 --workdir workdirs/mnist_lenet5
          (``--config.model_kwargs.act=relu --config.model_kwargs.pool=max``: the modern knobs)
Expected: about 99.0% test accuracy (the paper's 0.95% error without distortions; tanh and
          average-pool subsampling as in the paper, 28x28 inputs padded by 2 in C1). Protocol:
          batch 128, Adam 1e-3 with cosine decay, 10 epochs (4,690 steps), no augmentation.
Runtime:  not measured: no package on the registries this project can reach ships the MNIST
          files (the ``mnist``, ``emnist`` and ``mnist-datasets`` packages download them at run
          time), so it needs MNIST prepared in TFDS (``tfds build mnist`` with network, then
          ``$TFDS_DATA_DIR``). On 2 CPU cores it is a few minutes (a 61.7k-parameter network);
          the embedded ``digits`` (8x8, ``python -m experiments.quickstart``) are the offline
          stand-in.
"""

from __future__ import annotations

from jaxvision import train


def get_config():
    config = train.default_config()
    config.dataset = "mnist"
    config.model = "lenet5"
    config.batch_size = 128
    config.eval_batch_size = 1000
    config.num_epochs = 10
    config.optimizer.name = "adam"
    config.optimizer.learning_rate = 1e-3
    config.optimizer.schedule = "cosine"
    config.log_every_steps = 100
    return config


def main(config, workdir: str) -> dict:
    return train.train_and_evaluate(config, workdir)


if __name__ == "__main__":
    from jaxvision import cli

    cli.run(get_config, main, name="mnist_lenet5")
