"""Where examples come from: TFDS names (embedded or public), numpy arrays, a ``tf.data``
data set, or an image folder. Each becomes a ``Source``: a ``tf.data.Dataset`` of
``{"image": uint8 [H,W,C], "label": int32}`` plus what the trainer must know about it. Detection
and segmentation sources also yield ``boxes`` [n,4] (absolute pixel xyxy), ``box_classes`` [n],
``mask`` [H,W] and ``instance_masks`` [n,H,W] for a variable ``n`` (``jaxvision.data.schema``);
the streams pad them to ``max_boxes``.

Validation happens here, at the edge, so that a bad label or image shape stops the run before
anything is compiled.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import difflib
import functools
import io
import logging
import os
import sys
from pathlib import Path

import numpy as np

from jaxvision._logging import install_default_handler
from jaxvision.data import schema as S

install_default_handler()

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


class DatasetNotAvailableError(RuntimeError):
    """A named data set is neither prepared locally nor downloadable here."""


@dataclasses.dataclass(frozen=True)
class Source:
    dataset: "tf.data.Dataset"  # noqa: F821 - tensorflow is imported lazily
    num_examples: int
    num_classes: int
    image_shape: tuple[int | None, int | None, int]  # None: the size varies (resize it)
    class_names: tuple[str, ...] | None = None

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self.dataset.element_spec)


@contextlib.contextmanager
def _native_stderr_silenced():
    """Sends what native code writes to file descriptor 2 to /dev/null for the block (Python's
    own errors still raise, and print once the block is left)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real fd 2 (some embedded interpreters)
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _tf():
    """TensorFlow, imported quietly (its C++ start-up lines, e.g. the oneDNN notice, which
    TF_CPP_MIN_LOG_LEVEL does not silence, print once per shared library) and kept off
    accelerators. Set JAXVISION_TF_VERBOSE=1 to see what it prints."""
    if "tensorflow" not in sys.modules and not os.environ.get("JAXVISION_TF_VERBOSE"):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        with _native_stderr_silenced():
            import tensorflow  # noqa: F401  (the first import prints the start-up lines)
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
    import tensorflow as tf

    # TF only feeds the host pipeline; it must never claim an accelerator JAX needs.
    tf.config.set_visible_devices([], "GPU")
    return tf


def cache_dir() -> str:
    """Where jaxvision keeps what it builds: ``$JAXVISION_CACHE``, else
    ``$XDG_CACHE_HOME/jaxvision``, else ``~/.cache/jaxvision``."""
    if os.environ.get("JAXVISION_CACHE"):
        return os.path.expanduser(os.environ["JAXVISION_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "jaxvision")


def default_data_dir(name: str) -> str | None:
    """The TFDS data directory for ``name`` when none is given: ``$TFDS_DATA_DIR`` if set;
    else, for the embedded data sets (``digits``, ``shapes/*``), ``<cache_dir()>/datasets``;
    else None (TFDS's own default, ``~/tensorflow_datasets``)."""
    from jaxvision.data.builders import EMBEDDED

    if os.environ.get("TFDS_DATA_DIR"):
        return None
    if name.split("/")[0] in EMBEDDED:
        return os.path.join(cache_dir(), "datasets")
    return None


def _prepare_quietly(builder, name: str, embedded: bool) -> None:
    """``builder.download_and_prepare()`` without TFDS's prints, progress bars and absl INFO
    lines; one jaxvision log line says what is built where."""
    import tensorflow_datasets as tfds

    log = logging.getLogger("jaxvision.data")
    log.info("%s %s in %s (once; later runs reuse it)",
             "building the embedded data set" if embedded else "downloading and preparing",
             name, builder.data_dir)
    tfds.disable_progress_bar()
    with _absl_quiet(), contextlib.redirect_stdout(io.StringIO()):
        builder.download_and_prepare()


def _check_image_shape(shape: tuple[int | None, ...], what: str) -> tuple:
    if len(shape) != 3 or shape[-1] not in (1, 3):
        raise ValueError(
            f"{what}: images must be [H, W, C] with C in (1, 3) (batched: [N, H, W, C]); got "
            f"per-image shape {tuple(shape)}. Add a channel axis for grayscale "
            "(images[..., None]) or drop the alpha channel.")
    return tuple(None if s is None else int(s) for s in shape)  # type: ignore[return-value]


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


def from_arrays(images: np.ndarray, labels: np.ndarray | None = None, *, boxes=None,
                box_classes=None, mask=None, instance_masks=None, num_classes: int | None = None,
                class_names: tuple[str, ...] | None = None) -> Source:
    """A source over in-memory arrays: ``images`` [N,H,W,C] or [N,H,W] (uint8 or floats in
    [0, 1]), ``labels`` [N] integers. Dense targets, optional: ``mask`` [N,H,W] semantic
    masks; ``boxes`` (absolute pixel xyxy) with ``box_classes`` and ``instance_masks``, each
    per example (a list of ``[n_i, 4]`` / ``[n_i]`` / ``[n_i, H, W]`` arrays, or one array with
    the same ``n`` for all). ``labels`` may be omitted when there are dense targets."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise ValueError(f"images must be [N, H, W, C] or [N, H, W], got shape {images.shape}")
    image_shape = _check_image_shape(images.shape[1:], "from_arrays")
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
    tf = _tf()
    columns = {S.IMAGE: images}
    classes_seen = []
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (len(images),):
            raise ValueError(f"labels must have shape ({len(images)},) to match images, got {labels.shape}")
        if not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
        columns[S.LABEL] = labels.astype(np.int32)
        classes_seen.append(labels)
    elif boxes is None and mask is None:
        raise ValueError("from_arrays needs labels, boxes or a mask")
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != images.shape[:3] or not (np.issubdtype(mask.dtype, np.integer)
                                                   or mask.dtype == bool):
            raise ValueError(f"mask must be integers [N, H, W] = {images.shape[:3]} to match the "
                             f"images, got {mask.dtype} {mask.shape}")
        small = not mask.size or (mask.min() >= 0 and mask.max() <= 255)
        columns[S.MASK] = mask.astype(np.uint8 if small else np.int32)
    if (boxes is None) != (box_classes is None):
        raise ValueError("boxes and box_classes go together: pass both or neither")
    if instance_masks is not None and boxes is None:
        raise ValueError("instance_masks need boxes: row k of each belongs to box k")
    if boxes is not None:
        n = len(images)
        boxes = _per_example(boxes, n, S.BOXES, (4,))
        classes = _per_example(box_classes, n, S.BOX_CLASSES, ())
        per_object = {S.BOXES: boxes, S.BOX_CLASSES: classes}
        if instance_masks is not None:
            per_object[S.INSTANCE_MASKS] = _per_example(instance_masks, n, S.INSTANCE_MASKS,
                                                        images.shape[1:3])
        for key, rows in per_object.items():
            for i, (row, box_rows) in enumerate(zip(rows, boxes)):
                if len(row) != len(box_rows):
                    raise ValueError(f"from_arrays: example {i} has {len(box_rows)} boxes but "
                                     f"{len(row)} {key}")
        for i, row in enumerate(boxes):
            bad = ~np.isfinite(row).all(-1) | (row[:, 2] < row[:, 0]) | (row[:, 3] < row[:, 1])
            if bad.any():
                box = row[np.argmax(bad)].tolist()
                raise ValueError(f"from_arrays: example {i} has box {box}; boxes are absolute "
                                 "pixel xyxy with x1 <= x2 and y1 <= y2")
        if not all(np.issubdtype(row.dtype, np.integer) for row in classes if row.size):
            raise ValueError("box_classes must be integers")
        classes_seen += classes
        dtypes = {S.BOXES: np.float32, S.BOX_CLASSES: np.int32, S.INSTANCE_MASKS: np.uint8}
        for key, rows in per_object.items():
            columns[key] = tf.RaggedTensor.from_row_lengths(
                np.concatenate(rows).astype(dtypes[key]), [len(row) for row in rows])
    seen = np.concatenate([np.ravel(c) for c in classes_seen]) if classes_seen else np.zeros(0)
    if num_classes is None and not seen.size:
        raise ValueError("from_arrays: no examples to infer num_classes from; pass num_classes=")
    num_classes = int(num_classes if num_classes is not None else seen.max() + 1)
    _check_labels(seen.astype(np.int64), num_classes, "from_arrays")
    ds = tf.data.Dataset.from_tensor_slices(columns)
    return Source(ds, len(images), num_classes, image_shape, class_names)


def _per_example(values, count: int, what: str, shape: tuple[int, ...]) -> list[np.ndarray]:
    """One ``[n_i, *shape]`` array per example, from a list of arrays or one batched array."""
    rows = [np.asarray(v) for v in values]
    if len(rows) != count:
        raise ValueError(f"{what} has {len(rows)} entries for {count} images")
    rows = [row.reshape(0, *shape) if row.size == 0 else row for row in rows]
    for i, row in enumerate(rows):
        if row.shape[1:] != tuple(shape):
            expected = ", ".join(["n", *map(str, shape)])
            raise ValueError(f"{what}[{i}] must have shape [{expected}], got {row.shape}")
    return rows


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
              download: bool = True, decoder=None) -> Source:
    """A source over a TFDS data set. The embedded ``digits`` and ``shapes/*`` are generated
    locally on first use; public ones are read from ``data_dir`` / ``$TFDS_DATA_DIR`` and
    downloaded only when ``download`` is true and the network allows. ``decoder`` (a
    ``decoders.TfdsDecoder``) maps features to schema keys; by default the data set's own
    (``shapes/det64``, ``shapes/seg64``, ``voc``, ``coco``, ``oxford_iiit_pet``), else
    classification (``image``, ``label``)."""
    _tf()  # quiet, and off the accelerator, before TFDS starts it
    with _absl_quiet():
        return _from_tfds(name, split, data_dir=data_dir, download=download, decoder=decoder)


def _from_tfds(name: str, split: str, *, data_dir, download: bool, decoder) -> Source:
    import tensorflow_datasets as tfds

    import jaxvision.data.builders as embedded
    from jaxvision.data.decoders import decoder_for

    if data_dir is None:
        data_dir = default_data_dir(name)
    try:
        builder = _quiet_builder(tfds, name, data_dir)
    except Exception as error:  # tfds raises several types for unknown names
        raise ValueError(_unknown_name_message(name, error, embedded.EMBEDDED)) from None
    with _absl_quiet():
        prepared = builder.is_prepared()
    if not prepared:
        is_embedded = name.split("/")[0] in embedded.EMBEDDED
        if not (download or is_embedded):
            raise DatasetNotAvailableError(_not_prepared_message(name, builder.data_dir))
        try:
            _prepare_quietly(builder, name, is_embedded)
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
    decoder = decoder or decoder_for(builder)
    features = builder.info.features
    try:
        class_feature = functools.reduce(lambda f, part: f[part], decoder.classes.split("/"),
                                         features)
    except KeyError:
        class_feature = None
    if "image" not in features or class_feature is None:
        raise ValueError(f"{name} has no 'image'/{decoder.classes!r} features to classify: "
                         f"{sorted(features)}")
    ds = builder.as_dataset(split=split, shuffle_files=False,
                            read_config=tfds.ReadConfig(shuffle_seed=0, interleave_cycle_length=1))
    ds = ds.map(decoder.decode)
    if num_examples is None:
        num_examples = int(ds.reduce(0, lambda count, _: count + 1))
    return Source(ds, num_examples, class_feature.num_classes,
                  _check_image_shape(tuple(features["image"].shape), name),
                  tuple(class_feature.names))


def _absl_quiet():
    """TFDS's absl lines (folders not yet prepared, deprecations) held back for the block."""
    from jaxvision._logging import quiet_absl

    return quiet_absl()


def _quiet_builder(tfds, name: str, data_dir: str | None):
    """``tfds.builder`` and its first look at the folder, without absl chatter."""
    with _absl_quiet():
        return tfds.builder(name, data_dir=data_dir)


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
