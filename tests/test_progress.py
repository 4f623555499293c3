"""Progress: a bar with rate and ETA on a terminal, plain log lines elsewhere."""

import logging

import pytest

from jaxvision.train.progress import Progress


def test_bar_shows_rate_eta_and_metrics(capsys):
    progress = Progress(10, use_bar=True)
    for step in range(1, 11):
        progress.update(step, {"loss": 0.5} if step == 10 else None)
    progress.close()
    err = capsys.readouterr().err
    assert "10/10" in err and "step/s" in err and "<00:00" in err and "loss=0.5" in err


def test_plain_lines_every_n_steps(caplog):
    with caplog.at_level(logging.INFO, logger="jaxvision.train"):
        progress = Progress(10, log_every=5, use_bar=False)
        for step in range(1, 11):
            progress.update(step)
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split()[1] for line in lines] == ["5/10", "10/10"]
    assert all("steps/s" in line and "eta" in line for line in lines)


def test_default_handler_prints_once_without_logging_config_and_defers_to_one(
        monkeypatch, capsys):
    """Plain Python or a notebook (no logging configured, or only absl's bare basicConfig
    handler): jaxvision's lines print on stderr once. An application's own root handler gets
    them instead, and nothing else prints. The handler can be turned off."""
    from jaxvision.train import progress

    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    log = logging.getLogger("jaxvision.train")
    log.info("plain %d", 1)
    absl_like = logging.StreamHandler()  # what absl's logging.basicConfig() installs
    absl_like.setFormatter(logging.Formatter(logging.BASIC_FORMAT))
    root.handlers = [absl_like]
    log.info("with absl's handler")
    err = capsys.readouterr().err
    assert err.count("plain 1") == 1 and err.count("with absl's handler") == 1
    assert "INFO:jaxvision" not in err

    class Collect(logging.Handler):
        records = []

        def emit(self, record):
            self.records.append(record.getMessage())

    root.handlers = [Collect()]
    log.info("configured")
    assert Collect.records == ["configured"] and capsys.readouterr().err == ""
    progress.disable_default_handler()
    try:
        log.info("propagated")
        assert Collect.records == ["configured", "propagated"]
        assert capsys.readouterr().err == ""
    finally:
        progress.install_default_handler()


@pytest.mark.slow  # a fresh interpreter imports TensorFlow and builds digits: about 20 s
def test_plain_python_shows_progress_and_no_tensorflow_or_tfds_chatter(tmp_path):
    """A script (no logging configured, TF_CPP_MIN_LOG_LEVEL unset) that builds an embedded
    data set and reports progress prints jaxvision's lines and nothing else on stderr: no TF
    start-up banner, no TFDS "Downloading and preparing" or absl warnings; the data set goes
    into the jaxvision cache, not ~/tensorflow_datasets."""
    import os
    import subprocess
    import sys

    script = ("from jaxvision.data import from_tfds\n"
              "from jaxvision.train.progress import Progress\n"
              "source = from_tfds('digits', 'train')\n"
              "progress = Progress(10, log_every=5, use_bar=False)\n"
              "for step in range(1, 11):\n"
              "    progress.update(step, {'loss': 0.5} if step == 10 else None)\n"
              "print(source.num_examples)\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "TFDS_DATA_DIR")}
    env.update(JAXVISION_CACHE=str(tmp_path / "cache"), HOME=str(tmp_path), PYTHONPATH=root,
               JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["1438"]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 3, done.stderr
    assert "building the embedded data set digits in " + str(tmp_path / "cache" / "datasets") \
        in lines[0]
    assert "step 5/10" in lines[1] and "step 10/10 train_loss=0.5" in lines[2]
    assert (tmp_path / "cache" / "datasets" / "digits").is_dir()
    assert not (tmp_path / "tensorflow_datasets").exists()
