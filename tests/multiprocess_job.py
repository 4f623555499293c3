"""The jobs ``tests/test_multiprocess.py`` runs, in one process or as several processes of one
``jax.distributed`` job (``python -m jaxvision.launch ... -m tests/multiprocess_job.py``).

    train OUT CASE...   trains each CASE ('jit', 'jit_bn', 'pmap', 'pmap_bn') in OUT/<case> on
                        a tiny data set whose images carry their example id; every process
                        writes the ids it trained on to OUT/<case>/ids_p<i>.json, process 0
                        the trained parameters and batch statistics to OUT/<case>/final.npz
    restore WORKDIR CASE OUT.npz   restores WORKDIR's newest checkpoint (saved on any number of
                        processes) onto this job's devices; process 0 writes it to OUT.npz
    fail CODE           the last process exits with CODE once all have joined; the others wait
                        for a key nobody sets (and would wait for ever)
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys

import jax
import numpy as np

NUM_TRAIN, NUM_EVAL, BATCH, EPOCHS = 64, 32, 16, 2


def images_with_ids(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random 8x8 grey images of 10 classes whose top-left pixel is the example's id."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, count)
    images = (rng.integers(0, 128, (count, 8, 8, 1)) + 12 * labels[:, None, None, None])
    images = images.astype(np.uint8)  # learnable: the class sets the brightness
    images[:, 0, 0, 0] = np.arange(count)
    return images, labels.astype(np.int64)


def config_for(case: str):
    import experiments.quickstart as quickstart

    config = quickstart.get_config()
    config.parallel = case.split("_")[0]
    config.batch_size, config.eval_batch_size, config.num_epochs = BATCH, BATCH, EPOCHS
    config.log_every_steps = 2
    config.augment.ops = ("crop",)  # device-side randomness, keyed per step
    config.model_kwargs.widths = (8, 16)
    config.model_kwargs.hidden = 16
    config.model_kwargs.norm = "batch_norm" if case.endswith("_bn") else None
    return config


def datasets_for(config):
    from jaxvision import data

    train = data.from_arrays(*images_with_ids(NUM_TRAIN, 0), num_classes=10)
    test = data.from_arrays(*images_with_ids(NUM_EVAL, 1), num_classes=10)
    return data.make_datasets(train, test, batch_size=config.batch_size,
                              eval_batch_size=config.eval_batch_size, seed=config.seed)


class RecordingStream:
    """A training stream that records the id of every example this process trains on."""

    def __init__(self, stream):
        self._stream = stream
        self.steps_per_epoch = stream.steps_per_epoch
        self.local_batch_size = stream.local_batch_size
        self.seen: dict[int, list[int]] = {}

    def epoch(self, epoch: int, *, start_step: int = 0):
        for batch in self._stream.epoch(epoch, start_step=start_step):
            self.seen.setdefault(epoch, []).extend(int(i) for i in batch["image"][:, 0, 0, 0])
            yield batch


def save_state(path: str, state) -> None:
    """Process 0 writes the parameters and batch statistics (replicated, so local) to ``path``."""
    from flax import traverse_util

    tree = {"params": state.params, "batch_stats": state.batch_stats}
    flat = traverse_util.flatten_dict(jax.device_get(tree), sep="/")
    if jax.process_index() == 0:
        np.savez(path, **{k: np.asarray(v) for k, v in flat.items()})


def train_cases(out: str, cases: list[str]) -> None:
    from jaxvision import train

    for case in cases:
        config = config_for(case)
        datasets = datasets_for(config)
        recorder = RecordingStream(datasets.train)
        workdir = os.path.join(out, case)
        states = []
        train.train_and_evaluate(config, workdir,
                                 datasets=dataclasses.replace(datasets, train=recorder),
                                 callbacks=[lambda step, state, metrics: states.append(state)])
        with open(os.path.join(workdir, f"ids_p{jax.process_index()}.json"), "w") as f:
            json.dump(recorder.seen, f)
        save_state(os.path.join(workdir, "final.npz"), states[-1])  # as trained, in memory


def restore(workdir: str, case: str, out: str) -> None:
    from jaxvision import train

    config = config_for(case)
    save_state(out, train.load_state(workdir, config,
                                     parallel=train.make_parallel(config.parallel)))


if __name__ == "__main__":
    from jaxvision import cli

    cli.setup_logging()
    command, *rest = sys.argv[1:]
    if command == "train":
        train_cases(rest[0], rest[1:])
    elif command == "restore":
        restore(*rest)
    elif command == "fail":
        from jax.experimental import multihost_utils

        from jax._src.distributed import global_state

        multihost_utils.sync_global_devices("joined")
        index, count = jax.process_index(), jax.process_count()
        print(f"process {index} of {count} joined", flush=True)
        client = global_state.client
        if index < count - 1:
            # tell the last process we are past the collective, then wait in the coordination
            # service: a gloo barrier here would itself fail on the closed connection and race
            # the launcher to report the job's first failure
            client.key_value_set(f"printed/{index}", "1")
            client.blocking_key_value_get("never", 10 * 60_000)
        for other in range(count - 1):
            client.blocking_key_value_get(f"printed/{other}", 60_000)
        os._exit(int(rest[0]))  # a crash: no atexit handlers, no distributed shutdown
    else:
        raise SystemExit(f"unknown command {command!r}")
