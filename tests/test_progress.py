"""Progress: a bar with rate and ETA on a terminal, plain log lines elsewhere."""

import logging

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
