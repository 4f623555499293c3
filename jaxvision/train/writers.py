"""Where metrics go: a JSONL file (easy to read back in a notebook) and TensorBoard events.

The JSONL file is the record of truth: ``read_metrics`` reads it, the curves are drawn from it,
and on resume the lines past the restored step are dropped so that history never forks. That
rewrite is atomic (a new file, fsynced, renamed over the old one), and a last line torn by a
kill is dropped with a warning.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from jaxvision.train.workdir import write_text_atomic

log = logging.getLogger("jaxvision.train")


# What the train step returns for the loop's own use, not as a metric to log.
INTERNAL_METRICS = frozenset({"finite"})


def metric_name(split: str | None, name: str) -> str:
    """The one name of a metric everywhere it is shown: ``<split>_<name>`` (``train_loss``,
    ``eval_accuracy``, ``test_accuracy``), or ``name`` without a split."""
    return f"{split}_{name}" if split else name


class MetricWriter:
    """``<workdir>/<name>.jsonl`` plus TensorBoard events (``tensorboard/`` for the main
    metrics, ``tensorboard/<name>/`` for any other stream such as monitoring)."""

    def __init__(self, workdir: str, *, name: str = "metrics", tensorboard: bool = True):
        os.makedirs(workdir, exist_ok=True)
        self.path = os.path.join(workdir, f"{name}.jsonl")
        self._tb = None
        if tensorboard:
            from tensorboardX import SummaryWriter

            subdir = () if name == "metrics" else (name,)
            self._tb = SummaryWriter(os.path.join(workdir, "tensorboard", *subdir))

    def truncate_after(self, step: int) -> None:
        """Drops records written after ``step`` by a run that was interrupted."""
        if not os.path.exists(self.path):
            return
        kept = [r for r in read_metrics(self.path) if r["step"] <= step]
        write_text_atomic(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def write(self, step: int, metrics: dict[str, Any], *, split: str | None = None,
              **extra) -> None:
        """One JSONL record (``{"step", "split", ..., "<metric>": value}``; the training loop
        adds ``epoch``, numbered from 1 as in its log lines); TensorBoard tags
        are :func:`metric_name` ``(split, metric)``, e.g. ``eval_accuracy``: the name the log
        lines, ``summary.json`` and ``config.best_metric`` use. The step's internal flags
        (``INTERNAL_METRICS``, e.g. ``finite``) are not metrics and are left out."""
        metrics = {k: float(v) for k, v in metrics.items() if k not in INTERNAL_METRICS}
        record = {"step": int(step), **({"split": split} if split else {}), **extra, **metrics}
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self._tb is not None:
            for name, value in metrics.items():
                self._tb.add_scalar(metric_name(split, name), value, int(step))

    def histogram(self, step: int, tag: str, values) -> None:
        """A TensorBoard histogram (not written to the JSONL file)."""
        if self._tb is not None:
            self._tb.add_histogram(tag, values, int(step))

    def close(self) -> None:
        if self._tb is not None:
            self._tb.flush()
            self._tb.close()


def read_metrics(path: str) -> list[dict]:
    """The records of a ``metrics.jsonl`` file (or of ``<workdir>/metrics.jsonl``).

    A torn last line (a run killed while appending) is dropped with a warning; a bad line
    anywhere else is an error naming the file and the line."""
    if os.path.isdir(path):
        path = os.path.join(path, "metrics.jsonl")
    with open(path) as f:
        lines = [(number, line) for number, line in enumerate(f, 1) if line.strip()]
    records = []
    for number, line in lines:
        try:
            records.append(json.loads(line))
        except ValueError as error:
            if number == lines[-1][0]:
                log.warning("%s: dropped a torn last line %d (%r)", path, number, line[:80])
                break
            raise ValueError(f"{path} line {number} is not JSON ({error}): {line[:80]!r}") from None
    return records


def plot_curves(records: list[dict], path: str, *, metrics: tuple[str, ...] = ("loss", "accuracy")) -> None:
    """Train and eval curves of ``metrics`` against the step, one panel each, saved as PNG."""
    from jaxvision import plots

    fig, axes = plots.figure((5 * len(metrics), 3.6), ncols=len(metrics))
    for ax, name in zip(axes.reshape(-1) if len(metrics) > 1 else [axes], metrics):
        for split, style, color in (("train", "-", "C0"), ("eval", "o-", "C1")):
            points = [(r["step"], r[name]) for r in records if r["split"] == split and name in r]
            if points:
                steps, values = zip(*points)
                ax.plot(steps, values, style, color=color, label=split, markersize=3)
        ax.set_xlabel("step")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend()
    plots.save(fig, path, dpi=120)
