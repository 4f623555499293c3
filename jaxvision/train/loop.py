"""``train_and_evaluate(config, workdir)``: the one entry point for the CLI, notebooks and tests.

It resumes from the newest intact checkpoint in ``workdir`` (same data order, same keys, so a
killed run ends bitwise where an uninterrupted one would), evaluates each epoch, writes
metrics to JSONL and TensorBoard, keeps the latest and best checkpoints, stops early and
reduces the LR on a plateau of a chosen metric, and draws the curves at the end. It holds a
lock on the workdir, refuses to resume under a config that would change the result, and stops
gracefully on SIGINT/SIGTERM.

Under ``jax.distributed`` (e.g. ``python -m jaxvision.launch``) every process runs this same
function: each feeds its rows of every global batch, all take part in each checkpoint save and
restore, and process 0 alone logs and writes the workdir's files, metrics and plots.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import numpy as np
import optax

from jaxvision.data import Datasets, build_datasets
from jaxvision.inference import CLASS_NAMES_FILE, INPUT_SPEC_FILE, InputSpec
from jaxvision.nn.layers import sync_batch_norm
from jaxvision.optim import build_optimizer, build_schedule
from jaxvision.optim.schedules import (map_plateau_states, plateau_scale,
                                       reduce_on_plateau_update, scale_by_plateau)
from jaxvision.train import monitoring
from jaxvision import tasks
from jaxvision.tasks import Task
from jaxvision.train.checkpoint import Checkpointer, _sync, abstract_items
from jaxvision.train.config import COMPUTE_DTYPES, validate_config
from jaxvision.train.interrupt import Interrupted, StopRequest
from jaxvision.train.parallel import AXIS, Parallel, make_parallel
from jaxvision.train.progress import Progress
from jaxvision.train.state import TrainState, create_train_state
from jaxvision.train.evaluation import evaluate
from jaxvision.train.init_from import load_initial_variables
from jaxvision.train.step import Adversarial, StepOptions, make_eval_step, make_train_step
from jaxvision.train.workdir import (CONFIG_FILE, WorkdirLock, check_config, config_as_json,
                                     keep_old_config, move_run_aside, write_json_atomic)
from jaxvision.train.writers import MetricWriter, plot_curves, read_metrics
from jaxvision.xla_options import compile_once

log = logging.getLogger("jaxvision.train")
_MODEL_INPUT = "model_input.json"  # what load_state needs to rebuild the model


class NonFiniteError(FloatingPointError):
    """The loss or gradient became NaN/Inf and ``config.nonfinite == 'stop'``."""


def _has_field(module, name: str) -> bool:
    return name in {f.name for f in dataclasses.fields(module)}


def create_model(config, *, num_classes: int, parallel: Parallel, model: nn.Module | None = None):
    """The configured model (or ``model``) with its compute dtype, and BatchNorm synced under
    pmap when asked.

    Returns ``(model, batch_stats_synced)``: False means per-device BatchNorm whose running
    statistics the step averages.
    """
    if model is None:
        from jaxvision.transfer.engine import build_model

        model = build_model(config, num_classes=num_classes)
    if _has_field(model, "dtype"):
        model = model.clone(dtype=COMPUTE_DTYPES[config.compute_dtype])
    elif config.compute_dtype != "float32":
        raise ValueError(f"model {config.model!r} has no dtype field, so compute_dtype="
                         f"{config.compute_dtype!r} cannot apply")
    synced = parallel.mode != "pmap" or config.bn_mode == "sync"
    if parallel.mode == "pmap" and synced:
        synced_norm = _has_field(model, "norm") and sync_batch_norm(model.norm, AXIS)
        if synced_norm:
            model = model.clone(norm=synced_norm)
        else:
            synced = False
    return model, synced


def _build_augment(config, num_classes: int):
    """``(augment_fn, eval_preprocess_fn)`` from ``config.augment``; Nones when it names no op."""
    spec = config.augment.to_dict()
    if not spec.get("ops") and not spec.get("preset"):
        return None, None
    from jaxvision import augment

    return augment.build(spec, num_classes=num_classes), augment.build_eval(spec)


def _mean_metrics(window: list[dict]) -> dict[str, float]:
    host = jax.device_get(window)
    return {k: float(np.mean([m[k] for m in host])) for k in host[0]}


@dataclasses.dataclass
class _Progress:
    """The loop's own bookkeeping, checkpointed next to the state as JSON."""

    early_stopping: list | None = None  # the fields of monitoring.EarlyStoppingState
    skipped_steps: int = 0
    consecutive_skips: int = 0
    stopped_early: bool = False


def train_and_evaluate(config, workdir: str, *, task: Task | None = None,
                       model: nn.Module | None = None, datasets: Datasets | None = None,
                       callbacks: Sequence[Callable] = ()) -> dict[str, Any]:
    """Trains ``config`` in ``workdir`` (resuming if it holds checkpoints); returns the final
    evaluation metrics plus ``step``, ``best_step``, ``epoch``, ``best_epoch`` and ``workdir``
    (also written to ``summary.json``). Epochs are numbered from 1 everywhere: the log line
    "epoch 1 step 22 ...", the ``epoch`` field of ``metrics.jsonl`` and ``summary.json``
    (TensorBoard plots against the step, the same step as ``metrics.jsonl``).

    Objects may replace what the config names: ``task`` (default ``config.task``, e.g.
    classification: what the loss and the metrics are), ``model`` (default ``config.model``;
    a Flax module returning what the task expects) and ``datasets`` (default: built from the
    config). Each of ``callbacks`` is called as ``callback(step, state, eval_metrics)`` after
    every evaluation.

    The workdir is locked for the run. A rerun whose config would change the result is refused
    (see ``config.resume``). SIGINT/SIGTERM stop after the current step with a checkpoint and
    raise ``Interrupted``."""
    parallel = make_parallel(config.parallel, num_devices=config.num_devices or None)
    validate_config(config, num_devices=parallel.num_devices,
                    metric_names=task.metric_names if task is not None else None)
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise ValueError(f"the workdir {workdir!r} is a file, not a directory")
    os.makedirs(workdir, exist_ok=True)
    primary = jax.process_index() == 0  # the process that writes files (all save checkpoints)
    lock = WorkdirLock(workdir) if primary else contextlib.nullcontext()
    with lock, StopRequest() as stop:
        config_changes = []
        if config.resume == "restart":
            if primary:
                move_run_aside(workdir)
            _sync("jaxvision_move_run_aside")
        else:
            config_changes = check_config(workdir, config)  # raises unless resume='force'
        return _train_and_evaluate(config, workdir, parallel=parallel, stop=stop,
                                   config_changes=config_changes, task=task, model=model,
                                   datasets=datasets, callbacks=callbacks)


def build_task(config, num_classes: int) -> Task:
    """The task ``config.task`` names, with its options from the config."""
    if config.task == "classification":
        return tasks.ClassificationTask(label_smoothing=config.label_smoothing)
    return tasks.create(config.task, num_classes=num_classes, **config.task_kwargs)


def _train_and_evaluate(config, workdir: str, *, parallel: Parallel, stop: StopRequest,
                        config_changes: list[str], task: Task | None, model: nn.Module | None,
                        datasets: Datasets | None, callbacks: Sequence[Callable]
                        ) -> dict[str, Any]:
    # In a multi-process job every process trains (and saves checkpoints collectively); only
    # process 0 logs and writes the workdir's files, metrics, TensorBoard events and plots.
    primary = jax.process_index() == 0
    info = log.info if primary else _silent
    if datasets is None:
        if primary:  # first: it may download and prepare the data set into a shared data_dir
            datasets = build_datasets(config)
        _sync("jaxvision_datasets_prepared")
        datasets = datasets or build_datasets(config)
    _check_batch_sizes(config, datasets, parallel.num_devices)
    num_classes = config.num_classes or datasets.num_classes
    if num_classes < datasets.num_classes:
        raise ValueError(f"config.num_classes={num_classes} but the data has "
                         f"{datasets.num_classes} classes")
    task = task or build_task(config, num_classes)
    model, bn_synced = create_model(config, num_classes=num_classes, parallel=parallel,
                                    model=model)

    steps_per_epoch = datasets.train.steps_per_epoch
    total_steps = config.num_epochs * steps_per_epoch
    plan = _transfer_plan(config, model, (1, *datasets.image_shape), steps_per_epoch)
    tx = _build_tx(config, total_steps, plan)
    freeze = plan.freeze
    options = StepOptions(
        learning_rate_fn=build_schedule(config.optimizer, total_steps), task=task, freeze=freeze,
        grad_accum_steps=config.grad_accum_steps,
        compute_dtype=COMPUTE_DTYPES[config.compute_dtype], sam_rho=config.sam.rho,
        sam_group_size=config.sam.group_size or None, axis_name=parallel.axis_name,
        batch_stats_synced=bn_synced,
        adversarial=Adversarial(**config.adversarial) if config.adversarial.epsilon else None)
    augment_fn, eval_preprocess_fn = _build_augment(config, num_classes)  # validates early
    input_shape = (1, *datasets.image_shape)
    init_state = functools.partial(create_train_state, model, tx, seed=config.seed,
                                   input_shape=input_shape, freeze=freeze)
    abstract_state = jax.eval_shape(init_state)  # traces, compiles nothing
    freeze.check(abstract_state.params)
    if not bn_synced and config.bn_mode == "sync" and abstract_state.batch_stats:
        raise ValueError(f"config.bn_mode='sync' but {type(model).__name__} has no BatchNorm `norm` "
                         "field to sync across devices under parallel='pmap'; use "
                         "bn_mode='per_device', parallel='jit', or inject its norm "
                         "(see jaxvision.nn.layers)")
    state = compile_once(jax.jit(init_state, out_shardings=parallel.replicated))()
    train_body = make_train_step(options, augment_fn, eval_preprocess_fn)
    train_step = parallel.compile_train_step(
        _logs_plateau_lr(train_body) if config.plateau.metric else train_body)
    plateau_step = _plateau_step(config, parallel)
    with_predictions = bool(task.evaluators())
    if with_predictions and jax.process_count() > 1:
        raise ValueError(f"the {type(task).__name__} task's set-level evaluators see every "
                         "prediction on one host, which a multi-process job does not gather "
                         "yet; evaluate this task with one process")
    eval_step = parallel.compile_eval_step(
        make_eval_step(options, eval_preprocess_fn, with_predictions=with_predictions),
        with_predictions=with_predictions)

    checkpointer = Checkpointer(
        os.path.join(workdir, "checkpoints"), keep_latest=config.keep_checkpoints,
        best_metric=config.best_metric or None, best_mode=config.best_mode,
        keep_best=config.keep_best, move_damaged=True)
    loop = _Progress()
    restored = checkpointer.restore_latest(
        abstract_items(state.checkpoint_items(), parallel.replicated))
    if restored is not None:
        step, items, meta = restored
        state = state.with_checkpoint_items(items)
        loop = _Progress(**meta["loop"])
        info("resumed from step %d in %s", step, checkpointer.directory)
    elif config.init_from:
        params, model_state = load_initial_variables(
            config.init_from, model, *jax.device_get((state.params, state.model_state)),
            dont_load=tuple(config.init_dont_load) + plan.dont_load)
        state = state.replace(params=jax.device_put(params, parallel.replicated),
                              model_state=jax.device_put(model_state, parallel.replicated))
    step = int(state.step)
    # Written only once the checkpoints (if any) proved compatible with this config.
    if primary:
        if config_changes:
            keep_old_config(workdir)
        write_json_atomic(os.path.join(workdir, CONFIG_FILE), config_as_json(config))
        write_json_atomic(os.path.join(workdir, _MODEL_INPUT),
                          {"num_classes": num_classes, "input_shape": input_shape})
        InputSpec.from_config(config, datasets.image_shape).save(
            os.path.join(workdir, INPUT_SPEC_FILE))
        write_json_atomic(os.path.join(workdir, CLASS_NAMES_FILE), datasets.class_names)
        writer = MetricWriter(workdir, tensorboard=config.tensorboard)
        writer.truncate_after(step)
    else:
        writer = _NoWriter()

    def save(metrics=None):
        checkpointer.save(step, state.checkpoint_items(), metrics=metrics,
                          meta={"loop": dataclasses.asdict(loop)})

    def evaluate_now() -> dict[str, float]:
        results = evaluate(state, datasets.eval, task=task, parallel=parallel,
                           eval_step=eval_step)
        return {f"eval_{name}": value for name, value in results.items()}

    def check_finite(at_step: int, metrics: dict) -> None:
        if float(metrics["finite"]):
            loop.consecutive_skips = 0
            return
        problem = (f"step {at_step}: the loss or gradient is not finite "
                   f"(loss={float(metrics['loss'])}, grad_norm={float(metrics['grad_norm'])})")
        if config.nonfinite == "skip":
            loop.skipped_steps += 1
            loop.consecutive_skips += 1
            if loop.consecutive_skips < config.max_consecutive_skips:
                log.warning("%s; update skipped", problem)
                return
            problem += (f"; {loop.consecutive_skips} steps in a row were skipped "
                        f"(config.max_consecutive_skips={config.max_consecutive_skips})")
        checkpointer.wait()
        last_good = checkpointer.all_steps()
        raise NonFiniteError(
            f"{problem}; the run stopped and the last good checkpoint "
            f"({last_good[-1] if last_good else 'none'}) is intact. Lower "
            "optimizer.learning_rate, set grad_clip_norm, or set nonfinite='skip'.")

    progress = (Progress(total_steps, initial_step=step, log_every=config.log_every_steps)
                if primary else _NoWriter())
    eval_metrics: dict[str, float] = {}
    window: list[dict] = []
    pending: tuple[int, dict] | None = None  # each step's finiteness, checked exactly once

    def stop_if_requested(signum: int | None) -> None:
        if signum is not None:
            checkpointer.wait()
            raise Interrupted(signum, step, workdir)

    try:
        for epoch in range(step // steps_per_epoch, config.num_epochs):
            if loop.stopped_early:
                break
            number = epoch + 1  # epochs are numbered from 1 wherever they are shown
            for batch in datasets.train.epoch(epoch, start_step=step % steps_per_epoch):
                _check_shape(batch, datasets.image_shape)
                if hasattr(task, "check_batch"):  # host-side target checks (segmentation masks)
                    task.check_batch(batch)
                state, metrics = train_step(state, parallel.place_batch(batch))
                step += 1
                if pending is not None:
                    check_finite(*pending)
                pending = (step, metrics)  # checked after the next step is dispatched
                window.append(metrics)
                if step % config.log_every_steps == 0:
                    train_metrics = _mean_metrics(window)
                    window = []
                    writer.write(step, train_metrics, split="train", epoch=number)
                    progress.update(step, {k: train_metrics[k] for k in task.metric_names
                                           if k in train_metrics})
                else:
                    progress.update(step)
                if step % steps_per_epoch == 0:
                    continue  # the epoch's end: evaluated and saved below
                signum = stop.poll()
                if signum is not None or (config.checkpoint_every_steps
                                          and step % config.checkpoint_every_steps == 0):
                    check_finite(*pending)
                    pending = None
                    save()
                    info("saving checkpoint at step %d", step)
                stop_if_requested(signum)
            if pending is not None:
                check_finite(*pending)
                pending = None
            if window:
                writer.write(step, _mean_metrics(window), split="train", epoch=number)
                window = []
            eval_metrics = evaluate_now()
            writer.write(step, {k[len("eval_"):]: v for k, v in eval_metrics.items()},
                         split="eval", epoch=number)
            info("epoch %d step %d %s", number, step,
                 " ".join(f"{k}={v:.4f}" for k, v in eval_metrics.items()))
            for callback in callbacks:
                callback(step, state, eval_metrics)
            _update_early_stopping(loop, config.early_stopping, eval_metrics, step)
            if plateau_step is not None:  # before the save: the checkpoint holds it
                state = plateau_step(state, eval_metrics)
            save(metrics=eval_metrics)
            info("saving checkpoint at step %d", step)
            if loop.stopped_early:
                info("early stopping: %s did not improve for %d epochs",
                     config.early_stopping.metric, config.early_stopping.patience)
            stop_if_requested(stop.poll())
    finally:
        progress.close()
        checkpointer.wait()
        writer.close()
    if not eval_metrics:  # resumed a finished run: report its final state
        eval_metrics = evaluate_now()
    best_step = checkpointer.best_step()
    if datasets.test is not None:
        eval_metrics.update(_test(state, step, best_step, checkpointer, datasets, task,
                                  parallel, eval_step, info=info))
    checkpointer.close()
    summary = {**eval_metrics, "step": step, "best_step": best_step,
               "epoch": _epoch_of(step, steps_per_epoch),
               "best_epoch": None if best_step is None else _epoch_of(best_step, steps_per_epoch),
               "skipped_steps": loop.skipped_steps, "workdir": workdir}
    if primary:
        plot_curves(read_metrics(workdir), os.path.join(workdir, "curves.png"),
                    metrics=task.metric_names)
        write_json_atomic(os.path.join(workdir, "summary.json"), summary)
    return summary


def _epoch_of(step: int, steps_per_epoch: int) -> int:
    """The 1-based number of the epoch that ``step`` (the count of steps done) falls in, the
    numbering of ``metrics.jsonl``, the log lines and ``summary.json``."""
    return -(-step // steps_per_epoch)


def _silent(*args, **kwargs) -> None:
    """``log.info`` on the processes other than 0."""


class _NoWriter:
    """What the processes other than 0 write metrics to and show progress on: nothing."""

    def __getattr__(self, name):
        return _silent


def _test(state, step: int, best_step: int | None, checkpointer: Checkpointer, datasets: Datasets,
          task: Task, parallel: Parallel, eval_step, info: Callable = log.info
          ) -> dict[str, float]:
    """The test split's metrics (``test_<name>``), once, with the best checkpoint (the
    validation set chose it) or, without best checkpoints, the final state."""
    tested = best_step if best_step is not None else step
    if tested != step:
        items, _ = checkpointer.restore(
            tested, abstract_items(state.checkpoint_items(), parallel.replicated))
        state = state.with_checkpoint_items(items)
    results = evaluate(state, datasets.test, task=task, parallel=parallel, eval_step=eval_step)
    info("test (step %d): %s", tested,
         " ".join(f"{k}={v:.4f}" for k, v in results.items()))
    return {"test_step": tested, **{f"test_{name}": value for name, value in results.items()}}


def _transfer_plan(config, model, input_shape, steps_per_epoch: int):
    """What ``config.transfer`` (with ``trainable``/``frozen``) means for ``model``."""
    from jaxvision.transfer.engine import plan

    return plan(config, model, input_shape, steps_per_epoch=steps_per_epoch)


def _build_tx(config, total_steps: int, plan=None) -> optax.GradientTransformation:
    if plan is not None:
        from jaxvision.transfer.strategy import build_optimizer as build_transfer_optimizer

        tx = build_transfer_optimizer(config, plan, total_steps)
    else:
        tx = build_optimizer(config.optimizer, total_steps)
    if config.plateau.metric:
        tx = optax.chain(tx, scale_by_plateau(mode=config.plateau.mode))
    if config.grad_clip_norm:
        tx = optax.chain(optax.clip_by_global_norm(config.grad_clip_norm), tx)
    return tx


def _check_batch_sizes(config, datasets: Datasets, num_devices: int) -> None:
    """Datasets built by hand must batch as the config says (the schedule, gradient
    accumulation and SAM groups were computed from ``config.batch_size``); the eval batch,
    which changes no result, only has to split over the devices."""
    processes = jax.process_count()
    size = datasets.train.local_batch_size * processes
    if size != config.batch_size:
        raise ValueError(f"the datasets have a training batch size of {size} but "
                         f"config.batch_size={config.batch_size}; build them with the config's "
                         "value")
    eval_size = datasets.eval.local_batch_size * processes
    if eval_size % num_devices:
        raise ValueError(f"the datasets' eval batch size {eval_size} is not divisible by the "
                         f"{num_devices} devices")


def _check_shape(batch: dict, image_shape: tuple[int, int, int]) -> None:
    if batch["image"].shape[1:] != image_shape:
        raise ValueError(f"a batch has images of shape {batch['image'].shape[1:]}, but the model "
                         f"was built for {image_shape}")


def _logs_plateau_lr(body: Callable) -> Callable:
    """The train step logging the learning rate the update used: the schedule's times the
    plateau multiplier."""

    def step(state, batch):
        new_state, metrics = body(state, batch)
        scale = plateau_scale(state.opt_state)
        return new_state, dict(metrics, learning_rate=metrics["learning_rate"] * scale)

    return step


def _plateau_step(config, parallel: Parallel) -> Callable | None:
    """``(state, eval_metrics) -> state`` with the plateau multiplier in the optimizer state fed
    the monitored metric (None when ``config.plateau`` is off). ``min_lr`` becomes a floor on
    the multiplier, so that with a constant schedule the LRs are PyTorch's."""
    cfg, lr = config.plateau, config.optimizer.learning_rate
    if not cfg.metric:
        return None
    update = jax.jit(functools.partial(
        reduce_on_plateau_update, mode=cfg.mode, factor=cfg.factor, patience=cfg.patience,
        threshold=cfg.threshold, threshold_mode=cfg.threshold_mode, cooldown=cfg.cooldown,
        min_lr=cfg.min_lr / lr, eps=1e-8 / lr), out_shardings=parallel.replicated)

    def step(state: TrainState, eval_metrics: dict[str, float]) -> TrainState:
        metric = eval_metrics[cfg.metric]
        before = float(plateau_scale(state.opt_state))
        state = state.replace(opt_state=map_plateau_states(state.opt_state,
                                                           lambda s: update(s, metric)))
        after = float(plateau_scale(state.opt_state))
        if after != before and jax.process_index() == 0:
            log.info("plateau: %s stalled; learning rate multiplier %g -> %g", cfg.metric,
                     before, after)
        return state

    return step


def _update_early_stopping(loop: _Progress, cfg, eval_metrics: dict[str, float], step: int) -> None:
    if not cfg.patience:
        return
    state = (monitoring.EarlyStoppingState(*loop.early_stopping) if loop.early_stopping
             else monitoring.early_stopping_init(mode=cfg.mode))
    state, _, loop.stopped_early = monitoring.early_stopping_update(
        state, eval_metrics[cfg.metric], step=step, patience=cfg.patience,
        min_delta=cfg.min_delta, mode=cfg.mode)
    loop.early_stopping = list(state)


def load_state(workdir: str, config, *, step: int | None = None,
               parallel: Parallel | None = None) -> TrainState:
    """The train state saved in ``workdir`` (newest intact step, or ``step``), rebuilt from
    ``config`` and placed on ``parallel`` (default: one device) whatever it was saved on."""
    parallel = parallel or make_parallel("none")
    try:
        with open(os.path.join(workdir, _MODEL_INPUT)) as f:
            model_input = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"{workdir!r} holds no trained run (no {_MODEL_INPUT}); train "
                                "there with train_and_evaluate first") from None
    model, _ = create_model(config, num_classes=model_input["num_classes"], parallel=parallel)
    # The optimizer state's structure does not depend on the schedule's length; any length
    # that every schedule accepts (warmup included) will do.
    input_shape = tuple(model_input["input_shape"])
    plan = _transfer_plan(config, model, input_shape, 1)
    template = jax.eval_shape(functools.partial(  # the structure only: restore fills it
        create_train_state, model, _build_tx(config, 2**30, plan), seed=config.seed,
        input_shape=input_shape, freeze=plan.freeze))
    checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"))
    target = abstract_items(template.checkpoint_items(), parallel.replicated)
    if step is None:
        restored = checkpointer.restore_latest(target)
        if restored is None:
            raise FileNotFoundError(f"no checkpoint in {checkpointer.directory}")
        _, items, _ = restored
    else:
        items, _ = checkpointer.restore(step, target)
    checkpointer.close()
    return template.with_checkpoint_items(items)
