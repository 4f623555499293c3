"""Classification through the engine reproduces the engine before its generalization (issue
"One engine for every task"): the quickstart's metrics for 3 epochs on one device equal
``golden/quickstart_3_epochs.metrics.jsonl``, written by commit a7c2a15 with

    c = experiments.quickstart.get_config(); c.num_epochs = 3; c.parallel = "none"
    c.tensorboard = False; c.data_dir = <fresh dir>; train.train_and_evaluate(c, workdir)

Its ``epoch`` fields were then renumbered from 1 (0, 1, 2 became 1, 2, 3: the numbering of
the log lines and ``summary.json``); no value changed.

The golden file predates the fast convolution as the default, so the run asks for XLA's
(``model_kwargs.conv = "xla"``), as the issue's "with the XLA convolution" says. Values are
compared to 1e-6 relative (on the machine that wrote the file they are equal
bitwise; the tolerance only spares another CPU's last-bit differences).

The file also predates the engine's own XLA:CPU options (``jaxvision.xla_options``: convolutions
on XLA's Eigen kernels rather than YNNPACK, which rounds differently: 1.6e-5 relative after 40
steps), so the run compiles with XLA's defaults there."""

import json
import os

import pytest

import experiments.quickstart as quickstart
from jaxvision import train, xla_options

GOLDEN = os.path.join(os.path.dirname(__file__), "golden", "quickstart_3_epochs.metrics.jsonl")


def test_quickstart_metrics_equal_the_golden_file(tfds_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(xla_options, "WITHOUT_YNNPACK", {})  # XLA's defaults, as in a7c2a15
    config = quickstart.get_config()
    config.num_epochs, config.parallel, config.tensorboard = 3, "none", False
    config.data_dir = tfds_dir
    config.model_kwargs = {"conv": "xla"}
    train.train_and_evaluate(config, str(tmp_path))
    with open(GOLDEN) as f:
        expected = [json.loads(line) for line in f]
    records = train.read_metrics(str(tmp_path))
    assert [sorted(r) for r in records] == [sorted(e) for e in expected]
    for record, golden in zip(records, expected):
        numbers = {k for k, v in golden.items() if isinstance(v, float)}
        assert {k: record[k] for k in golden if k not in numbers} == {
            k: golden[k] for k in golden if k not in numbers}
        assert {k: record[k] for k in numbers} == pytest.approx(
            {k: golden[k] for k in numbers}, rel=1e-6, abs=0), (record, golden)
