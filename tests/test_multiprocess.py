"""Multi-process training on ``jax.distributed``, proven on loopback with ``jaxvision.launch``:
2 processes x 4 CPU devices train as 1 process x 8 devices do, each process reads its own rows
of every global batch, checkpoints move between process counts, process 0 alone writes the
workdir's files, and a killed process stops the job at once and the rerun resumes exactly.

The jobs run are in ``tests/multiprocess_job.py`` (tiny images carrying their example id) and
``experiments.quickstart``. The 1 x 8 references run in this process (conftest: 8 devices).
"""

import fcntl
import glob
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

import multiprocess_job as job
from jaxvision import data, train
from jaxvision.data.pipeline import TrainStream

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JOB = os.path.join(ROOT, "tests", "multiprocess_job.py")
CASES = ("jit", "jit_bn", "pmap", "pmap_bn")


def _env():
    return dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
                TF_CPP_MIN_LOG_LEVEL="3")


def _launch_command(*args, processes=2, devices=4):
    return [sys.executable, "-m", "jaxvision.launch", f"--num-processes={processes}",
            f"--devices-per-process={devices}", "-m", *args]


def _launch(*args, processes=2, devices=4, timeout=900):
    done = subprocess.run(_launch_command(*args, processes=processes, devices=devices),
                          capture_output=True, text=True, env=_env(), timeout=timeout, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    return done.stdout


def _ids_by_epoch(stream, epochs=(0, 1)):
    return {e: [[int(i) for i in b["image"][:, 0, 0, 0]] for b in stream.epoch(e)] for e in epochs}


@pytest.mark.parametrize("num_examples", [64, 70])
def test_process_shards_are_the_global_batches_split_by_rows(num_examples):
    """Per epoch, the processes' examples are disjoint and together are the single process's
    epoch, batch by batch: the split's examples exactly once when the batch divides it."""
    source = data.from_arrays(*job.images_with_ids(num_examples, 0), num_classes=10)
    single = _ids_by_epoch(TrainStream(source, batch_size=16, seed=3))
    assert single[0] != single[1]  # reshuffled by (seed, epoch)
    for count in (2, 4):
        shards = [_ids_by_epoch(TrainStream(source, batch_size=16, seed=3, process_index=i,
                                            process_count=count)) for i in range(count)]
        for epoch, batches in single.items():
            assert len(batches) == num_examples // 16
            for step, batch in enumerate(batches):
                # process i holds rows [4i, 4i + 4) of the global batch: its devices' rows
                assert sum((s[epoch][step] for s in shards), []) == batch
            seen = sorted(sum((sum(s[epoch], []) for s in shards), []))
            assert seen == sorted(sum(batches, []))
            assert len(set(seen)) == len(seen)
            if num_examples % 16 == 0:
                assert seen == list(range(num_examples))
    # a resumed process skips to the same rows
    resumed = TrainStream(source, batch_size=16, seed=3, process_index=1, process_count=2)
    tail = [[int(i) for i in b["image"][:, 0, 0, 0]] for b in resumed.epoch(1, start_step=2)]
    assert tail == [batch[8:] for batch in single[1][2:]]


@pytest.mark.slow
def test_launcher_stops_the_job_when_a_process_fails():
    """Process 1 crashes with code 3 while process 0 waits for it for ever: the launcher
    stops process 0 at once and exits with 3, naming process 1."""
    start = time.monotonic()
    done = subprocess.run(_launch_command(JOB, "fail", "3"), capture_output=True, text=True,
                          env=_env(), timeout=120, cwd=ROOT)
    elapsed = time.monotonic() - start
    assert done.returncode == 3, done.stdout[-3000:]
    out = done.stdout
    assert "[p0] process 0 of 2 joined" in out and "[p1] process 1 of 2 joined" in out
    assert re.search(r"\[launch\] process 1 \(pid \d+\) exited with code 3; stopping the others",
                     out), out[-2000:]
    # p0 was stopped by the launcher: SIGTERM, then SIGKILL after --grace (JAX's preemption
    # service catches SIGTERM)
    assert re.search(r"job failed: process 1 exited with code 3 \(p0: was killed by "
                     r"SIG(TERM|KILL)\)", out), out[-2000:]
    assert elapsed < 60, elapsed  # start-up included; the stop itself takes milliseconds


def _max_diff(a, b):
    assert sorted(a.files) == sorted(b.files)
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a.files)


def _once(tmp_path_factory, name: str, build) -> pathlib.Path:
    """``build(folder)`` run once per test session, even across pytest-xdist workers (they
    share the base temporary folder's parent): the others wait for it and reuse the folder."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    folder = root / name
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "DONE").exists():
            shutil.rmtree(folder, ignore_errors=True)  # a failed attempt's leftovers
            folder.mkdir()
            build(folder)
            (folder / "DONE").write_text("")
    return folder


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """Every case trained by 2 processes x 4 devices, in one launch; and its output."""
    def build(out):
        (out / "stdout.txt").write_text(_launch(JOB, "train", str(out), *CASES))

    out = _once(tmp_path_factory, "two_processes", build)
    return out, (out / "stdout.txt").read_text()


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """Every case trained by this process on its 8 devices."""
    return _once(tmp_path_factory, "one_process",
                 lambda out: job.train_cases(str(out), list(CASES)))


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_two_processes_train_as_one(two_processes, one_process, case):
    two, one = two_processes[0] / case, one_process / case
    a, b = np.load(two / "final.npz"), np.load(one / "final.npz")
    # it trained: the comparison is not of idle parameters (the second epoch moved them)
    config = job.config_for(case)
    after_one_epoch = train.load_state(str(one), config, step=4)
    assert max(float(np.max(np.abs(np.asarray(x) - b[f"params/{'/'.join(k.key for k in path)}"])))
               for path, x in jax.tree_util.tree_flatten_with_path(
                   jax.device_get(after_one_epoch.params))[0]) > 1e-3
    tolerance = 1e-5 if case.endswith("_bn") else 1e-6
    assert _max_diff(a, b) < tolerance
    if case.endswith("_bn"):
        assert any(k.startswith("batch_stats/") for k in a.files)
    # same evaluation (the sums are gathered over both processes' shards of the eval set)
    assert json.loads((two / "summary.json").read_text())["eval_accuracy"] == pytest.approx(
        json.loads((one / "summary.json").read_text())["eval_accuracy"], abs=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["jit", "pmap_bn"])
def test_each_process_trained_on_its_own_examples(two_processes, one_process, case):
    """By example id: in each epoch the two processes' examples are disjoint and together
    are the whole train split, each example once, as the 1-process run saw it."""
    two = two_processes[0] / case
    seen = [json.loads((two / f"ids_p{i}.json").read_text()) for i in (0, 1)]
    reference = json.loads((one_process / case / "ids_p0.json").read_text())
    assert set(reference) == {"0", "1"}
    for epoch in reference:
        p0, p1 = seen[0][epoch], seen[1][epoch]
        assert len(p0) == len(p1) == job.NUM_TRAIN // 2
        assert not set(p0) & set(p1)
        assert sorted(p0 + p1) == list(range(job.NUM_TRAIN))
        # global batch b = process 0's 8 rows then process 1's
        rows = job.BATCH // 2
        merged = sum(([*p0[i:i + rows], *p1[i:i + rows]] for i in range(0, len(p0), rows)), [])
        assert merged == reference[epoch]


@pytest.mark.slow
def test_files_are_written_once_by_process_zero(two_processes, one_process):
    """metrics.jsonl, TensorBoard events, curves.png and summary.json: one copy each with the
    1-process run's records; process 1 logs no progress."""
    out, stdout = two_processes
    for case in CASES:
        two, one = out / case, one_process / case
        records, expected = train.read_metrics(str(two)), train.read_metrics(str(one))
        assert [(r["step"], r["split"]) for r in records] == \
            [(r["step"], r["split"]) for r in expected]
        events = glob.glob(str(two / "tensorboard" / "events.out.tfevents.*"))
        assert len(events) == 1, events
        assert _scalar_counts(events[0]) == _scalar_counts(
            glob.glob(str(one / "tensorboard" / "events.out.tfevents.*"))[0])
        assert (two / "curves.png").stat().st_size > 1000
        assert (two / "summary.json").exists() and (two / "config.json").exists()
    p0 = [line for line in stdout.splitlines() if line.startswith("[p0] ")]
    p1 = [line for line in stdout.splitlines() if line.startswith("[p1] ")]
    assert any("epoch 2 step 8" in line for line in p0)
    assert not any(re.search(r"step \d+/\d+|epoch \d+ step|saving checkpoint", line)
                   for line in p1), p1


def _scalar_counts(path: str) -> dict[str, int]:
    import tensorflow as tf

    counts: dict[str, int] = {}
    for event in tf.compat.v1.train.summary_iterator(path):
        for value in event.summary.value:
            counts[value.tag] = counts.get(value.tag, 0) + 1
    return counts


def _state_npz(state, path):
    job.save_state(str(path), state)
    return np.load(path)


@pytest.mark.slow
def test_checkpoints_move_between_process_counts(two_processes, one_process, tmp_path):
    """Saved by 2 processes, restored by 1 (8 devices); saved by 1, restored by 2 x 4: the
    arrays are bitwise those the saving run held."""
    for case in ("jit_bn", "pmap"):
        config = job.config_for(case)
        saved_by_two = two_processes[0] / case
        restored = train.load_state(str(saved_by_two), config,
                                    parallel=train.make_parallel(config.parallel))
        assert int(restored.step) == 8
        a, b = _state_npz(restored, tmp_path / f"{case}_in_one.npz"), np.load(
            saved_by_two / "final.npz")
        assert _max_diff(a, b) == 0.0
    _launch(JOB, "restore", str(one_process / "jit_bn"), "jit_bn", str(tmp_path / "in_two.npz"))
    assert _max_diff(np.load(tmp_path / "in_two.npz"),
                     np.load(one_process / "jit_bn" / "final.npz")) == 0.0


QUICKSTART = ["--config.num_epochs=2", "--config.checkpoint_every_steps=4",
              "--config.log_every_steps=4", "--config.augment.ops=('crop',)",
              "--config.tensorboard=False"]


def _quickstart(workdir, tfds_dir):
    return _launch_command("experiments.quickstart", f"--workdir={workdir}",
                           f"--config.data_dir={tfds_dir}", *QUICKSTART)


def _quickstart_config(tfds_dir):
    import experiments.quickstart as quickstart

    config = quickstart.get_config()
    config.data_dir = tfds_dir
    config.augment.ops = ("crop",)
    return config


@pytest.fixture(scope="module")
def quickstart_reference(tfds_dir, tmp_path_factory):
    """An uninterrupted 2-process quickstart run."""
    def build(reference):
        done = subprocess.run(_quickstart(reference, tfds_dir), capture_output=True, text=True,
                              env=_env(), timeout=900, cwd=ROOT)
        assert done.returncode == 0, done.stdout[-4000:]

    return _once(tmp_path_factory, "uninterrupted", build)


def _assert_same_end(workdir, reference, tfds_dir):
    config = _quickstart_config(tfds_dir)
    a, b = (train.load_state(str(w), config, parallel=train.make_parallel("jit"))
            for w in (workdir, reference))
    assert int(a.step) == int(b.step) == 44
    for x, y in zip(jax.tree.leaves(a.checkpoint_items()), jax.tree.leaves(b.checkpoint_items()),
                    strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    # the eval records (every epoch's) are equal too
    evals = [[r for r in train.read_metrics(str(w)) if r["split"] == "eval"]
             for w in (workdir, reference)]
    assert evals[0] == evals[1] and len(evals[0]) == 2


@pytest.mark.slow
@pytest.mark.long  # 2 min; the SIGKILL test keeps the launcher's stop-and-resume in CI
def test_sigterm_to_the_launcher_stops_every_process_at_one_step(tfds_dir, tmp_path,
                                                                 quickstart_reference):
    """SIGTERM to the launcher reaches every process; they agree on a step, save it together
    and exit 143; the rerun resumes from that step and ends as the uninterrupted run."""
    launcher = subprocess.Popen(_quickstart(tmp_path, tfds_dir), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=_env(), cwd=ROOT)
    lines = []
    for line in launcher.stdout:
        lines.append(line)
        if "step 8/44" in line:
            launcher.send_signal(signal.SIGTERM)
            break
    lines += launcher.stdout.readlines()
    out = "".join(lines)
    assert launcher.wait(timeout=300) == 128 + signal.SIGTERM, out[-3000:]
    assert "[launch] received SIGTERM; passing it to every process" in out
    stops = [int(m) for m in re.findall(r"\[p[01]\] .*SIGTERM: stopped at step (\d+)", out)]
    assert len(stops) == 2 and stops[0] == stops[1] >= 8, out[-3000:]
    assert train.Checkpointer(tmp_path / "checkpoints").all_steps()[-1] == stops[0]
    rerun = subprocess.run(_quickstart(tmp_path, tfds_dir), capture_output=True, text=True,
                           env=_env(), timeout=900, cwd=ROOT)
    assert rerun.returncode == 0, rerun.stdout[-4000:]
    assert f"resumed from step {stops[0]} " in rerun.stdout
    _assert_same_end(tmp_path, quickstart_reference, tfds_dir)


@pytest.mark.slow
def test_sigkill_of_one_process_stops_the_job_and_the_rerun_resumes_exactly(
        tfds_dir, tmp_path, quickstart_reference):
    """SIGKILL of process 1 mid-run: the launcher stops process 0 within 30 s and names
    process 1; rerunning the launch resumes from the last checkpoint and ends bitwise equal to
    an uninterrupted 2-process run."""

    killed = tmp_path / "killed"
    launcher = subprocess.Popen(_quickstart(killed, tfds_dir), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=_env(), cwd=ROOT)
    lines, pids, killed_at = [], {}, None
    for line in launcher.stdout:
        lines.append(line)
        found = re.match(r"\[launch\] process (\d+): pid (\d+)", line)
        if found:
            pids[int(found[1])] = int(found[2])
        if "saving checkpoint at step 12" in line:  # mid-epoch 1 (22 steps per epoch)
            os.kill(pids[1], signal.SIGKILL)
            killed_at = time.monotonic()
            break
    lines += launcher.stdout.readlines()
    code = launcher.wait()
    stopped_after = time.monotonic() - killed_at
    out = "".join(lines)
    assert killed_at is not None, out[-3000:]
    assert stopped_after < 30, stopped_after
    assert code == 128 + signal.SIGKILL, out[-3000:]
    assert f"process 1 (pid {pids[1]}) was killed by SIGKILL; stopping the others" in out
    assert "job failed: process 1 was killed by SIGKILL" in out

    rerun = subprocess.run(_quickstart(killed, tfds_dir), capture_output=True, text=True,
                           env=_env(), timeout=900, cwd=ROOT)
    assert rerun.returncode == 0, rerun.stdout[-4000:]
    resumed = re.search(r"\[p0\] .*resumed from step (\d+)", rerun.stdout)
    assert resumed and int(resumed[1]) in (8, 12), rerun.stdout[-3000:]  # 12 may be in flight
    print(f"launcher stopped {stopped_after:.1f} s after the SIGKILL; resumed from step "
          f"{resumed[1]}")
    _assert_same_end(killed, quickstart_reference, tfds_dir)
