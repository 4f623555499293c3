"""A run's workdir: one run at a time, and the record of how its checkpoints were made.

``WorkdirLock`` keeps a second run out of a busy workdir (an ``flock`` that the kernel drops
when its owner dies, so a dead run's lock never blocks). ``check_config`` compares a rerun's
config with the ``config.json`` the checkpoints were made with and refuses changes that would
change the result. ``move_run_aside`` starts a workdir afresh without deleting anything.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import sys
import time

from flax import traverse_util

log = logging.getLogger("jaxvision.train")

LOCK_FILE = ".lock"
CONFIG_FILE = "config.json"
# What a run writes into its workdir; `move_run_aside` moves exactly these.
RUN_FILES = ("checkpoints", "checkpoints.damaged", CONFIG_FILE, "model_input.json",
             "input_spec.json", "class_names.json",
             "metrics.jsonl", "summary.json", "curves.png", "tensorboard")

# Config fields that a rerun may change: they do not change the trained model or its metrics.
RESULT_NEUTRAL_FIELDS = frozenset({
    "log_every_steps", "eval_batch_size", "tensorboard", "checkpoint_every_steps",
    "keep_checkpoints", "data_dir", "download", "cache_data", "parallel", "num_devices",
    "resume",
})


class WorkdirBusyError(RuntimeError):
    """Another live run holds the workdir."""


class ConfigChangedError(ValueError):
    """A rerun's config differs from the one the workdir's checkpoints were made with."""


class WorkdirLock:
    """An exclusive lock on ``workdir`` for the life of a run (a context manager).

    The lock file names its owner (pid, host, command line) for the message a second run
    prints. It is removed on release; a run that checks the file it locked is still the one at
    the path cannot race with a release."""

    def __init__(self, workdir: str):
        self.path = os.path.join(workdir, LOCK_FILE)
        self._fd: int | None = None

    def __enter__(self) -> "WorkdirLock":
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise WorkdirBusyError(
                    f"the workdir {os.path.dirname(self.path)} is in use by another run "
                    f"({_describe_owner(self.path)}); wait for it to end, stop it, or use "
                    "another --workdir") from None
            except OSError as error:  # a file system without flock: say so, do not stop
                os.close(fd)
                log.warning("cannot lock the workdir (%s); make sure no other run uses it", error)
                return self
            if _same_file(fd, self.path):  # not unlinked by a release since we opened it
                break
            os.close(fd)
        owner = {"pid": os.getpid(), "host": socket.gethostname(),
                 "started": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv)}
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(owner).encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.unlink(self.path)
            os.close(self._fd)  # closing drops the flock
            self._fd = None


def _same_file(fd: int, path: str) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _describe_owner(path: str) -> str:
    try:
        with open(path) as f:
            owner = json.load(f)
        return (f"pid {owner['pid']} on {owner['host']}, started {owner['started']}: "
                f"{owner['command']}")
    except (OSError, ValueError, KeyError):
        return "owner unknown"


def config_differences(saved: dict, config: dict, defaults: dict | None = None) -> list[str]:
    """``field: saved -> new`` for every field that changes the result. A field the saved
    config lacks (written before the field existed) counts as its value in ``defaults``."""
    old = traverse_util.flatten_dict(saved, sep=".")
    new = traverse_util.flatten_dict(config, sep=".")
    defaults = traverse_util.flatten_dict(defaults or {}, sep=".")
    missing = object()
    lines = []
    for field in sorted(set(old) | set(new)):
        if field.split(".")[0] in RESULT_NEUTRAL_FIELDS:
            continue
        a, b = old.get(field, defaults.get(field, missing)), new.get(field, missing)
        if isinstance(a, list):
            a = tuple(a)
        if isinstance(b, list):
            b = tuple(b)
        if a != b:
            show = lambda v: "(absent)" if v is missing else repr(v)  # noqa: E731
            lines.append(f"{field}: {show(a)} -> {show(b)}")
    return lines


def config_as_json(config) -> dict:
    """The config as ``config.json`` holds it (tuples become lists)."""
    return json.loads(config.to_json_best_effort())


def check_config(workdir: str, config) -> list[str]:
    """The result-changing differences between ``config`` and the ``config.json`` of the run in
    ``workdir`` (none for a new workdir); with ``config.resume == 'auto'`` any difference
    raises ``ConfigChangedError``."""
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(path):
        return []
    from jaxvision.train.config import default_config

    with open(path) as f:
        saved = json.load(f)
    differences = config_differences(saved, config_as_json(config),
                                     config_as_json(default_config()))
    if differences and config.resume == "auto":
        raise ConfigChangedError(
            f"{workdir} holds a run made with another config, and resuming it under this one "
            "would change its result:\n  " + "\n  ".join(differences) + "\nUse a new --workdir, "
            "or --config.resume=restart to move the old run aside and start afresh, or "
            "--config.resume=force to continue it under the new config.")
    return differences


def keep_old_config(workdir: str) -> None:
    """Before a resume forced under a changed config: the old ``config.json`` stays, renamed
    with the time."""
    kept = unused_path(os.path.join(workdir, "config.until-{}.json"))
    os.replace(os.path.join(workdir, CONFIG_FILE), kept)
    log.warning("resuming under a changed config; the previous one is kept in %s", kept)


def move_run_aside(workdir: str) -> str | None:
    """Moves the run files of ``workdir`` into ``workdir/previous/<time>/``; returns that
    folder (None when there was nothing to move)."""
    present = [name for name in RUN_FILES if os.path.exists(os.path.join(workdir, name))]
    if not present:
        return None
    destination = unused_path(os.path.join(workdir, "previous", "{}"))
    os.makedirs(destination)
    for name in present:
        os.replace(os.path.join(workdir, name), os.path.join(destination, name))
    log.warning("moved the previous run in %s to %s", workdir, destination)
    return destination


def unused_path(pattern: str) -> str:
    """``pattern`` with ``{}`` filled by the time (and a counter if that path exists): names
    for what is kept aside, never overwriting an earlier one."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    path, count = pattern.format(stamp), 1
    while os.path.exists(path):
        path, count = pattern.format(f"{stamp}-{count}"), count + 1
    return path


def write_json_atomic(path: str, value) -> None:
    """Writes ``value`` as JSON so that a crash leaves either the old file or the new one."""
    write_text_atomic(path, json.dumps(value, indent=2))


def write_text_atomic(path: str, text: str) -> None:
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)
