"""The depth (plain vs residual) and normalisation-vs-batch-size experiments: a smoke run of
each through the engine, and (slow, long) their reported configurations with the claims."""

import json
import math
import os

import pytest

from experiments import normalization_ablation, resnet_vs_plain_depth


def _finite(tree) -> bool:
    if isinstance(tree, dict):
        return all(_finite(v) for v in tree.values())
    if isinstance(tree, (list, tuple)):
        return all(_finite(v) for v in tree)
    return not isinstance(tree, float) or math.isfinite(tree)


def _results(workdir, *figures):
    for name in ("report.md", *figures):
        assert os.path.getsize(os.path.join(workdir, name)) > 0, name
    with open(os.path.join(workdir, "results.json")) as f:
        results = json.load(f)
    assert _finite(results)
    return results


@pytest.mark.slow  # 20-30 s: two or more engine runs
def test_depth_smoke(tmp_path):
    config = resnet_vs_plain_depth.get_config()
    config.depths, config.seeds, config.epochs, config.warmup_steps = (8,), 1, 1, 0
    resnet_vs_plain_depth.main(config, str(tmp_path))
    results = _results(tmp_path, "depth.png", "summary.png")
    assert sorted((r["kind"], r["depth"]) for r in results["runs"]) == [("plain", 8),
                                                                        ("residual", 8)]
    for run in results["runs"]:
        assert len(run["train_loss"]) == 1 and 0 <= run["test_accuracy"] <= 1
        assert run["final_train_loss"] < math.log(10) * 1.5  # one epoch moved off chance
    mean, std = results["summary"]["residual"]["8"]["test_accuracy"]
    assert std == 0 and mean == results["runs"][1]["test_accuracy"]
    # A second call finds both runs finished and reads them back instead of training again.
    resnet_vs_plain_depth.main(config, str(tmp_path))
    assert _results(tmp_path, "depth.png")["runs"] == results["runs"]
    assert not os.path.exists(tmp_path / "plain8_seed0" / "previous")


@pytest.mark.slow  # 20-30 s: two or more engine runs
def test_norm_smoke(tmp_path):
    config = normalization_ablation.get_config()
    config.norms, config.batch_sizes, config.seeds, config.epochs = ("batch_norm", "none"), (64,), 1, 1
    config.min_steps, config.warmup_steps = 0, 0
    config.model_kwargs.update(stage_sizes=(1, 1), base_features=8)  # a 2-stage ResNet: fast
    normalization_ablation.main(config, str(tmp_path))
    results = _results(tmp_path, "normalization.png")
    assert {r["norm"] for r in results["runs"]} == {"batch_norm", "none"}
    for run in results["runs"]:
        assert run["steps"] == 1437 // 64 and run["learning_rate"] == pytest.approx(0.1)
        assert 0 <= run["test_accuracy"] <= 1
    assert set(results["claim"]["test_accuracy_at_smallest_batch"]) == {"batch_norm", "none"}


@pytest.mark.slow
@pytest.mark.long
def test_plain_degrades_with_depth_residual_does_not(tmp_path):
    """The reported configuration (about an hour on two busy cores)."""
    claim = resnet_vs_plain_depth.main(resnet_vs_plain_depth.get_config(), str(tmp_path))
    assert claim["plain"]["deep_minus_shallow_train_loss"] > 0.5  # measured +1.68
    assert claim["plain"]["deep_minus_shallow_test_accuracy"] < -0.2  # measured -0.63
    # With shortcuts, depth costs at most a hundredth of that (measured +0.004, -0.006).
    assert claim["residual"]["deep_minus_shallow_train_loss"] < 0.02
    assert claim["residual"]["deep_minus_shallow_test_accuracy"] > -0.02


@pytest.mark.slow
@pytest.mark.long
def test_batch_norm_fails_at_batch_2_group_norm_does_not(tmp_path):
    """The reported configuration (about 17 min on the quiet 2-core machine)."""
    claim = normalization_ablation.main(normalization_ablation.get_config(), str(tmp_path))
    at_2 = claim["test_accuracy_at_smallest_batch"]
    assert claim["smallest_batch"] == 2
    assert at_2["group_norm"] > 0.9 and at_2["group_norm"] - at_2["batch_norm"] > 0.5
    assert claim["test_accuracy_spread"]["group_norm"] < 0.02  # measured 0.005: flat
    results = json.load(open(tmp_path / "results.json"))
    for batch in ("8", "32", "128"):  # only batch 2 fails
        assert results["summary"]["batch_norm"][batch]["test_accuracy"][0] > 0.9
