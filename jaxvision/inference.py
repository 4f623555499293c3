"""The inference contract: what a trained model takes, and a predictor that needs no optimizer.

``InputSpec`` says what the model was trained on: image size ``(H, W)``, channels, the value
range uint8 pixels are scaled to (``[0, 1]``: ``x / 255``), the per-channel ``mean``/``std``
that the config's deterministic eval preprocessing subtracts and divides by (identity when it
normalizes nothing), and the resize rule of the host pipeline (bilinear, antialiased, rounded
back to uint8, as ``jaxvision.data.pipeline`` resizes images of another size). The training
loop saves it as ``input_spec.json`` next to ``config.json``; for older workdirs it is derived
from ``config.json`` and ``model_input.json``.

One preprocessing, two halves: ``resize_images`` (host, TensorFlow's resize like the data
pipeline, a no-op for images already at the model's size) and ``to_model_input`` (uint8
``[N, H, W, C]`` -> float32 model input; pure ``jax.numpy``, so it traces into a jitted or
exported function). ``preprocess`` is the two together; for images of the model's size it
equals what evaluation feeds the model (``/255`` then ``augment.build_eval``).

``load(workdir_or_checkpoint)`` rebuilds the model from ``config.json`` and restores only the
checkpoint's ``params`` and ``model_state`` (an Orbax partial restore: no optimizer is built
and its state is never read), checked against the per-array fingerprint saved with them. The
returned ``Predictor`` takes uint8 images of any size (``[H, W, C]``, ``[N, H, W, C]`` or a
list of differently sized ``[H, W, C]``) and returns the task's predictions: class
probabilities ``[N, num_classes]`` for classification, per-pixel class ids ``[N, H, W]`` at
the model's input size for segmentation, and for a task whose ``predict`` returns detections
(a dict with the schema's ``boxes`` ``[N, K, 4]`` padded, plus e.g. ``scores``,
``box_classes`` and ``boxes_valid``) the same dict with the boxes in each original image's
pixels (the resize is undone per image, as torchvision's detectors do).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Any, Sequence

import numpy as np

log = logging.getLogger("jaxvision.inference")

INPUT_SPEC_FILE = "input_spec.json"
CLASS_NAMES_FILE = "class_names.json"
_MODEL_INPUT_FILE = "model_input.json"  # written by the training loop
_CONFIG_FILE = "config.json"
_SPEC_VERSION = 1
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


# --------------------------------------------------------------------------------------------
# The input specification
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """What the model takes; see the module docstring. JSON-serialisable (``to_json``)."""

    image_size: tuple[int, int]  # (H, W) the model was built for
    channels: int
    mean: tuple[float, ...]  # per channel, subtracted after scaling to value_range
    std: tuple[float, ...]  # per channel, divided by after subtracting the mean
    value_range: tuple[float, float] = (0.0, 1.0)  # uint8 [0, 255] maps linearly onto this
    resize_method: str = "bilinear"  # images of another size: tf.image.resize(method=...)
    resize_antialias: bool = True
    resize_round: bool = True  # rounded and clipped back to uint8 after resizing (host pipeline)

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        set_("image_size", tuple(int(s) for s in self.image_size))
        set_("channels", int(self.channels))
        set_("mean", tuple(float(m) for m in self.mean))
        set_("std", tuple(float(s) for s in self.std))
        set_("value_range", tuple(float(v) for v in self.value_range))
        if len(self.image_size) != 2 or min(self.image_size) < 1:
            raise ValueError(f"InputSpec.image_size must be (H, W) >= 1, got {self.image_size}")
        if self.channels < 1:
            raise ValueError(f"InputSpec.channels must be >= 1, got {self.channels}")
        for name in ("mean", "std"):
            if len(getattr(self, name)) != self.channels:
                raise ValueError(f"InputSpec.{name} needs one value per channel "
                                 f"({self.channels}), got {getattr(self, name)}")
        if min(self.std) <= 0:
            raise ValueError(f"InputSpec.std must be > 0, got {self.std}")
        if len(self.value_range) != 2 or not self.value_range[0] < self.value_range[1]:
            raise ValueError(f"InputSpec.value_range must be (low, high) with low < high, got "
                             f"{self.value_range}")
        if self.resize_method != "bilinear":
            raise ValueError(f"InputSpec.resize_method {self.resize_method!r} is not supported "
                             "(the host pipeline resizes bilinearly)")

    # ----- construction -----

    @classmethod
    def from_config(cls, config, image_shape: Sequence[int]) -> "InputSpec":
        """The spec of a model trained under ``config`` (a ConfigDict or the dict of
        ``config.json``) on images of ``image_shape`` ``(H, W, C)`` (after the host resize).

        The mean and std are those of the config's eval preprocessing
        (``augment.build_eval``: the ``normalize`` op with its training options; several are
        folded into one); none gives the identity (mean 0, std 1)."""
        import inspect

        from jaxvision.augment import pipeline as augment_pipeline

        height, width, channels = (int(s) for s in image_shape)
        augment = _get(config, "augment", None) or {}
        if hasattr(augment, "to_dict"):
            augment = augment.to_dict()
        mean = np.zeros(channels, np.float64)
        std = np.ones(channels, np.float64)
        if augment.get("ops") or augment.get("preset"):
            ops, options = augment_pipeline.resolve(augment)
            for name in ops:
                if name not in augment_pipeline.EVAL_OPS:
                    continue
                if name != "normalize":  # a new eval op must be added here, not skipped
                    raise NotImplementedError(
                        f"the eval preprocessing op {name!r} has no InputSpec field yet")
                defaults = {k: p.default for k, p in inspect.signature(
                    augment_pipeline.OPS[name].fn).parameters.items()
                    if p.kind is inspect.Parameter.KEYWORD_ONLY}
                opts = {**defaults, **options[name]}
                m = np.broadcast_to(np.asarray(opts["mean"], np.float64).reshape(-1), channels)
                s = np.broadcast_to(np.asarray(opts["std"], np.float64).reshape(-1), channels)
                # (((x - mean) / std) - m) / s == (x - (mean + m * std)) / (std * s)
                mean, std = mean + m * std, std * s
        return cls(image_size=(height, width), channels=channels, mean=tuple(mean.tolist()),
                   std=tuple(std.tolist()))

    @classmethod
    def from_workdir(cls, workdir: str) -> "InputSpec":
        """``input_spec.json`` of a training workdir, or (older workdirs) the spec derived from
        its ``config.json`` and ``model_input.json``."""
        path = os.path.join(workdir, INPUT_SPEC_FILE)
        if os.path.exists(path):
            return cls.load(path)
        config = _read_json(os.path.join(workdir, _CONFIG_FILE), workdir)
        model_input = _read_json(os.path.join(workdir, _MODEL_INPUT_FILE), workdir)
        return cls.from_config(config, model_input["input_shape"][1:])

    # ----- (de)serialisation -----

    def to_json(self) -> dict:
        return {"version": _SPEC_VERSION, **{f.name: _jsonable(getattr(self, f.name))
                                            for f in dataclasses.fields(self)}}

    @classmethod
    def from_json(cls, data: dict) -> "InputSpec":
        data = dict(data)
        version = data.pop("version", _SPEC_VERSION)
        if version != _SPEC_VERSION:
            raise ValueError(f"InputSpec version {version} is not supported (this jaxvision "
                             f"reads version {_SPEC_VERSION})")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"InputSpec has no fields {unknown}; known: {sorted(known)}")
        return cls(**data)

    def save(self, path: str | os.PathLike) -> None:
        """Writes the spec as JSON, atomically (a crash leaves the old file or the new one)."""
        from jaxvision.train.workdir import write_json_atomic

        write_json_atomic(os.fspath(path), self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "InputSpec":
        with open(path) as f:
            return cls.from_json(json.load(f))

    # ----- derived -----

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(H, W, C)`` of one model input."""
        return (*self.image_size, self.channels)

    @property
    def normalizes(self) -> bool:
        return any(m != 0.0 for m in self.mean) or any(s != 1.0 for s in self.std)

    def describe(self) -> str:
        """The expected input in words, for error messages."""
        height, width = self.image_size
        return (f"uint8 images [H, W, {self.channels}] or [N, H, W, {self.channels}] "
                f"({self.channels} channel{'s' if self.channels > 1 else ''}, any H and W; "
                f"resized to {height}x{width})")


def _get(config, name, default):
    if isinstance(config, dict):
        return config.get(name, default)
    return config.get(name, default) if hasattr(config, "get") else getattr(config, name, default)


def _jsonable(value):
    return list(value) if isinstance(value, tuple) else value


def _read_json(path: str, workdir: str):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"{workdir!r} holds no trained run: {os.path.basename(path)} is "
                                "missing (train there with train_and_evaluate first)") from None


# --------------------------------------------------------------------------------------------
# Preprocessing
# --------------------------------------------------------------------------------------------


def _as_image_list(spec: InputSpec, images) -> list[np.ndarray]:
    """``images`` as a list of uint8 ``[H, W, C]`` arrays; a bad shape, dtype or channel count
    is a ValueError naming the shape and the expected input."""
    if isinstance(images, (list, tuple)):
        arrays = [np.asarray(image) for image in images]
        names = [f"image {i} of the list (shape {a.shape})" for i, a in enumerate(arrays)]
        for array, name in zip(arrays, names):
            if array.ndim != 3:
                raise ValueError(f"{name} is not [H, W, C]; the model takes {spec.describe()}"
                                 + _channel_hint(array.shape, spec))
    else:
        array = np.asarray(images)
        if array.ndim not in (3, 4):
            raise ValueError(f"images of shape {array.shape}: the model takes {spec.describe()}"
                             + _channel_hint(array.shape, spec))
        arrays = [array] if array.ndim == 3 else list(array)
        names = [f"{'the image' if array.ndim == 3 else 'images'} of shape {array.shape}"
                 ] * len(arrays)
    if not arrays:
        raise ValueError(f"no images given; the model takes {spec.describe()}")
    for array, name in zip(arrays, names):
        if array.shape[-1] != spec.channels:
            raise ValueError(f"{name}: {array.shape[-1]} channels, but the model takes "
                             f"{spec.describe()}" + _channel_hint(array.shape, spec))
        if array.dtype != np.uint8:
            raise ValueError(f"{name}: dtype {array.dtype}, but the model takes "
                             f"{spec.describe()}; convert [0, 1] floats with "
                             "np.round(x * 255).astype(np.uint8)")
        if min(array.shape[:2]) < 1:
            raise ValueError(f"{name} is empty; the model takes {spec.describe()}")
    return arrays


def _channel_hint(shape, spec: InputSpec) -> str:
    if spec.channels == 1 and len(shape) == 2:
        return ". Add a channel axis to a grayscale image (image[..., None])"
    if spec.channels == 3 and len(shape) >= 3 and shape[-1] == 4:
        return ". Drop the alpha channel (image[..., :3])"
    if spec.channels == 3 and len(shape) >= 3 and shape[-1] == 1:
        return ". Repeat a grayscale channel (np.repeat(image, 3, axis=-1))"
    return ""


def resize_images(spec: InputSpec, images) -> np.ndarray:
    """uint8 images of any size -> uint8 ``[N, H, W, C]`` at the spec's size, by the host
    pipeline's rule (``tf.image.resize`` bilinear with antialias, rounded and clipped back to
    uint8); images already at the spec's size are not touched. Validates the input."""
    arrays = _as_image_list(spec, images)
    out = np.empty((len(arrays), *spec.shape), np.uint8)
    by_size: dict[tuple[int, int], list[int]] = {}
    for i, image in enumerate(arrays):
        if image.shape[:2] == spec.image_size:
            out[i] = image
        else:
            by_size.setdefault(image.shape[:2], []).append(i)
    if by_size:
        from jaxvision.data.sources import _tf  # TensorFlow, kept off any accelerator

        tf = _tf()
        for indices in by_size.values():
            batch = np.stack([arrays[i] for i in indices])
            resized = tf.image.resize(batch, spec.image_size, method=spec.resize_method,
                                      antialias=spec.resize_antialias)
            if spec.resize_round:
                resized = tf.cast(tf.round(tf.clip_by_value(resized, 0, 255)), tf.uint8)
            out[indices] = resized.numpy()
    return out


def to_model_input(spec: InputSpec, images):
    """uint8 ``[N, H, W, C]`` at the spec's size -> float32 model input: scaled to
    ``value_range`` (``x / 255`` for ``[0, 1]``), then ``(x - mean) / std``. Pure
    ``jax.numpy``, so it traces into jitted and exported functions; the operations are the
    eval step's, so the result equals what evaluation feeds the model."""
    import jax.numpy as jnp

    x = jnp.asarray(images).astype(jnp.float32) / 255.0
    low, high = spec.value_range
    if (low, high) != (0.0, 1.0):
        x = x * np.float32(high - low) + np.float32(low)
    if spec.normalizes:
        x = (x - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    return x


def preprocess(spec: InputSpec, images) -> np.ndarray:
    """uint8 images of any size (``[H, W, C]``, ``[N, H, W, C]`` or a list of ``[H, W, C]``)
    -> float32 model input ``[N, H, W, C]``: ``resize_images`` then ``to_model_input``."""
    return np.asarray(to_model_input(spec, resize_images(spec, images)))


# --------------------------------------------------------------------------------------------
# Image files
# --------------------------------------------------------------------------------------------


_MODE_CHANNELS = {"1": 1, "L": 1, "I": 1, "I;16": 1, "I;16B": 1, "I;16L": 1, "F": 1, "LA": 2,
                  "La": 2, "P": 3, "PA": 4, "RGB": 3, "YCbCr": 3, "LAB": 3, "HSV": 3,
                  "RGBA": 4, "RGBa": 4, "RGBX": 4, "CMYK": 4}


def check_image_file(path: str, spec: InputSpec) -> None:
    """Stops, naming the file, on a file that is not an image or whose channels the model
    cannot take. Reads the header only. A 3-channel model takes grayscale and RGBA files too,
    converted as the image-folder source converts them for training; a 1-channel model takes
    only single-channel files."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            mode, kind = image.mode, image.format
    except FileNotFoundError:
        raise ValueError(f"image file {path!r} does not exist") from None
    except Exception as error:  # UnidentifiedImageError, OSError...
        raise ValueError(f"{path!r} is not an image file ({type(error).__name__}: {error}); the "
                         f"model takes {_file_expectation(spec)}") from None
    channels = _MODE_CHANNELS.get(mode)
    if spec.channels == 3 or channels == spec.channels:
        return
    raise ValueError(f"image file {path!r} is a {kind} image of mode {mode!r} "
                     f"({channels or 'unknown'} channels) but the model takes "
                     f"{_file_expectation(spec)}")


def _file_expectation(spec: InputSpec) -> str:
    kind = {1: "grayscale (1-channel)", 3: "RGB (3-channel)"}.get(spec.channels,
                                                                   f"{spec.channels}-channel")
    return (f"{kind} image files ({', '.join(IMAGE_SUFFIXES)}) of any size, resized to "
            f"{spec.image_size[0]}x{spec.image_size[1]}")


def read_image(path: str, spec: InputSpec) -> np.ndarray:
    """A file as uint8 ``[H, W, C]`` with the spec's channels, decoded like the image-folder
    source (TensorFlow's decoder; RGB for 3-channel models). Errors name the file."""
    check_image_file(path, spec)
    from jaxvision.data.sources import _tf

    tf = _tf()
    try:
        data = tf.io.read_file(path)
        image = tf.io.decode_image(data, channels=3 if spec.channels == 3 else 0,
                                   expand_animations=False, dtype=tf.uint8).numpy()
    except (tf.errors.OpError, ValueError) as error:
        message = getattr(error, "message", str(error)).strip().splitlines()[0]
        raise ValueError(f"image file {path!r} cannot be decoded ({message}); the model takes "
                         f"{_file_expectation(spec)}") from None
    if image.shape[-1] != spec.channels:
        raise ValueError(f"image file {path!r} decodes to {image.shape[-1]} channels but the "
                         f"model takes {_file_expectation(spec)}")
    return image


# --------------------------------------------------------------------------------------------
# Restoring a trained model without its optimizer
# --------------------------------------------------------------------------------------------


def _locate(path: str, step: int | None) -> tuple[str, str, int | None]:
    """``(workdir, checkpoint directory, step)`` from a workdir, its ``checkpoints`` folder or
    one step's folder in it."""
    path = os.path.abspath(os.fspath(path))
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path!r} is not a directory: pass a jaxvision workdir or "
                                "its checkpoint folder")
    if os.path.exists(os.path.join(path, _CONFIG_FILE)):
        return path, os.path.join(path, "checkpoints"), step
    parent = os.path.dirname(path)
    if os.path.exists(os.path.join(parent, _CONFIG_FILE)):
        return parent, path, step
    grandparent = os.path.dirname(parent)
    name = os.path.basename(path)
    if name.isdigit() and os.path.exists(os.path.join(grandparent, _CONFIG_FILE)):
        if step is not None and step != int(name):
            raise ValueError(f"{path!r} is checkpoint step {name}, but step={step} was asked")
        return grandparent, parent, int(name)
    raise FileNotFoundError(f"no {_CONFIG_FILE} in {path!r} or above it: pass a jaxvision "
                            "workdir (where train_and_evaluate ran) or its checkpoint folder")


def _config_from_json(saved: dict):
    """The saved ``config.json`` as a ConfigDict over today's defaults (fields added since
    it was written keep their defaults); JSON lists become tuples again."""
    import ml_collections

    from jaxvision.train.config import default_config

    def tuples(value):
        if isinstance(value, list):
            return tuple(tuples(v) for v in value)
        if isinstance(value, dict):
            return {k: tuples(v) for k, v in value.items()}
        return value

    def merge(base: dict, over: dict) -> dict:
        out = dict(base)
        for key, value in over.items():
            out[key] = (merge(out[key], value) if isinstance(value, dict)
                        and isinstance(out.get(key), dict) else value)
        return out

    return ml_collections.ConfigDict(tuples(merge(default_config().to_dict(), saved)))


class Predictor:
    """A trained model behind the inference contract: ``predictor(images)`` -> predictions.

    Attributes: ``spec`` (``InputSpec``), ``task``, ``model``, ``variables``, ``num_classes``,
    ``class_names`` (None when the run did not save them), ``config`` and ``step``. Batches are
    padded to a power of two up to ``batch_size``, so at most ``log2(batch_size) + 1`` shapes
    compile."""

    def __init__(self, *, model, variables: dict, task, spec: InputSpec, num_classes: int,
                 class_names: Sequence[str] | None = None, compute_dtype=None, config=None,
                 step: int | None = None, batch_size: int = 64):
        import jax
        import jax.numpy as jnp

        from jaxvision.xla_options import compiler_options

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model, self.variables, self.task, self.spec = model, variables, task, spec
        self.num_classes, self.config, self.step = num_classes, config, step
        self.class_names = tuple(class_names) if class_names else None
        self.batch_size = batch_size
        compute_dtype = compute_dtype or jnp.float32

        def forward(variables, images):
            x = to_model_input(spec, images).astype(compute_dtype)
            return task.predict(model.apply(variables, x, train=False))

        self._forward = jax.jit(forward, compiler_options=compiler_options())

    def preprocess(self, images) -> np.ndarray:
        """The float32 model input of ``images`` (see ``jaxvision.inference.preprocess``)."""
        return preprocess(self.spec, images)

    def __call__(self, images) -> Any:
        """uint8 images of any size -> the task's predictions for each, on the host
        (classification: probabilities ``[N, num_classes]``; segmentation: class ids
        ``[N, H, W]`` at the model's input size; detection: boxes in original pixels)."""
        import jax

        arrays = _as_image_list(self.spec, images)
        batch = resize_images(self.spec, arrays)
        outputs = []
        for start in range(0, len(batch), self.batch_size):
            chunk = batch[start:start + self.batch_size]
            size = min(self.batch_size, 1 << (len(chunk) - 1).bit_length())
            padded = np.concatenate([chunk, np.zeros((size - len(chunk), *chunk.shape[1:]),
                                                     np.uint8)]) if size > len(chunk) else chunk
            predictions = jax.device_get(self._forward(self.variables, padded))
            outputs.append(jax.tree.map(lambda x, n=len(chunk): np.asarray(x)[:n], predictions))
        predictions = jax.tree.map(lambda *xs: np.concatenate(xs), *outputs)
        return _boxes_to_original_pixels(predictions, self.spec,
                                         [a.shape[:2] for a in arrays])

    def class_name(self, index: int) -> str:
        """The name of class ``index``, or the id as text when the run saved no names."""
        if self.class_names and 0 <= index < len(self.class_names):
            return self.class_names[index]
        return str(index)


def _boxes_to_original_pixels(predictions, spec: InputSpec, sizes) -> Any:
    """Detections' xyxy ``boxes`` from model-input pixels to each image's own (the resize
    stretches each axis, so each axis scales back on its own); other outputs unchanged."""
    from jaxvision.data import schema as S

    if not isinstance(predictions, dict) or S.BOXES not in predictions:
        return predictions
    height, width = spec.image_size
    scale = np.array([[w / width, h / height, w / width, h / height] for h, w in sizes],
                     np.float32)
    return {**predictions, S.BOXES: predictions[S.BOXES] * scale[:, None, :]}


def load(path: str | os.PathLike, *, step: int | None = None, model=None, task=None,
         batch_size: int = 64) -> Predictor:
    """A ``Predictor`` for the run in ``path`` (a workdir, its ``checkpoints`` folder or one
    step's folder): the model rebuilt from ``config.json``, the params and model state of the
    newest intact checkpoint (or ``step``) restored onto one device. No optimizer is built and
    the optimizer state is not read.

    ``model`` and ``task`` replace what the config names, as for
    ``train_and_evaluate(model=..., task=...)``: pass the objects the run was trained with."""
    import jax

    from jaxvision.train.checkpoint import restore_variables
    from jaxvision.train.loop import build_task, create_model
    from jaxvision.train.config import COMPUTE_DTYPES
    from jaxvision.train.parallel import make_parallel

    workdir, checkpoint_dir, step = _locate(os.fspath(path), step)
    config = _config_from_json(_read_json(os.path.join(workdir, _CONFIG_FILE), workdir))
    model_input = _read_json(os.path.join(workdir, _MODEL_INPUT_FILE), workdir)
    spec = InputSpec.from_workdir(workdir)
    num_classes = int(model_input["num_classes"])
    input_shape = tuple(model_input["input_shape"])
    if tuple(input_shape[1:]) != spec.shape:
        raise ValueError(f"{workdir}: {INPUT_SPEC_FILE} says the model takes {spec.shape} but "
                         f"{_MODEL_INPUT_FILE} says {tuple(input_shape[1:])}")
    model, _ = create_model(config, num_classes=num_classes, parallel=make_parallel("none"),
                            model=model)
    task = task or build_task(config, num_classes)

    def init():
        variables = model.init({"params": jax.random.key(0), "dropout": jax.random.key(0)},
                               jax.numpy.zeros(input_shape, jax.numpy.float32), train=False)
        return {"params": variables["params"],
                "model_state": {name: tree for name, tree in variables.items()
                                if name not in ("params", "intermediates")}}

    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device),
                            jax.eval_shape(init))
    restored_step, items = restore_variables(checkpoint_dir, abstract, step=step)
    class_names = None
    names_path = os.path.join(workdir, CLASS_NAMES_FILE)
    if os.path.exists(names_path):
        with open(names_path) as f:
            class_names = json.load(f)
    return Predictor(model=model, variables={"params": items["params"], **items["model_state"]},
                     task=task, spec=spec, num_classes=num_classes, class_names=class_names,
                     compute_dtype=COMPUTE_DTYPES[config.compute_dtype], config=config,
                     step=restored_step, batch_size=batch_size)


__all__ = ["CLASS_NAMES_FILE", "IMAGE_SUFFIXES", "INPUT_SPEC_FILE", "InputSpec", "Predictor",
           "check_image_file", "load", "preprocess", "read_image", "resize_images",
           "to_model_input"]
