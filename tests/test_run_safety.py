"""Nothing lost, nothing mixed: the workdir lock, damaged checkpoints moved aside, best-k and
best_step across restarts, the metrics file, refused config changes and the loop's own
checks on bad input (issue "Nothing lost, nothing mixed")."""

import glob
import json
import logging
import os
import signal
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from helpers import digits_config

from jaxvision import data, models, train
# Only names that existed before this issue at module level, so that on the old code each
# test fails on its own (names added with the fixes are looked up inside the tests).
from jaxvision.train import (Checkpointer, NonFiniteError, create_train_state, make_parallel,
                             read_metrics, train_and_evaluate)
from jaxvision.train.checkpoint import abstract_items
from jaxvision.train.writers import MetricWriter

STEPS_PER_EPOCH = 1438 // 64


def _tree(directory) -> dict:
    """Every file under ``directory`` with its size and modification time."""
    found = {}
    for path in glob.glob(f"{directory}/**", recursive=True):
        if os.path.isfile(path):
            stat = os.stat(path)
            found[os.path.relpath(path, directory)] = (stat.st_size, stat.st_mtime_ns)
    return found


# 1. The workdir lock.

def test_a_second_run_in_a_busy_workdir_stops_naming_the_owner(tfds_dir, tmp_path,
                                                                 compile_counter):
    from jaxvision.train.workdir import WorkdirLock

    with WorkdirLock(str(tmp_path)):
        with pytest.raises(train.WorkdirBusyError, match=f"in use by another run \\(pid {os.getpid()} "):
            train_and_evaluate(digits_config(tfds_dir), str(tmp_path))
    assert compile_counter.count == 0
    assert not os.path.exists(tmp_path / "checkpoints")


def test_a_dead_owners_lock_does_not_block(tmp_path):
    from jaxvision.train.workdir import WorkdirLock

    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from jaxvision.train.workdir import WorkdirLock; "
         f"WorkdirLock({str(tmp_path)!r}).__enter__(); print('locked', flush=True); "
         "time.sleep(120)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(train.WorkdirBusyError, match=f"pid {holder.pid} on "):
            WorkdirLock(str(tmp_path)).__enter__()
    finally:
        holder.kill()
        holder.wait()
    assert os.path.exists(tmp_path / ".lock")  # the dead owner's file is still there
    with WorkdirLock(str(tmp_path)):
        with open(tmp_path / ".lock") as f:
            assert json.load(f)["pid"] == os.getpid()
    assert not os.path.exists(tmp_path / ".lock")  # released


# 2-4. Damaged checkpoints, best_step, best-k across restarts (Checkpointer level: fast).

@pytest.fixture(scope="module")
def items():
    model = models.create("mlp", num_classes=10, hidden=(8,))
    return create_train_state(model, optax.sgd(0.1), seed=0,
                              input_shape=(1, 4, 4, 1)).checkpoint_items()


def _save(checkpointer, items, step, **metrics):
    checkpointer.save(step, dict(items, step=jnp.int32(step)), metrics=metrics or None)


def _remove(*parts):
    def damage(directory):
        import shutil

        path = os.path.join(directory, *parts)
        shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    return damage


def _corrupt_arrays(how):
    def damage(directory):
        for path in glob.glob(f"{directory}/2/state/**/d/*", recursive=True):
            content = bytearray(open(path, "rb").read())
            if how == "flip":
                content[len(content) // 2] ^= 0x10
            open(path, "wb").write(bytes(content[: len(content) // 3] if how == "truncate"
                                         else content))
    return damage


def _garble_metrics(directory):
    with open(os.path.join(directory, "2", "metrics", "metrics"), "w") as f:
        f.write('{"eval_accuracy": 0.')


DAMAGES = {
    "state_removed": _remove("2", "state"),
    "meta_removed": _remove("2", "meta"),
    "array_truncated": _corrupt_arrays("truncate"),
    "array_bit_flipped": _corrupt_arrays("flip"),
    "manifest_removed": _remove("2", "state", "manifest.ocdbt"),
    "array_metadata_removed": _remove("2", "state", "_METADATA"),
    "metrics_garbled": _garble_metrics,
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_latest_step_is_moved_aside_and_can_be_saved_again(tmp_path, items, damage):
    directory = str(tmp_path / "checkpoints")
    checkpointer = Checkpointer(directory, keep_latest=3, best_metric="eval_accuracy")
    _save(checkpointer, items, 1, eval_accuracy=0.5)
    _save(checkpointer, items, 2, eval_accuracy=0.6)
    checkpointer.close()
    DAMAGES[damage](directory)

    checkpointer = Checkpointer(directory, keep_latest=3, best_metric="eval_accuracy",
                                move_damaged=True)
    step, restored, _ = checkpointer.restore_latest(
        abstract_items(items, make_parallel("none").replicated))
    assert step == 1 and int(restored["step"]) == 1
    assert checkpointer.all_steps() == [1]
    (moved,) = glob.glob(f"{directory}.damaged/2-*")  # kept for a post-mortem
    assert os.listdir(moved)
    _save(checkpointer, items, 2, eval_accuracy=0.7)  # the crash loop: StepAlreadyExistsError
    checkpointer.close()
    assert Checkpointer(directory, best_metric="eval_accuracy").all_steps() == [1, 2]


def test_reading_never_moves_a_damaged_step(tmp_path, items):
    directory = str(tmp_path / "checkpoints")
    checkpointer = Checkpointer(directory, keep_latest=3)
    _save(checkpointer, items, 1)
    _save(checkpointer, items, 2)
    checkpointer.close()
    _remove("2", "state")(directory)
    step, _, _ = Checkpointer(directory).restore_latest(
        abstract_items(items, make_parallel("none").replicated))
    assert step == 1 and os.path.isdir(os.path.join(directory, "2"))


@pytest.mark.parametrize("best_mode,values,best", [
    ("min", (0.1, 0.5, 0.3), 22), ("max", (0.1, 0.5, 0.3), 44), ("max", (0.2, 0.2, 0.1), 44)])
def test_best_step_is_the_best_not_the_latest(tmp_path, items, best_mode, values, best):
    checkpointer = Checkpointer(tmp_path, keep_latest=1, best_metric="eval_loss",
                                best_mode=best_mode)
    for step, value in zip((22, 44, 66), values):
        _save(checkpointer, items, step, eval_loss=value)
    checkpointer.wait()
    assert checkpointer.best_step() == best
    assert checkpointer.all_steps() == sorted({best, 66})
    checkpointer.close()
    assert Checkpointer(tmp_path, best_metric="eval_loss", best_mode=best_mode).best_step() == best


def test_the_best_step_survives_a_restart(tmp_path, items):
    def open_checkpointer():
        return Checkpointer(tmp_path, keep_latest=1, best_metric="eval_loss", best_mode="min")

    checkpointer = open_checkpointer()
    _save(checkpointer, items, 22, eval_loss=0.1)
    _save(checkpointer, items, 44, eval_loss=0.5)
    checkpointer.close()
    checkpointer = open_checkpointer()  # the run was killed and resumed
    _save(checkpointer, items, 66, eval_loss=0.3)
    checkpointer.wait()
    assert checkpointer.all_steps() == [22, 66]
    assert checkpointer.best_step() == 22


# 5. The metrics file.

def _records(n):
    return [{"step": 5 * i, "split": "train", "loss": 1.0 / i} for i in range(1, n + 1)]


def test_a_torn_last_metrics_line_is_dropped_with_a_warning(tmp_path, caplog):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _records(3)) + '{"step": 20, "spl')
    with caplog.at_level(logging.WARNING):
        assert read_metrics(str(tmp_path)) == _records(3)
    assert "torn last line 4" in caplog.text and str(path) in caplog.text
    MetricWriter(str(tmp_path), tensorboard=False).truncate_after(10)
    assert read_metrics(str(path)) == _records(2)


def test_a_bad_metrics_line_inside_the_file_names_file_and_line(tmp_path):
    lines = [json.dumps(r) for r in _records(3)]
    lines[1] = lines[1][:-3]
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"metrics.jsonl line 2 is not JSON"):
        read_metrics(str(tmp_path))


def test_the_metrics_rewrite_is_atomic(tmp_path, monkeypatch):
    """A rewrite killed half-way leaves the old file whole (it used to be opened with "w")."""
    path = tmp_path / "metrics.jsonl"
    original = "".join(json.dumps(r) + "\n" for r in _records(4))
    path.write_text(original)
    writer = MetricWriter(str(tmp_path), tensorboard=False)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed during the rewrite")

    monkeypatch.setattr(os, "fsync", killed)  # the new file is written, not yet in place
    with pytest.raises(KeyboardInterrupt):
        writer.truncate_after(10)
    assert path.read_text() == original


# 7 (loop side) and 8: refused inputs and config changes.

def test_a_workdir_that_is_a_file_is_refused(tfds_dir, tmp_path, compile_counter):
    (tmp_path / "w").write_text("")
    with pytest.raises(ValueError, match="is a file, not a directory"):
        train_and_evaluate(digits_config(tfds_dir), str(tmp_path / "w"))
    assert compile_counter.count == 0


def test_load_state_without_a_run_says_so(tfds_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no trained run"):
        train.load_state(str(tmp_path), digits_config(tfds_dir))


def test_datasets_whose_batch_size_disagrees_with_the_config(tfds_dir, tmp_path, compile_counter):
    rng = np.random.default_rng(0)
    source = data.from_arrays(rng.integers(0, 255, (64, 8, 8, 1), dtype=np.uint8),
                              rng.integers(0, 10, 64), num_classes=10)
    datasets = data.make_datasets(source, source, batch_size=16, eval_batch_size=32, seed=0)
    config = digits_config(tfds_dir, batch_size=32, eval_batch_size=32)
    with pytest.raises(ValueError, match="training batch size of 16 but config.batch_size=32"):
        train_and_evaluate(config, str(tmp_path), datasets=datasets)
    assert compile_counter.count == 0


def test_endless_skipping_stops(tfds_dir, tmp_path):
    config = digits_config(tfds_dir, nonfinite="skip", max_consecutive_skips=3,
                           **{"optimizer.learning_rate": 1e38, "optimizer.schedule": "constant"})
    # The first update is finite (it makes the parameters huge); every later one is skipped.
    with pytest.raises(NonFiniteError, match=r"3 steps in a row were skipped .*max_consecutive_skips=3"):
        train_and_evaluate(config, str(tmp_path))


@pytest.fixture(scope="module")
def finished_run(tfds_dir, tmp_path_factory):
    """One epoch, checkpoints at steps 10, 20 and 22 (the last two kept)."""
    workdir = str(tmp_path_factory.mktemp("finished"))
    summary = train_and_evaluate(digits_config(tfds_dir, num_epochs=1,
                                               checkpoint_every_steps=10), workdir)
    return workdir, summary


def _copy_run(finished_run, tmp_path) -> str:
    import shutil

    workdir = str(tmp_path / "w")
    shutil.copytree(finished_run[0], workdir)
    return workdir


def test_a_rerun_over_a_damaged_latest_checkpoint_finishes(finished_run, tfds_dir, tmp_path):
    """It used to fall back, retrain, and die with StepAlreadyExistsError on every rerun."""
    import shutil

    workdir = _copy_run(finished_run, tmp_path)
    shutil.rmtree(os.path.join(workdir, "checkpoints", str(STEPS_PER_EPOCH), "state"))
    config = digits_config(tfds_dir, num_epochs=1, checkpoint_every_steps=10)
    summary = train_and_evaluate(config, workdir)
    assert summary["step"] == STEPS_PER_EPOCH
    assert summary["eval_accuracy"] == pytest.approx(finished_run[1]["eval_accuracy"], abs=1e-6)
    assert glob.glob(f"{workdir}/checkpoints.damaged/{STEPS_PER_EPOCH}-*/meta")
    assert train_and_evaluate(config, workdir)["step"] == STEPS_PER_EPOCH  # and again


def test_a_changed_config_is_refused_and_changes_nothing(finished_run, tfds_dir, compile_counter):
    workdir, _ = finished_run
    before = _tree(workdir)
    config = digits_config(tfds_dir, num_epochs=2, checkpoint_every_steps=10,
                           **{"optimizer.learning_rate": 0.01})
    with pytest.raises(train.ConfigChangedError) as refused:
        train_and_evaluate(config, workdir)
    message = str(refused.value)
    assert "num_epochs: 1 -> 2" in message and "optimizer.learning_rate: 0.003 -> 0.01" in message
    assert "--config.resume=restart" in message and "--config.resume=force" in message
    assert compile_counter.count == 0
    assert _tree(workdir) == before


def test_result_neutral_fields_may_change(finished_run, tfds_dir):
    workdir, summary = finished_run
    config = digits_config(tfds_dir, num_epochs=1, log_every_steps=7, eval_batch_size=128,
                           tensorboard=False, checkpoint_every_steps=0)
    again = train_and_evaluate(config, workdir)
    assert again["step"] == summary["step"]
    assert again["eval_accuracy"] == pytest.approx(summary["eval_accuracy"], abs=1e-6)


def test_a_field_added_after_the_run_counts_as_its_default():
    """A workdir written before a config field existed (e.g. ``plateau``) resumes under the
    default of that field, and is refused under any other value."""
    from jaxvision.train.workdir import config_as_json, config_differences

    config = train.default_config()
    saved = config_as_json(config)
    del saved["plateau"]
    defaults = config_as_json(train.default_config())
    assert config_differences(saved, config_as_json(config), defaults) == []
    config.plateau.metric = "eval_loss"
    assert config_differences(saved, config_as_json(config), defaults) == [
        "plateau.metric: '' -> 'eval_loss'"]
    assert "plateau.metric: (absent) -> 'eval_loss'" in config_differences(
        saved, config_as_json(config))


def test_restart_moves_the_old_run_aside(finished_run, tfds_dir, tmp_path):
    workdir = _copy_run(finished_run, tmp_path)
    old_files = _tree(workdir)
    config = digits_config(tfds_dir, num_epochs=1, resume="restart", model="mlp")
    summary = train_and_evaluate(config, workdir)
    assert summary["step"] == STEPS_PER_EPOCH
    (previous,) = glob.glob(f"{workdir}/previous/*")
    assert {os.path.relpath(os.path.join(previous, name), previous): value  # nothing lost
            for name, value in _tree(previous).items()} == old_files
    with open(os.path.join(workdir, "config.json")) as f:
        assert json.load(f)["model"] == "mlp"


# 6. A second signal stops at once (the graceful first one is tested end to end in
# test_resume.py).

def test_a_second_signal_stops_at_once(tmp_path):
    script = ("import os, signal, time\n"
              "from jaxvision.train.interrupt import StopRequest\n"
              "with StopRequest() as stop:\n"
              "    os.kill(os.getpid(), signal.SIGTERM)\n"
              "    time.sleep(0.5)\n"
              "    print('first', stop.signum, flush=True)\n"
              "    os.kill(os.getpid(), signal.SIGTERM)\n"
              "    time.sleep(5)\n"
              "    print('not reached', flush=True)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    # Exit 143 with 'not reached' unprinted: the second signal ended the 5 s sleep at once
    # (a wall-clock bound would also count the imports, which a loaded machine slows).
    assert done.returncode == 143
    assert done.stdout.split() == ["first", str(int(signal.SIGTERM))]
