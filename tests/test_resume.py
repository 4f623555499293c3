"""Killed or stopped runs resume to exactly what an uninterrupted run ends with: the same
parameters (bitwise), the same kept checkpoints (latest and best) and the same metrics.

The runs are ``experiments.quickstart`` processes (through ``tests/kill_points.py``, which
marks the moments a kill aims at) with checkpoints every 4 steps, the latest one kept and an early "best" one. Metrics: a train record averages the steps since the previous record, so
when a run resumes at a step that is not a record's boundary (a graceful stop can land
anywhere) the first record after it averages only the steps after the resume. Every other
record, eval records included, is equal.
"""

import os
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

import experiments.quickstart as quickstart
from jaxvision import train

LOG_EVERY = 4
OVERRIDES = ["--config.num_epochs=3", "--config.checkpoint_every_steps=4",
             "--config.parallel=none", f"--config.log_every_steps={LOG_EVERY}",
             "--config.tensorboard=False", "--config.augment.ops=('crop',)",
             # "best" = the lowest accuracy: an early step, so that the kept set is
             # {best, latest} and a resume that forgot the best would show.
             "--config.keep_checkpoints=1", "--config.best_metric=eval_accuracy",
             "--config.best_mode=min"]
TOTAL_STEPS = 66
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _command(workdir, tfds_dir, *extra):
    return [sys.executable, os.path.join(ROOT, "tests", "kill_points.py"), f"--workdir={workdir}",
            f"--config.data_dir={tfds_dir}", *OVERRIDES, *extra]


def _env():
    return dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
                JAX_PLATFORMS="cpu")


def _config(tfds_dir):
    config = quickstart.get_config()
    config.data_dir = tfds_dir
    config.parallel = "none"
    config.augment.ops = ("crop",)
    return config


def _run(workdir, tfds_dir, *extra):
    done = subprocess.run(_command(workdir, tfds_dir, *extra), capture_output=True, text=True,
                          env=_env())
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def _run_until(workdir, tfds_dir, marker, *extra, signum=signal.SIGKILL):
    """Starts a run, sends ``signum`` when a line contains ``marker``; returns (code, lines)."""
    process = subprocess.Popen(_command(workdir, tfds_dir, *extra), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=_env())
    lines = []
    for line in process.stdout:
        lines.append(line)
        if marker in line:
            process.send_signal(signum)
            break
    lines += process.stdout.readlines()
    process.wait()
    assert any(marker in line for line in lines), "".join(lines[-30:])
    return process.returncode, lines


@pytest.fixture(scope="module")
def uninterrupted(tfds_dir, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("uninterrupted")
    _run(workdir, tfds_dir)
    return workdir


def _assert_same_run(workdir, reference, tfds_dir, *, straddling=()):
    """Bitwise-equal final state, the same kept checkpoints and best step, the same metrics
    (except the train records at the steps in ``straddling``)."""
    a = train.load_state(str(workdir), _config(tfds_dir))
    b = train.load_state(str(reference), _config(tfds_dir))
    assert int(a.step) == int(b.step) == TOTAL_STEPS
    for x, y in zip(jax.tree.leaves(a.checkpoint_items()), jax.tree.leaves(b.checkpoint_items()),
                    strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    kept = [train.Checkpointer(os.path.join(w, "checkpoints"), best_metric="eval_accuracy",
                               best_mode="min") for w in (workdir, reference)]
    assert kept[0].all_steps() == kept[1].all_steps()
    assert kept[0].best_step() == kept[1].best_step()
    assert len(kept[1].all_steps()) == 2  # the latest and an earlier best
    records, expected = train.read_metrics(str(workdir)), train.read_metrics(str(reference))
    assert [(r["step"], r["split"]) for r in records] == [(r["step"], r["split"]) for r in expected]
    differing = {r["step"] for r, e in zip(records, expected) if r != e}
    assert differing <= set(straddling), differing


def _resumed_from(output: str) -> int:
    line = next(line for line in output.splitlines() if "resumed from step" in line)
    return int(line.split("resumed from step ")[1].split()[0])


@pytest.mark.slow  # keeps the default suite under its time budget
def test_sigkill_mid_epoch_then_resume_is_bitwise_identical(tfds_dir, tmp_path, uninterrupted):
    code, _ = _run_until(tmp_path, tfds_dir, "saving checkpoint at step 8")  # mid-epoch 1
    assert code == -signal.SIGKILL
    output = _run(tmp_path, tfds_dir)
    # step 8 may still have been in flight when killed: then step 4 is the newest complete one
    assert _resumed_from(output) in (4, 8)
    _assert_same_run(tmp_path, uninterrupted, tfds_dir)


@pytest.mark.slow  # ~40-60 s: moved out of the 20-minute default suite
def test_sigint_and_sigterm_stop_gracefully_and_resume_exactly(tfds_dir, tmp_path,
                                                              uninterrupted):
    stops = []
    for signum, marker in ((signal.SIGINT, "step 12/66"), (signal.SIGTERM, "step 40/66")):
        code, lines = _run_until(tmp_path, tfds_dir, marker, signum=signum)
        assert code == 128 + signum
        (stop_line,) = [line for line in lines if "run the same command again to resume" in line]
        assert signal.Signals(signum).name in stop_line and str(tmp_path) in stop_line
        assert not any("Traceback" in line for line in lines), "".join(lines[-30:])
        step = int(stop_line.split("stopped at step ")[1].split()[0])
        assert int(marker.split()[1].split("/")[0]) <= step < TOTAL_STEPS
        checkpoints = train.Checkpointer(os.path.join(tmp_path, "checkpoints"))
        assert checkpoints.all_steps()[-1] == step  # saved at the step it stopped on
        stops.append(step)
    _run(tmp_path, tfds_dir)
    # The first train record after each stop averages only the steps after it.
    straddling = [-(-step // LOG_EVERY) * LOG_EVERY for step in stops]
    _assert_same_run(tmp_path, uninterrupted, tfds_dir, straddling=straddling)


@pytest.mark.slow
def test_kill_and_resume_matrix(tfds_dir, tmp_path, uninterrupted):
    """SIGKILL at six points in one run's life, resuming after each; it ends as the
    uninterrupted run does. Every resume lands on a record boundary (a checkpoint every 4
    steps, records every 4 steps and at each epoch's end), so all metrics are equal."""
    points = [
        ("KILLPOINT save 8", ()),  # during a checkpoint save
        ("KILLPOINT metrics-rewrite", ("--pause-rewrite",)),  # during the metrics rewrite
        ("step 16/66", ()),  # mid-epoch, a save just dispatched
        ("epoch 1 step 22", ()),  # evaluated, the epoch's checkpoint not yet saved
        ("KILLPOINT save 44", ()),  # the end-of-epoch save, with its metrics
        ("step 52/66", ()),  # mid-epoch in the last epoch
    ]
    resumed = []
    for marker, extra in points:
        code, lines = _run_until(tmp_path, tfds_dir, marker, *extra)
        assert code == -signal.SIGKILL, "".join(lines[-30:])
        assert os.path.getsize(tmp_path / "metrics.jsonl") > 0
        resumed += [_resumed_from(line) for line in lines if "resumed from step" in line]
    resumed.append(_resumed_from(_run(tmp_path, tfds_dir)))
    # Each run got further than the one before (a save in flight at the kill may be lost).
    assert resumed == sorted(resumed) and len(resumed) == len(points), resumed
    assert resumed[-1] >= 44, resumed
    _assert_same_run(tmp_path, uninterrupted, tfds_dir)


@pytest.mark.slow
def test_two_runs_in_one_workdir(tfds_dir, tmp_path):
    """The second run stops at once naming the first; the first ends undisturbed."""
    first = subprocess.Popen(_command(tmp_path, tfds_dir), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, env=_env())
    for line in first.stdout:
        if "step 4/66" in line:
            break
    second = subprocess.run(_command(tmp_path, tfds_dir), capture_output=True, text=True,
                            env=_env(), timeout=120)
    assert second.returncode == 1
    assert f"in use by another run (pid {first.pid} " in second.stderr
    first.stdout.read()
    assert first.wait() == 0
