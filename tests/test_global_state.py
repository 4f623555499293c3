"""No hidden global state: plotting leaves matplotlib's backend alone, and augmentation ops and
presets come in through functions (the public tables are read-only)."""

import jax
import numpy as np
import pytest

from jaxvision import augment
from jaxvision.train.writers import plot_curves


def test_plotting_does_not_switch_the_matplotlib_backend(tmp_path):
    import matplotlib

    matplotlib.use("svg")
    records = [{"step": s, "split": "train", "loss": 1.0 / s, "accuracy": 0.1 * s}
               for s in range(1, 5)]
    plot_curves(records, str(tmp_path / "curves.png"))
    assert matplotlib.get_backend() == "svg"
    assert (tmp_path / "curves.png").stat().st_size > 5_000


def test_augmentation_ops_and_presets_are_registered_through_functions():
    with pytest.raises(TypeError):
        augment.OPS["invert"] = None  # read-only view
    with pytest.raises(TypeError):
        augment.PRESETS["mine"] = {"ops": ["flip"]}

    def invert(key, example, *, strength: float = 1.0):
        return dict(example, image=(1 - strength) * example["image"]
                    + strength * (1.0 - example["image"]))

    augment.register_op("test_invert", invert)
    augment.register_preset("test_inverted", {"ops": ["test_invert"],
                                              "test_invert_strength": 1.0})
    with pytest.raises(ValueError, match="already registered"):
        augment.register_op("test_invert", invert)
    with pytest.raises(ValueError, match="unknown augmentation op"):
        augment.register_preset("test_bad", {"ops": ["no_such_op"]})
    images = np.random.default_rng(0).random((2, 4, 4, 1)).astype(np.float32)
    out = augment.build({"preset": "test_inverted"}, num_classes=2)(
        jax.random.key(0), {"image": images, "label": np.zeros(2, np.int32)})
    np.testing.assert_allclose(out["image"], 1.0 - images, atol=1e-6)
