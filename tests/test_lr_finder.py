"""The LR range test on the engine's pieces: a model, a task and the dict batches of
``Datasets.train`` (the math of the test itself is in test_monitoring.py)."""

import flax.linen as nn
import numpy as np
import optax

from jaxvision.data import from_arrays, make_datasets
from jaxvision.losses import cross_entropy
from jaxvision.tasks import ClassificationTask
from jaxvision.train import create_train_state, lr_finder


class _Net(nn.Module):
    @nn.compact
    def __call__(self, x, *, train: bool):
        x = nn.BatchNorm(use_running_average=not train)(x.reshape(len(x), -1))
        return nn.Dense(3)(x)


def _datasets():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (20, 4, 4, 1), dtype=np.uint8)
    labels = rng.integers(0, 3, 20)
    source = from_arrays(images, labels, num_classes=3)
    return make_datasets(source, source, batch_size=8, eval_batch_size=8, seed=1)


def test_engine_range_test_uses_the_engine_init_the_task_loss_and_chained_epochs():
    datasets = _datasets()
    task = ClassificationTask(label_smoothing=0.2)
    result = lr_finder.engine_range_test(_Net(), task, datasets.train, seed=3, start_lr=1e-6,
                                         end_lr=1e-4, num_steps=7, momentum=0.0, skip_start=0,
                                         skip_end=0)
    assert len(result["lrs"]) == 7  # 2 steps per epoch: the test ran into a fourth epoch
    state = create_train_state(_Net(), optax.identity(), seed=3, input_shape=(1, 4, 4, 1))

    def init_loss(batch, smoothing=0.2):
        logits, _ = _Net().apply(state.variables(), batch["image"] / 255.0, train=True,
                                 mutable=["batch_stats"])
        return float(cross_entropy(logits, batch["label"], label_smoothing=smoothing))

    first = next(datasets.train.epoch(0))
    np.testing.assert_allclose(result["losses"][0], init_loss(first), rtol=1e-5)
    assert abs(init_loss(first) - init_loss(first, smoothing=0.0)) > 1e-3  # the task's loss
    # Step 3 is epoch 1's first batch; LRs <= 1e-5 have barely moved the parameters.
    np.testing.assert_allclose(result["losses"][2], init_loss(next(datasets.train.epoch(1))),
                               rtol=1e-4)
    assert abs(init_loss(next(datasets.train.epoch(1))) - init_loss(first)) > 1e-3
