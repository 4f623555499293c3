"""Shared test helpers (imported by the test modules; pytest puts tests/ on the path)."""

from jaxvision.train import default_config


def digits_config(tfds_dir: str, **overrides):
    """A short single-device training config on the embedded digits set; ``overrides`` take
    dotted keys: ``digits_config(d, **{"optimizer.learning_rate": 0.1})``."""
    config = default_config()
    config.dataset = "digits"
    config.data_dir = tfds_dir
    config.parallel = "none"
    config.batch_size = 64
    config.num_epochs = 2
    config.optimizer.learning_rate = 3e-3
    config.log_every_steps = 5
    for key, value in overrides.items():
        target = config
        *path, leaf = key.split(".")
        for part in path:
            target = target[part]
        target[leaf] = value
    return config
