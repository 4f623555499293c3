"""Reduce-on-plateau in the engine (``config.plateau``): the LRs the loop's optimizer applies
equal PyTorch's ReduceLROnPlateau, a run logs the reduced LR from the right evaluation on, an
interrupted run resumes to the same metrics, and bad options stop before compiling."""

import os
import signal

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import digits_config, torch_lrs

from jaxvision.optim import build_schedule
from jaxvision.train import (Interrupted, TrainState, default_config, load_state, make_parallel,
                             read_metrics, train_and_evaluate)
from jaxvision.train import loop

CASES = [  # every torch option, both modes and threshold modes, with and without cooldown
    dict(mode="min", threshold_mode="rel", factor=0.5, patience=2, cooldown=0, threshold=1e-4,
         min_lr=0.0),
    dict(mode="max", threshold_mode="rel", factor=0.5, patience=1, cooldown=2, threshold=1e-2,
         min_lr=0.0),
    dict(mode="min", threshold_mode="abs", factor=0.3, patience=0, cooldown=1, threshold=0.02,
         min_lr=0.004),
    dict(mode="max", threshold_mode="abs", factor=0.1, patience=3, cooldown=3, threshold=0.005,
         min_lr=1e-4),
]


def _metrics(mode: str) -> np.ndarray:
    """A loss that falls, stalls, falls and stalls again; in mode max, an accuracy-like score."""
    rng = np.random.default_rng(0)
    loss = np.concatenate([np.linspace(1, 0.5, 8), 0.5 + 0.05 * rng.random(30),
                           np.linspace(0.5, 0.2, 8), 0.2 + 0.02 * rng.random(14)])
    return loss if mode == "min" else 1.0 - loss / 2


@pytest.mark.parametrize("options", CASES, ids=lambda o: f"{o['mode']}-{o['threshold_mode']}")
def test_the_loops_learning_rates_are_torchs(options):
    """The loop's optimizer (SGD, constant schedule, the plateau multiplier chained after it)
    fed the metrics by the loop's plateau step: the update of a unit gradient is -LR."""
    torch = pytest.importorskip("torch")
    metrics = _metrics(options["mode"])
    expected = torch_lrs(torch, lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, **options),
                         len(metrics), metrics=metrics)
    assert len(set(expected)) > 2  # torch reduced at least twice: the comparison can tell
    config = default_config()
    config.optimizer.update(name="sgd", momentum=0.0, weight_decay=0.0, schedule="constant",
                            learning_rate=0.1)
    config.plateau.update(metric="eval_loss", **options)
    tx = loop._build_tx(config, total_steps=len(metrics))
    params = {"w": jnp.zeros(())}
    state = TrainState(step=jnp.zeros((), jnp.int32), params=params, model_state={},
                       opt_state=tx.init(params), rng=jnp.zeros(2, jnp.uint32), apply_fn=None,
                       tx=tx)
    plateau_step = loop._plateau_step(config, make_parallel("none"))
    ours = []
    for metric in metrics:
        updates, _ = tx.update({"w": jnp.ones(())}, state.opt_state, params)
        ours.append(-float(updates["w"]))
        state = plateau_step(state, {"eval_loss": float(metric)})
    np.testing.assert_allclose(ours, expected, rtol=1e-6)


PATIENCE, FACTOR, THRESHOLD = 1, 0.5, 1e-4


def _run_config(tfds_dir):
    """MLP on digits judged on a validation split, cosine schedule; in mode 'max' the falling
    validation loss never improves on the first evaluation's, so the plateau is certain."""
    config = digits_config(tfds_dir, num_epochs=PATIENCE + 3, log_every_steps=1, model="mlp",
                           validation_fraction=0.1, tensorboard=False)
    config.plateau.update(metric="eval_loss", mode="max", factor=FACTOR, patience=PATIENCE,
                          threshold=THRESHOLD)
    return config


@pytest.fixture(scope="module")
def plateau_run(tfds_dir, tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("plateau"))
    summary = train_and_evaluate(_run_config(tfds_dir), workdir)
    return workdir, summary


def test_logged_learning_rate_drops_after_patience_stalled_evaluations(plateau_run, tfds_dir):
    workdir, summary = plateau_run
    assert "test_accuracy" in summary  # the validation split judged the run
    records = read_metrics(workdir)
    losses = [r["loss"] for r in records if r["split"] == "eval"]
    assert all(loss <= losses[0] * (1 + THRESHOLD) for loss in losses[1:]), losses
    # Epoch 1's evaluation sets the best; those of epochs 2 .. PATIENCE + 2 do not improve on it
    # and the last of them reduces: the epochs after it run at FACTOR times the schedule.
    train = [r for r in records if r["split"] == "train"]
    schedule = build_schedule(_run_config(tfds_dir).optimizer, total_steps=summary["step"])
    expected = [float(schedule(r["step"] - 1)) * (FACTOR if r["epoch"] > PATIENCE + 2 else 1.0)
                for r in train]
    # rtol: the compiled step's cosine differs from this eager one in the last bits.
    np.testing.assert_allclose([r["learning_rate"] for r in train], expected, rtol=1e-5)


def _interrupt_at(stop_step: int):
    def callback(step, state, eval_metrics):
        if step == stop_step:
            os.kill(os.getpid(), signal.SIGINT)  # the loop saves this step, then stops

    return callback


@pytest.mark.slow  # four short runs; keeps the default suite under its time budget
def test_interrupted_run_resumes_to_the_same_metrics_and_state(plateau_run, tfds_dir, tmp_path):
    reference, _ = plateau_run
    config = _run_config(tfds_dir)
    eval_steps = [r["step"] for r in read_metrics(reference) if r["split"] == "eval"]
    # Stopped with a non-improving evaluation counted, then right after the reduction.
    for stop_step in eval_steps[1:PATIENCE + 2]:
        with pytest.raises(Interrupted):
            train_and_evaluate(config, str(tmp_path), callbacks=[_interrupt_at(stop_step)])
    train_and_evaluate(config, str(tmp_path))
    assert read_metrics(str(tmp_path)) == read_metrics(reference)
    ours, theirs = load_state(str(tmp_path), config), load_state(reference, config)
    for x, y in zip(jax.tree.leaves(ours.checkpoint_items()),
                    jax.tree.leaves(theirs.checkpoint_items()), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("overrides,message", [
    ({"plateau.metric": "eval_iou"}, r"config.plateau.metric must be one of \('eval_loss', "),
    ({"plateau.mode": "lowest"}, r"config.plateau.mode must be one of \('min', 'max'\)"),
    ({"plateau.threshold_mode": "relative"}, "config.plateau.threshold_mode must be one of"),
    ({"plateau.factor": 1.0}, r"config.plateau.factor must lie in \(0, 1\), got 1.0"),
    ({"plateau.factor": 0.0}, r"config.plateau.factor must lie in \(0, 1\), got 0.0"),
    ({"plateau.patience": -1}, "config.plateau.patience must be >= 0, got -1"),
    ({"plateau.cooldown": -2}, "config.plateau.cooldown must be >= 0, got -2"),
    ({"plateau.metric": "eval_loss", "optimizer.learning_rate": 0.0},
     "config.plateau needs config.optimizer.learning_rate > 0"),
])
def test_bad_plateau_options_stop_before_compiling(tfds_dir, tmp_path, compile_counter,
                                                   overrides, message):
    with pytest.raises(ValueError, match=message):
        train_and_evaluate(digits_config(tfds_dir, **overrides), str(tmp_path))
    assert compile_counter.count == 0
