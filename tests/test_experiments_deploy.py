"""The deployment experiments: documented, and (slow step) end to end on digits."""

import importlib
import json

import pytest

EXPERIMENTS = ("export_and_deploy", "robustness_and_monitoring")


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_deployment_experiment_documents_its_command_and_result(name):
    module = importlib.import_module(f"experiments.{name}")
    for part in ("Command:", "Expected:", "Runtime:", f"python -m experiments.{name}"):
        assert part in module.__doc__, (name, part)
    assert module.get_config().train.dataset == "digits"


@pytest.mark.slow
@pytest.mark.long
def test_export_and_deploy_runs_every_runtime(tfds_dir, tmp_path):
    from experiments import export_and_deploy as experiment

    config = experiment.get_config()
    config.train.data_dir, config.train.num_epochs, config.latency_images = tfds_dir, 3, 4
    results = experiment.main(config, str(tmp_path))
    rows = {row["format"]: row for row in results["formats"]}
    formats, missing = experiment.available_formats()
    assert set(rows) == {"jax (in process)", *formats} and not missing
    for name, row in rows.items():
        if name.endswith("int8"):
            assert row["top1_agreement"] >= 0.97 and row["bytes"] < 0.3 * rows[name[:-5]]["bytes"]
        else:
            assert row["max_abs_diff"] < 1e-4
    assert (tmp_path / "formats.png").exists()
    assert json.loads((tmp_path / "results.json").read_text())["formats"][0]["accuracy"] > 0.9


@pytest.mark.slow
@pytest.mark.long
def test_robustness_and_monitoring_flags_shifted_streams_only(tfds_dir, tmp_path):
    from experiments import robustness_and_monitoring as experiment

    config = experiment.get_config()
    config.train.data_dir, config.train.num_epochs = tfds_dir, 3
    streams = experiment.main(config, str(tmp_path))["streams"]
    assert streams["clean"]["drift_rate"] == 0 and streams["clean"]["accuracy"] > 0.9
    for kind in ("noise", "blur", "contrast", "jpeg"):
        assert streams[f"{kind}_5"]["drift_rate"] == 1
        assert streams[f"{kind}_5"]["accuracy"] < streams["clean"]["accuracy"]
    assert (tmp_path / "corruption_curves.png").exists()
