"""Metric records: JSONL and TensorBoard events under one naming, readable by TensorBoard."""

import json

import pytest

from jaxvision.train.writers import MetricWriter, metric_name, read_metrics


@pytest.mark.slow  # importing tensorboard's event reader imports TensorFlow: over 3 s
def test_tensorboard_reads_the_events_under_the_names_the_logs_use(tmp_path):
    writer = MetricWriter(str(tmp_path))
    writer.write(10, {"loss": 0.5, "accuracy": 0.75, "finite": 1.0}, split="train", epoch=1)
    writer.write(20, {"loss": 0.25, "accuracy": 0.875}, split="eval", epoch=1)
    writer.close()

    records = read_metrics(str(tmp_path))
    assert all("finite" not in record for record in records)  # an internal flag, not a metric
    assert records[0] == {"step": 10, "split": "train", "epoch": 1, "loss": 0.5,
                          "accuracy": 0.75}

    # The tensorboard package (a dependency: `tensorboard --logdir W` must start) reads them.
    from tensorboard import program
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert tags == {"train_loss", "train_accuracy", "eval_loss", "eval_accuracy"}
    assert metric_name("eval", "accuracy") == "eval_accuracy"  # as in summary.json
    (point,) = events.Scalars("eval_accuracy")
    assert (point.step, point.value) == (20, 0.875)
    board = program.TensorBoard()
    board.configure(argv=[None, "--logdir", str(tmp_path)])
    assert board.flags.logdir == str(tmp_path)
    json.dumps(records)  # plain JSON all the way


def test_the_internal_finite_flag_is_not_logged(tmp_path):
    writer = MetricWriter(str(tmp_path), tensorboard=False)
    writer.write(5, {"loss": 1.5, "grad_norm": 2.0, "finite": 0.0}, split="train", epoch=1)
    writer.close()
    assert read_metrics(str(tmp_path)) == [
        {"step": 5, "split": "train", "epoch": 1, "loss": 1.5, "grad_norm": 2.0}]
    assert [metric_name(s, "loss") for s in ("train", "eval", None)] == [
        "train_loss", "eval_loss", "loss"]
