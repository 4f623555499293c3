"""Where examples come from: TFDS names (embedded or public), numpy arrays, a ``tf.data``
data set, or an image folder. Each becomes a ``Source``: a ``tf.data.Dataset`` of
``{"image": uint8 [H,W,C], "label": int32}`` plus what the trainer must know about it.

Validation happens here, at the edge, so that a bad label or image shape stops the run before
anything is compiled.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import difflib
import os
from pathlib import Path

import numpy as np

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


class DatasetNotAvailableError(RuntimeError):
    """A named data set is neither prepared locally nor downloadable here."""


@dataclasses.dataclass(frozen=True)
class Source:
    dataset: "tf.data.Dataset"  # noqa: F821 - tensorflow is imported lazily
    num_examples: int
    num_classes: int
    image_shape: tuple[int, int, int]
    class_names: tuple[str, ...] | None = None


def _tf():
    import tensorflow as tf

    # TF only feeds the host pipeline; it must never claim an accelerator JAX needs.
    tf.config.set_visible_devices([], "GPU")
    return tf


def _check_image_shape(shape: tuple[int, ...], what: str) -> tuple[int, int, int]:
    if len(shape) != 3 or shape[-1] not in (1, 3):
        raise ValueError(
            f"{what}: images must be [H, W, C] with C in (1, 3) (batched: [N, H, W, C]); got "
            f"per-image shape {tuple(shape)}. Add a channel axis for grayscale "
            "(images[..., None]) or drop the alpha channel.")
    return tuple(int(s) for s in shape)  # type: ignore[return-value]


def check_image_size(size, what: str = "image_size") -> tuple[int, int]:
    """``size`` as ``(height, width)``; anything but two positive integers (``(0, 0)``, a float,
    one number) stops here instead of failing later as a division by zero or a TF shape error."""
    try:
        ok = len(size) == 2 and all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in size)
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"{what} must be two positive integers (height, width), got {size!r}")
    return int(size[0]), int(size[1])


def _check_labels(labels: np.ndarray, num_classes: int, what: str) -> None:
    if labels.size == 0:
        return
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= num_classes:
        bad = low if low < 0 else high
        raise ValueError(
            f"{what}: label {bad} is outside the class range [0, {num_classes - 1}] "
            f"(num_classes={num_classes}). Fix the labels or raise num_classes.")


def from_arrays(images: np.ndarray, labels: np.ndarray, *, num_classes: int | None = None,
                class_names: tuple[str, ...] | None = None) -> Source:
    """A source over in-memory arrays: ``images`` [N,H,W,C] or [N,H,W] (uint8 or floats in
    [0, 1]), ``labels`` [N] integers."""
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise ValueError(f"images must be [N, H, W, C] or [N, H, W], got shape {images.shape}")
    image_shape = _check_image_shape(images.shape[1:], "from_arrays")
    if labels.shape != (len(images),):
        raise ValueError(f"labels must have shape ({len(images)},) to match images, got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    if images.dtype != np.uint8:
        finite = np.isfinite(images).all(axis=(1, 2, 3))
        if not finite.all():  # NaN would silently become pixel 0
            index = int(np.argmin(finite))
            bad = images[index][~np.isfinite(images[index])].flat[0]
            raise ValueError(f"from_arrays: image {index} has a non-finite pixel ({bad}); float "
                             "images must be finite and lie in [0, 1]")
        if images.size and (images.min() < 0 or images.max() > 1):
            raise ValueError("float images must lie in [0, 1] (or pass uint8 in [0, 255]); got "
                             f"range [{images.min()}, {images.max()}]")
        images = np.rint(images * 255).astype(np.uint8)
    if num_classes is None and not labels.size:
        raise ValueError("from_arrays: no examples to infer num_classes from; pass num_classes=")
    num_classes = int(num_classes if num_classes is not None else labels.max() + 1)
    _check_labels(labels, num_classes, "from_arrays")
    ds = _tf().data.Dataset.from_tensor_slices({"image": images, "label": labels.astype(np.int32)})
    return Source(ds, len(images), num_classes, image_shape, class_names)


def from_tf_dataset(dataset, *, num_classes: int, num_examples: int | None = None) -> Source:
    """A source over a user ``tf.data.Dataset`` of ``{"image", "label"}`` dicts or
    ``(image, label)`` pairs. Labels are range-checked as they stream (``tf.debugging``)."""
    tf = _tf()
    if isinstance(dataset.element_spec, tuple):
        dataset = dataset.map(lambda image, label: {"image": image, "label": label})
    spec = dataset.element_spec
    if not isinstance(spec, dict) or not {"image", "label"} <= set(spec):
        raise ValueError(f"the tf.data.Dataset must yield (image, label) or a dict with 'image' "
                         f"and 'label'; got element_spec {spec}")
    image_shape = _check_image_shape(tuple(spec["image"].shape), "from_tf_dataset")

    def check(example):
        label = tf.cast(example["label"], tf.int32)
        tf.debugging.assert_less(label, num_classes, message="label outside the class range")
        tf.debugging.assert_non_negative(label, message="negative label")
        image = example["image"]
        if image.dtype != tf.uint8:
            image = tf.cast(tf.round(tf.clip_by_value(image, 0.0, 1.0) * 255.0), tf.uint8)
        return {"image": image, "label": label}

    if num_examples is None:
        num_examples = int(dataset.cardinality())
        if num_examples < 0:
            raise ValueError("the tf.data.Dataset has unknown length: pass num_examples=")
    return Source(dataset.map(check), num_examples, num_classes, image_shape)


def from_image_folder(root: str | os.PathLike, *, image_size: tuple[int, int],
                      class_names: tuple[str, ...] | None = None) -> Source:
    """A source over ``root/<class name>/<image>`` files. Class ids follow ``class_names``
    (default: the sorted folder names); pass the training folder's names for an eval folder so
    that both use one mapping: a folder of an unknown class is an error, a subset is fine.
    Every file is checked up front; images are decoded as RGB and resized to ``image_size``."""
    root = Path(root)
    height, width = check_image_size(image_size)
    if not root.is_dir():
        raise ValueError(f"image folder {str(root)!r} does not exist")
    # Hidden folders (.ipynb_checkpoints, .git) are no classes.
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name[0] != ".")
    if class_names is None:
        class_names = tuple(found)
    else:
        class_names = tuple(class_names)
        unknown = [name for name in found if name not in class_names]
        if unknown:
            raise ValueError(
                f"image folder {str(root)!r} has class folders {unknown} that are not among the "
                f"known classes {list(class_names)} (from the training folder); rename or remove "
                "them, or the labels would not match")
    ids = {name: i for i, name in enumerate(class_names)}
    files, labels = [], []
    for name in found:
        for path in sorted((root / name).iterdir()):
            if path.suffix.lower() in _IMAGE_SUFFIXES:
                files.append(str(path))
                labels.append(ids[name])
    if not files:
        raise ValueError(f"no images ({', '.join(_IMAGE_SUFFIXES)}) under {str(root)!r}/<class>/")
    with concurrent.futures.ThreadPoolExecutor() as pool:  # file reads and PIL release the GIL
        list(pool.map(_check_image_file, files))
    tf = _tf()

    def decode(path, label):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        image = tf.image.resize(image, (height, width), antialias=True)
        return {"image": tf.cast(tf.round(image), tf.uint8), "label": label}

    ds = tf.data.Dataset.from_tensor_slices((files, np.asarray(labels, np.int32)))
    ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return Source(ds, len(files), len(class_names), (height, width, 3), class_names)


def _check_image_file(path: str) -> None:
    """Stops on a corrupt or truncated file, naming it, instead of a TF decode error mid-epoch
    that does not. Cheap: PNG chunks are checksummed without decompressing; a JPEG that ends in
    its end-of-image marker passes unread; only other files are decoded (JPEGs at 1/8 scale)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            if image.format == "PNG":
                image.verify()  # reads every chunk: catches truncation and bad checksums
            elif not (image.format == "JPEG" and _ends_with_jpeg_eoi(path)):
                image.draft("RGB", (1, 1))  # JPEG only: decode at reduced scale
                image.load()  # raises "image file is truncated"
    except Exception as error:  # PIL raises several types (UnidentifiedImageError, OSError...)
        raise ValueError(f"image file {path!r} is corrupt or truncated "
                         f"({type(error).__name__}: {error})") from None


def _ends_with_jpeg_eoi(path: str) -> bool:
    with open(path, "rb") as f:
        f.seek(max(0, os.path.getsize(path) - 2))
        return f.read() == b"\xff\xd9"


def from_tfds(name: str, split: str, *, data_dir: str | None = None,
              download: bool = True) -> Source:
    """A source over a TFDS data set. The embedded ``digits`` and ``shapes/*`` are generated
    locally on first use; public ones are read from ``data_dir`` / ``$TFDS_DATA_DIR`` and
    downloaded only when ``download`` is true and the network allows."""
    import tensorflow_datasets as tfds

    import jaxvision.data.builders as embedded

    tf = _tf()
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as error:  # tfds raises several types for unknown names
        raise ValueError(_unknown_name_message(name, error, embedded.EMBEDDED)) from None
    if not builder.is_prepared():
        is_embedded = name.split("/")[0] in embedded.EMBEDDED
        if not (download or is_embedded):
            raise DatasetNotAvailableError(_not_prepared_message(name, builder.data_dir))
        try:
            tfds.disable_progress_bar()
            builder.download_and_prepare()
        except Exception as error:
            raise DatasetNotAvailableError(
                _not_prepared_message(name, builder.data_dir)
                + f"\nThe download attempt failed with: {type(error).__name__}: {error}") from None
    splits = builder.info.splits
    num_examples = None
    if splits:  # empty only for mocked data (tfds.testing.mock_data): counted below
        try:
            num_examples = splits[split].num_examples  # also takes slices like 'train[:90%]'
        except (KeyError, ValueError) as error:
            raise ValueError(f"{name} has no split {split!r} (its splits: {sorted(splits)}): "
                             f"{error}") from None
    if num_examples == 0:  # TFDS would fail later with "Instruction [] corresponds to no data!"
        raise ValueError(f"{name} split {split!r} selects no examples; use a non-empty split")
    features = builder.info.features
    if "image" not in features or "label" not in features:
        raise ValueError(f"{name} has no 'image'/'label' features to classify: {sorted(features)}")
    label_feature = features["label"]
    ds = builder.as_dataset(split=split, shuffle_files=False,
                            read_config=tfds.ReadConfig(shuffle_seed=0, interleave_cycle_length=1))
    ds = ds.map(lambda ex: {"image": ex["image"], "label": tf.cast(ex["label"], tf.int32)})
    if num_examples is None:
        num_examples = int(ds.reduce(0, lambda count, _: count + 1))
    return Source(ds, num_examples, label_feature.num_classes,
                  _check_image_shape(tuple(features["image"].shape), name),
                  tuple(label_feature.names))


def _unknown_name_message(name: str, error: Exception, embedded_names) -> str:
    """One short paragraph: TFDS's own message lists all ~450 names; a few close ones help."""
    import tensorflow_datasets as tfds

    if type(error).__name__ != "DatasetNotFoundError":  # e.g. a bad config or version: say it
        detail = " ".join(str(error).split())[:300]
        return f"unknown data set {name!r}: {type(error).__name__}: {detail}"
    base = name.split("/")[0].split(":")[0]
    known = dict.fromkeys([*embedded_names, *tfds.list_builders(with_community_datasets=False)])
    close = difflib.get_close_matches(base, list(known), n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    return (f"unknown data set {name!r}: it is neither embedded ({', '.join(embedded_names)}) "
            f"nor a TFDS name.{hint} tfds.list_builders() lists all TFDS names; use "
            "'folder:<path>' for an image folder.")


def _not_prepared_message(name: str, data_dir: str) -> str:
    return (
        f"data set {name!r} is not prepared in {data_dir} and cannot be downloaded here. "
        f"Prepare it on a machine with network access (`tfds build {name}` or "
        f"`python -c \"import tensorflow_datasets as tfds; tfds.builder('{name}').download_and_prepare()\"`), "
        "then copy the folder or point TFDS_DATA_DIR (or config.data_dir) at it; data sets with "
        "manual downloads (e.g. imagenet2012) need their archives in <data_dir>/downloads/manual/. "
        "Offline, use an embedded data set: 'digits' or 'shapes/cls32'.")
