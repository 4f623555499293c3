"""TFDS builder for the procedural ``shapes`` data set (see ``jaxvision.data.shapes``).

Variants: ``shapes/cls32`` (one object per 32x32 image, for classifiers and autoencoders),
``shapes/det64`` (1-4 objects per 64x64 image, for localizers, detectors and UNets; read with
boxes, classes, semantic and instance masks) and ``shapes/seg64`` (2-6 smaller objects per
64x64 image, read as image + semantic mask: see ``jaxvision.data.decoders``), ``shapes/tiny64``
(1-2 objects of radius 2-3 pixels, under 2% foreground, read as a binary mask). Build any
other variant with ``tfds.builder("shapes", config=ShapesConfig(name=..., spec=ShapesSpec(...)))``.
"""

from __future__ import annotations

import dataclasses

import tensorflow_datasets as tfds

from jaxvision.data.shapes import ShapesSpec, render_example


@dataclasses.dataclass
class ShapesConfig(tfds.core.BuilderConfig):
    spec: ShapesSpec = ShapesSpec()


class Shapes(tfds.core.GeneratorBasedBuilder):
    """Procedural shapes with a class label, boxes, a semantic mask and instance masks."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        ShapesConfig(name="cls32", description="one object, 32x32",
                     spec=ShapesSpec(image_size=32, num_train=4000, num_test=1000)),
        ShapesConfig(name="det64", description="1-4 objects, 64x64",
                     spec=ShapesSpec(image_size=64, min_objects=1, max_objects=4,
                                     min_radius_frac=0.1, max_radius_frac=0.25,
                                     num_train=2000, num_test=500)),
        ShapesConfig(name="seg64", description="2-6 objects, 64x64, read as segmentation",
                     spec=ShapesSpec(image_size=64, min_objects=2, max_objects=6,
                                     min_radius_frac=0.08, max_radius_frac=0.22,
                                     num_train=2000, num_test=500)),
        ShapesConfig(name="tiny64", description="1-2 tiny objects (under 2% of the pixels), "
                     "64x64, read as a binary object/background mask",
                     spec=ShapesSpec(image_size=64, min_objects=1, max_objects=2,
                                     min_radius_frac=0.03, max_radius_frac=0.05,
                                     num_train=2000, num_test=500)),
    ]

    def _info(self) -> tfds.core.DatasetInfo:
        size = self.builder_config.spec.image_size
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(size, size, 3)),
                "label": tfds.features.ClassLabel(names=self.builder_config.spec.classes),
                "semantic_mask": tfds.features.Image(shape=(size, size, 1)),
                "objects": tfds.features.Sequence({
                    "bbox": tfds.features.BBoxFeature(),
                    "label": tfds.features.ClassLabel(names=self.builder_config.spec.classes),
                    "mask": tfds.features.Image(shape=(size, size, 1)),
                }),
            }),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # generated, nothing to download
        return {"train": self._generate_examples("train"), "test": self._generate_examples("test")}

    def _generate_examples(self, split):
        spec = self.builder_config.spec
        num = spec.num_train if split == "train" else spec.num_test
        size = float(spec.image_size)
        for i in range(num):
            ex = render_example(spec, split, i)
            objects = [{
                # TFDS boxes are normalised [ymin, xmin, ymax, xmax].
                "bbox": tfds.features.BBox(ymin=b[1] / size, xmin=b[0] / size,
                                           ymax=b[3] / size, xmax=b[2] / size),
                "label": int(c),
                "mask": m[..., None].astype("uint8"),
            } for b, c, m in zip(ex["boxes"], ex["classes"], ex["instance_masks"])]
            yield i, {"image": ex["image"], "label": ex["label"],
                      "semantic_mask": ex["semantic_mask"][..., None], "objects": objects}
