"""TFDS builder for scikit-learn's bundled handwritten digits (8x8, 10 classes, no network).

The 1,797 images are split 80/20 by a fixed permutation; pixel values 0..16 are scaled to
0..255 so that the images behave like any other uint8 image data set.
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

_TEST_FRACTION = 0.2
_SPLIT_SEED = 0


def digits_arrays(split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 [N,8,8,1], labels int64 [N])`` for ``split`` in {'train', 'test'}."""
    from sklearn.datasets import load_digits

    if split not in ("train", "test"):
        raise ValueError(f"digits has splits 'train' and 'test', got {split!r}")
    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    order = np.random.default_rng(_SPLIT_SEED).permutation(len(images))
    num_test = int(round(len(images) * _TEST_FRACTION))
    index = order[num_test:] if split == "train" else order[:num_test]
    return images[index], bunch.target[index].astype(np.int64)


class Digits(tfds.core.GeneratorBasedBuilder):
    """scikit-learn's 8x8 handwritten digits as a TFDS data set."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(8, 8, 1)),
                "label": tfds.features.ClassLabel(num_classes=10),
            }),
            supervised_keys=("image", "label"),
            homepage="https://scikit-learn.org/stable/modules/generated/sklearn.datasets.load_digits.html",
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # bundled with scikit-learn
        return {"train": self._generate_examples("train"), "test": self._generate_examples("test")}

    def _generate_examples(self, split):
        images, labels = digits_arrays(split)
        for i, (image, label) in enumerate(zip(images, labels)):
            yield i, {"image": image, "label": int(label)}
