"""Shared test helpers (imported by the test modules; pytest puts tests/ on the path)."""

import jax
import jax.numpy as jnp
import numpy as np

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


def mask_box(mask):
    """The tight xyxy box (pixel edges) of a binary mask, or None when it is empty."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return None
    return np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], np.float32)


def box_iou(a, b) -> float:
    """IoU of two xyxy boxes (plain numpy: the reference the library's ops are tested against)."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    area = lambda z: (z[2] - z[0]) * (z[3] - z[1])  # noqa: E731
    return w * h / (area(a) + area(b) - w * h)


def torch_lrs(torch, make_scheduler, steps, lr=0.1, metrics=None):
    """The LR of each of ``steps`` SGD steps under the scheduler ``make_scheduler(opt)``,
    stepped after each optimizer step (with ``metrics[i]`` for ReduceLROnPlateau)."""
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=lr, momentum=0.9)
    scheduler = make_scheduler(opt)
    lrs = []
    for i in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step(*(() if metrics is None else (metrics[i],)))
    return np.array(lrs)


def random_variables(model, x, seed=0):
    """``model``'s variables filled from numpy, without compiling its initialisers (the slow
    part of a small test): He-scaled kernels, scales near 1, BN variances in [0.5, 1.5], every
    other leaf (biases, BN means, embeddings) N(0, 0.1): nothing is zero, so no gradient is."""
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))
    rng = np.random.default_rng(seed)

    def fill(path, leaf):
        name, shape = path[-1].key, leaf.shape
        if name == "kernel":
            value = rng.normal(0, np.sqrt(2 / np.prod(shape[:-1])), shape)
        elif name == "var":
            value = rng.uniform(0.5, 1.5, shape)
        else:
            value = (name == "scale") + rng.normal(0, 0.1, shape)
        return jnp.asarray(value, leaf.dtype)

    return jax.tree_util.tree_map_with_path(fill, shapes)


def small_predictor(*, size: int = 16, channels: int = 3, num_classes: int = 10,
                    class_names=None):
    """An ``inference.Predictor`` over a small CNN with BatchNorm and random (nonzero)
    variables: what the export, serving and production tests run."""
    from jaxvision import models, tasks
    from jaxvision.inference import InputSpec, Predictor

    model = models.create("small_cnn", num_classes=num_classes)
    spec = InputSpec(image_size=(size, size), channels=channels,
                     mean=(0.5, 0.4, 0.3)[:channels], std=(0.2, 0.25, 0.3)[:channels])
    variables = random_variables(model, np.zeros((1, size, size, channels), np.float32))
    return Predictor(model=model, variables=variables, task=tasks.ClassificationTask(),
                     spec=spec, num_classes=num_classes, class_names=class_names)
