"""Orbax checkpoints of the train state: save, verify, and restore onto any device count.

Each step directory holds two items: ``state`` (the arrays, through ``StandardSave``) and
``meta`` (JSON: the loop's bookkeeping and a fingerprint of every array). Restoring goes
through an abstract state whose leaves carry the *target* shardings, so a run saved on 8
devices resumes on 1 and back. The fingerprint is recomputed after every restore; a
checkpoint whose files are truncated or whose bytes changed is skipped with a warning and the
previous step is tried, so garbage is never loaded. A run that falls back moves the damaged
step aside (``<directory>.damaged/<step>-<time>``, never deleted) so that it can save that step
again. Orbax writes each step to a temporary directory and renames it when complete, so a save
interrupted by a crash never replaces the last good step.

Evaluation metrics are saved with each step (Orbax's ``metrics`` item), so the best-K set and
``best_step`` survive a restart.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint.checkpoint_managers import preservation_policy as pp

from jaxvision.train.workdir import unused_path

log = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    """A checkpoint is damaged (or none in the directory could be restored intact)."""


class CheckpointMismatchError(ValueError):
    """The checkpoint is intact but holds a different state layout (another model or
    optimizer): falling back to older steps would not help."""


@jax.jit
def fingerprint(tree: Any) -> list[jax.Array]:
    """One uint32 per leaf: the bits of every element weighted by an odd number and summed
    (mod 2**32). Any single changed bit changes it, and the sum does not depend on how the
    array is sharded."""

    def leaf_print(x):
        x = jnp.asarray(x)
        if x.dtype == jnp.bool_:
            x = x.astype(jnp.uint8)
        unsigned = {1: jnp.uint8, 2: jnp.uint16, 4: jnp.uint32, 8: jnp.uint32}[x.dtype.itemsize]
        bits = x.view(unsigned).astype(jnp.uint32)
        weights = jnp.arange(bits.size, dtype=jnp.uint32) * 2 + 1
        return jnp.sum(bits.reshape(-1) * weights, dtype=jnp.uint32)

    return [leaf_print(x) for x in jax.tree.leaves(tree)]


def _fingerprint_ints(tree: Any) -> list[int]:
    return [int(v) for v in jax.device_get(fingerprint(tree))]


def _layout(tree: Any) -> list[str]:
    """``path:shape:dtype`` of every leaf (arrays or ``ShapeDtypeStruct``s): what a restore
    target must agree with."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return [f"{jax.tree_util.keystr(path)}:{list(np.shape(leaf))}:{np.dtype(leaf.dtype)}"
            for path, leaf in leaves]


class Checkpointer:
    """Latest-N checkpoints for resuming plus, when ``best_metric`` is set, the best-K by an
    evaluation metric (``best_mode`` 'max' or 'min').

    ``move_damaged`` is for a run that will save again: a damaged step it finds is moved to
    ``<directory>.damaged/`` instead of being only skipped, so the step can be written anew."""

    def __init__(self, directory: str | os.PathLike, *, keep_latest: int = 2,
                 best_metric: str | None = None, best_mode: str = "max", keep_best: int = 1,
                 async_save: bool = True, move_damaged: bool = False):
        if keep_latest < 1:
            raise ValueError(f"keep_latest must be >= 1 to resume, got {keep_latest}")
        if best_mode not in ("max", "min"):
            raise ValueError(f"best_mode must be 'max' or 'min', got {best_mode!r}")
        policies = [pp.LatestN(n=keep_latest)]
        best_fn = None
        if best_metric:
            best_fn = lambda metrics: metrics[best_metric]  # noqa: E731
            policies.append(pp.BestN(get_metric_fn=best_fn, reverse=best_mode == "min",
                                     n=keep_best, keep_checkpoints_without_metrics=False))
        self.directory = os.path.abspath(os.fspath(directory))
        self.best_metric = best_metric
        self._options = ocp.CheckpointManagerOptions(
            preservation_policy=pp.AnyPreservationPolicy(policies),
            # best_fn makes Orbax write each step's metrics to disk and read them back on
            # restart; without it, the best-K policy forgets older steps' metrics.
            best_fn=best_fn, best_mode=best_mode,
            enable_async_checkpointing=async_save,
            cleanup_tmp_directories=True,
        )
        self._move_damaged = move_damaged
        for step in _steps_with_unreadable_metrics(self.directory):
            if not move_damaged:
                raise CheckpointError(
                    f"checkpoint step {step} in {self.directory} has an unreadable metrics file; "
                    "rerun the training command (it moves the damaged step aside) or remove "
                    f"{os.path.join(self.directory, str(step))}")
            self._move_aside(step)
        self._manager = ocp.CheckpointManager(self.directory, item_names=("state", "meta"),
                                              options=self._options)

    def save(self, step: int, items: dict, *, meta: dict | None = None,
             metrics: dict | None = None) -> None:
        """Saves the checkpoint arrays ``items`` (``TrainState.checkpoint_items()``) at ``step``."""
        meta = dict(meta or {}, fingerprint=_fingerprint_ints(items), layout=_layout(items))
        self._manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(items), meta=ocp.args.JsonSave(meta)),
            metrics=metrics, force=True)

    def all_steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def best_step(self) -> int | None:
        """The kept step with the best ``best_metric`` (the latest of equals); None without one."""
        return self._manager.best_step() if self.best_metric else None

    def _read(self, step: int, **item):
        """One item of checkpoint ``step``; any failure to read it is a ``CheckpointError``."""
        (name,) = item
        try:
            return self._manager.restore(step, args=ocp.args.Composite(**item))[name]
        except Exception as error:
            raise CheckpointError(f"checkpoint step {step} in {self.directory} cannot be read: "
                                  f"{type(error).__name__}: {error}") from error

    def restore(self, step: int, abstract_items: dict) -> tuple[dict, dict]:
        """Restores ``step`` into the shapes, dtypes and shardings of ``abstract_items``.

        Raises ``CheckpointMismatchError`` when the checkpoint holds another layout and
        ``CheckpointError`` when it cannot be read or does not match its saved fingerprint."""
        meta = dict(self._read(step, meta=ocp.args.JsonRestore()))
        expected_layout = _layout(abstract_items)
        if meta.get("layout") != expected_layout:
            saved = meta.get("layout") or []
            diff = next((f"saved {a!r}, expected {b!r}" for a, b in zip(saved, expected_layout)
                         if a != b), f"{len(saved)} arrays saved, {len(expected_layout)} expected")
            raise CheckpointMismatchError(
                f"checkpoint step {step} in {self.directory} holds a different train state "
                f"({diff}). Resume with the config it was saved with (see config.json next to "
                "it) or use a fresh workdir.")
        items = self._read(step, state=ocp.args.StandardRestore(abstract_items))
        if _fingerprint_ints(items) != list(meta.pop("fingerprint", [])):
            raise CheckpointError(f"checkpoint step {step} in {self.directory} is corrupted: its "
                                  "arrays do not match the fingerprint saved with them")
        meta.pop("layout")
        return items, meta

    def restore_latest(self, abstract_items: dict) -> tuple[int, dict, dict] | None:
        """``(step, items, meta)`` of the newest intact checkpoint, or None when there is none.

        Damaged checkpoints are skipped with a warning (and moved aside with ``move_damaged``);
        if all are damaged, raises and moves nothing."""
        steps = self.all_steps()
        damaged = []
        for step in reversed(steps):
            try:
                items, meta = self.restore(step, abstract_items)
            except CheckpointError as error:
                log.warning("%s; falling back to the previous checkpoint", error)
                damaged.append(step)
                continue
            if self._move_damaged:
                for bad in damaged:
                    self._move_aside(bad)
                self._manager.reload()
            return step, items, meta
        if steps:
            raise CheckpointError(f"none of the checkpoints {steps} in {self.directory} could be "
                                  "restored intact; move the directory away to start afresh")
        return None

    def _move_aside(self, step: int) -> None:
        """Moves a damaged step out of the manager's sight, keeping its files for a post-mortem."""
        damaged_dir = f"{self.directory}.damaged"
        os.makedirs(damaged_dir, exist_ok=True)
        destination = unused_path(os.path.join(damaged_dir, f"{step}-{{}}"))
        if jax.process_index() == 0:
            shutil.move(os.path.join(self.directory, str(step)), destination)
            log.warning("moved the damaged checkpoint step %d to %s", step, destination)
        _sync("jaxvision_move_damaged_checkpoint")

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.close()


def read_variables(path: str | os.PathLike, *, step: int | None = None) -> dict:
    """``{"params": ..., "model_state": ...}`` of a jaxvision checkpoint in the shapes it was
    saved with (for ``init_from``, whose model may differ), without building its model or
    optimizer. ``path`` is a workdir, its ``checkpoints`` folder or one step's folder."""
    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(os.path.join(path, "checkpoints")):
        path = os.path.join(path, "checkpoints")
    if os.path.isdir(os.path.join(path, "state")):  # one step's folder
        path, step = os.path.dirname(path), int(os.path.basename(path))
    steps = sorted(int(n) for n in os.listdir(path) if n.isdigit()) if os.path.isdir(path) else []
    if not steps:
        raise FileNotFoundError(f"no jaxvision checkpoint in {path!r}")
    tree = ocp.PyTreeCheckpointer().metadata(
        os.path.join(path, str(step if step is not None else steps[-1]), "state")
    ).item_metadata.tree
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    abstract = {name: jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
                                   tree.get(name, {})) for name in ("params", "model_state")}
    return jax.device_get(restore_variables(path, abstract, step=step)[1])


def restore_variables(checkpoint_dir: str, abstract: dict, *, step: int | None = None
                      ) -> tuple[int, dict]:
    """``(step, {"params", "model_state"})`` of the newest intact step (or ``step``), read
    with an Orbax partial restore of the ``state`` item and checked against the layout and
    the per-array fingerprint saved with it; a damaged step is skipped with a warning."""
    if not os.path.isdir(checkpoint_dir):
        raise FileNotFoundError(f"no checkpoint folder {checkpoint_dir!r}")
    absl_log = logging.getLogger("absl")
    level = absl_log.level
    absl_log.setLevel(logging.ERROR)  # read_only's notes: "setting create=False"...
    try:  # read-only: never writes to (or cleans up in) a directory a live run may share
        manager = ocp.CheckpointManager(checkpoint_dir, item_names=("state", "meta"),
                                        options=ocp.CheckpointManagerOptions(read_only=True))
    finally:
        absl_log.setLevel(level)
    try:
        steps = sorted(manager.all_steps())
        if step is not None and step not in steps:
            raise FileNotFoundError(f"no checkpoint step {step} in {checkpoint_dir} "
                                    f"(steps: {steps})")
        if not steps:
            raise FileNotFoundError(f"no checkpoint in {checkpoint_dir}")
        expected = _layout(abstract)
        wanted = {"params", "model_state"} if abstract["model_state"] else {"params"}
        target = {name: abstract[name] for name in wanted}
        for candidate in [step] if step is not None else reversed(steps):
            try:
                meta = manager.restore(candidate, args=ocp.args.Composite(
                    meta=ocp.args.JsonRestore()))["meta"]
                saved = {entry.rsplit(":", 2)[0]: (entry, print_) for entry, print_ in
                         zip(meta.get("layout", []), meta.get("fingerprint", []))}
                kept = [entry for entry, _ in saved.values()
                        if entry.startswith(("['params']", "['model_state']"))]
                if meta.get("layout") is not None and kept != expected:
                    diff = next((f"saved {a!r}, expected {b!r}" for a, b in zip(kept, expected)
                                 if a != b), f"{len(kept)} arrays saved, {len(expected)} "
                                 "expected")
                    raise CheckpointMismatchError(
                        f"checkpoint step {candidate} in {checkpoint_dir} holds another model "
                        f"than its config.json describes ({diff})")
                items = manager.restore(candidate, args=ocp.args.Composite(
                    state=ocp.args.PyTreeRestore(
                        item=target, restore_args=ocp.checkpoint_utils.construct_restore_args(
                            target), partial_restore=True)))["state"]
                if meta.get("fingerprint") is not None:
                    paths = [jax.tree_util.keystr(p) for p, _ in
                             jax.tree_util.tree_flatten_with_path(items)[0]]
                    got = [int(v) for v in jax.device_get(fingerprint(items))]
                    if any(saved[path][1] != value for path, value in zip(paths, got)):
                        raise CheckpointError(
                            f"checkpoint step {candidate} in {checkpoint_dir} is corrupted: "
                            "its arrays do not match the fingerprint saved with them")
            except CheckpointMismatchError:
                raise
            except Exception as error:  # unreadable files, bad fingerprint
                if step is not None:
                    if isinstance(error, CheckpointError):
                        raise
                    raise CheckpointError(f"checkpoint step {candidate} in {checkpoint_dir} "
                                          f"cannot be read: {type(error).__name__}: "
                                          f"{error}") from error
                log.warning("checkpoint step %d in %s cannot be restored (%s: %s); trying the "
                            "previous one", candidate, checkpoint_dir, type(error).__name__,
                            error)
                continue
            items.setdefault("model_state", {})
            return candidate, items
        raise CheckpointError(f"none of the checkpoints {steps} in {checkpoint_dir} could be "
                              "restored intact")
    finally:
        manager.close()


def _steps_with_unreadable_metrics(directory: str) -> list[int]:
    """Steps whose saved metrics are not JSON: Orbax would fail to open the directory."""
    bad = []
    for name in os.listdir(directory) if os.path.isdir(directory) else []:
        path = os.path.join(directory, name, "metrics", "metrics")
        if name.isdigit() and os.path.isfile(path):
            try:
                with open(path) as f:
                    json.load(f)
            except (ValueError, UnicodeDecodeError):
                bad.append(int(name))
    return sorted(bad)


def _sync(name: str) -> None:
    """A barrier across processes (a no-op with one)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def abstract_items(items: dict, sharding: jax.sharding.Sharding) -> dict:
    """Shape/dtype structs of ``items`` placed on ``sharding``: the restore target."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
                        jax.eval_shape(lambda: items))
