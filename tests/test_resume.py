"""A run killed with SIGKILL mid-epoch and restarted ends bitwise where an uninterrupted run
ends (same seed, same data order, same keys)."""

import os
import signal
import subprocess
import sys

import jax
import numpy as np

import experiments.quickstart as quickstart
from jaxvision import train

OVERRIDES = ["--config.num_epochs=3", "--config.checkpoint_every_steps=4",
             "--config.parallel=none", "--config.log_every_steps=4",
             "--config.tensorboard=False", "--config.augment.ops=('crop',)"]


def _command(workdir, tfds_dir):
    return [sys.executable, "-m", "experiments.quickstart", f"--workdir={workdir}",
            f"--config.data_dir={tfds_dir}", *OVERRIDES]


def _env():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""),
                JAX_PLATFORMS="cpu")


def _config(tfds_dir):
    config = quickstart.get_config()
    config.data_dir = tfds_dir
    config.parallel = "none"
    config.augment.ops = ("crop",)
    return config


def test_sigkill_mid_epoch_then_resume_is_bitwise_identical(tfds_dir, tmp_path):
    killed, uninterrupted = tmp_path / "killed", tmp_path / "uninterrupted"
    process = subprocess.Popen(_command(killed, tfds_dir), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=_env())
    seen = []
    for line in process.stdout:
        seen.append(line)
        if "saving checkpoint at step 8" in line:  # step 8 of 22: mid-epoch 1
            process.send_signal(signal.SIGKILL)
            break
    process.wait()
    assert process.returncode == -signal.SIGKILL, "".join(seen[-20:])

    resumed = subprocess.run(_command(killed, tfds_dir), capture_output=True, text=True,
                             env=_env())
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    resumed_from = [line for line in resumed.stderr.splitlines() if "resumed from step" in line]
    assert resumed_from, resumed.stderr[-3000:]
    step = int(resumed_from[0].split("resumed from step ")[1].split()[0])
    # step 8 may still have been in flight when killed: then step 4 is the newest complete one
    assert step in (4, 8)  # restarted mid-epoch

    clean = subprocess.run(_command(uninterrupted, tfds_dir), capture_output=True, text=True,
                           env=_env())
    assert clean.returncode == 0, clean.stderr[-3000:]

    a = train.load_state(str(killed), _config(tfds_dir))
    b = train.load_state(str(uninterrupted), _config(tfds_dir))
    assert int(a.step) == int(b.step) == 66
    for x, y in zip(jax.tree.leaves(a.checkpoint_items()), jax.tree.leaves(b.checkpoint_items()),
                    strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    # the metrics history was cut back at the restored step, not duplicated
    steps = [r["step"] for r in train.read_metrics(str(killed)) if r["split"] == "train"]
    assert steps == sorted(set(steps))
