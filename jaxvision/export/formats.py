"""Writers (and, for the tests and the experiment, runners) of each export format.

Every writer takes a :class:`~jaxvision.export.serving.ServingModel` and a folder, writes the
artifact there with ``metadata.json`` and ``MODEL_CARD.md`` beside it, and returns the
artifact's path. Runners take uint8 images at the model's size and return numpy predictions.

* ``stablehlo``: ``jax.export`` of the jitted serving function with a symbolic batch
  dimension, serialized; reloads with ``jax.export.deserialize`` and no Python model
  (:func:`load_stablehlo`). Compatibility: a newer JAX reads it for six months.
* ``saved_model``: jax2tf (native serialization: one ``XlaCallModule`` op for CPU) under a
  ``serving_default`` signature that takes uint8 images of any size and resizes them as the
  host pipeline does; written in TF Serving's ``<name>/<version>/`` layout.
* ``tflite`` / ``tflite_int8``: TensorFlow's converter on the same function at a fixed batch
  (TFLite has static shapes); int8 is full-integer post-training quantisation calibrated on
  ``representative`` images.
* ``onnx`` / ``onnx_int8``: jax2onnx (symbolic batch ``B``), then onnxruntime's static
  quantisation (QOperator: QLinearConv and friends, smaller than QDQ; per-channel int8
  weights, calibrated on ``representative`` images).
  jax2onnx's metadata pins an older orbax-checkpoint, so the ``export`` extra cannot name it:
  install it with ``pip install --no-deps jax2onnx`` (its converter does not import orbax).
  Its Flax ``max_pool`` shim takes the window only by keyword and the padding only as a
  string, while Flax (and our models) pass both positionally and as pairs;
  :func:`_onnx_max_pool_shim` adapts the call (explicit pads become a ``-inf`` pad, exactly
  what Flax's max pool does), because the primitive-level lowering it would otherwise use
  emits a MaxPool that onnxruntime rejects.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import json
import logging
import os
import warnings
from typing import Any, Callable, Iterable

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.export.serving import ServingModel

FORMATS = ("stablehlo", "saved_model", "tflite", "tflite_int8", "onnx", "onnx_int8")
ARTIFACTS = {"stablehlo": "model.stablehlo", "saved_model": "saved_model/1",
             "tflite": "model.tflite", "tflite_int8": "model_int8.tflite",
             "onnx": "model.onnx", "onnx_int8": "model_int8.onnx"}


@contextlib.contextmanager
def _quiet_loggers(*names: str):
    """Only errors from these loggers (the converters' progress chatter) while inside."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


CHATTY = ("", "absl", "tensorflow", "jax2onnx", "onnx_ir")  # "" is the root logger


def _quiet(export_fn):
    """Converters log progress at INFO (TensorFlow and onnxruntime on the root logger)."""
    @functools.wraps(export_fn)
    def wrapper(*args, **kwargs):
        with _quiet_loggers(*CHATTY):
            return export_fn(*args, **kwargs)

    return wrapper


# ----------------------------------------------------------------------------- StableHLO

@_quiet
def export_stablehlo(serving: ServingModel, folder: str) -> str:
    """The serialized ``jax.export`` artifact (symbolic batch ``b``)."""
    from jax import export

    (batch,) = export.symbolic_shape("b")
    exported = export.export(jax.jit(lambda images: serving(images)))(
        jax.ShapeDtypeStruct((batch, *serving.input_shape), jnp.uint8))
    path = _artifact(folder, "stablehlo")
    with open(path, "wb") as f:
        f.write(exported.serialize())
    _describe(serving, folder, "stablehlo", path)
    return path


def load_stablehlo(path: str) -> Callable:
    """uint8 images -> predictions, from the file alone."""
    from jax import export

    with open(path, "rb") as f:
        exported = export.deserialize(bytearray(f.read()))
    return lambda images: jax.device_get(exported.call(jnp.asarray(images, jnp.uint8)))


# --------------------------------------------------------------------------- SavedModel

def _tf():
    from jaxvision.data.sources import _tf as quiet_tf  # TensorFlow, kept off accelerators

    return quiet_tf()


def _as_dict(outputs) -> dict:
    """TF signatures return named tensors: classification's array is ``probabilities``."""
    return dict(outputs) if isinstance(outputs, dict) else {"probabilities": outputs}


def _tf_function(serving: ServingModel, polymorphic_batch: bool):
    from jax.experimental import jax2tf

    height, width, _ = serving.input_shape
    shape = ["(b, %d, %d, %d)" % serving.input_shape] if polymorphic_batch else None
    return jax2tf.convert(lambda images: _as_dict(serving(images)), polymorphic_shapes=shape,
                          native_serialization_platforms=("cpu",), with_gradient=False)


@_quiet
def export_saved_model(serving: ServingModel, folder: str, *, version: int = 1) -> str:
    """A SavedModel in ``folder/saved_model/<version>`` whose ``serving_default`` takes uint8
    ``[N, h, w, C]`` of any size (resized to the spec's size by its rule)."""
    tf = _tf()
    spec = serving.spec
    converted = _tf_function(serving, polymorphic_batch=True)

    def resize(images):
        resized = tf.image.resize(images, spec.image_size, method=spec.resize_method,
                                  antialias=spec.resize_antialias)
        if spec.resize_round:
            return tf.cast(tf.round(tf.clip_by_value(resized, 0, 255)), tf.uint8)
        return tf.cast(tf.clip_by_value(resized, 0, 255), tf.uint8)

    @tf.function(autograph=False, input_signature=[
        tf.TensorSpec([None, None, None, spec.channels], tf.uint8, name="images")])
    def serve(images):
        same = tf.reduce_all(tf.equal(tf.shape(images)[1:3], spec.image_size))
        images = tf.cond(same, lambda: tf.ensure_shape(images, [None, *spec.shape]),
                         lambda: tf.ensure_shape(resize(images), [None, *spec.shape]))
        return converted(images)

    module = tf.Module()
    module.serve = serve
    path = os.path.join(folder, "saved_model", str(version))
    tf.saved_model.save(module, path, signatures={"serving_default": serve})
    _describe(serving, folder, "saved_model", path)
    return path


def load_saved_model(path: str) -> Callable:
    tf = _tf()
    signature = tf.saved_model.load(path).signatures["serving_default"]

    def run(images):
        out = signature(images=tf.constant(np.asarray(images, np.uint8)))
        out = {name: value.numpy() for name, value in out.items()}
        return out["probabilities"] if set(out) == {"probabilities"} else out

    return run


# ------------------------------------------------------------------------------- TFLite

@_quiet
def export_tflite(serving: ServingModel, folder: str, *, batch: int = 1,
                  representative: Iterable[np.ndarray] | None = None) -> str:
    """A TFLite flatbuffer at a fixed ``batch``; with ``representative`` uint8 images (each
    ``[H, W, C]``), full-integer int8 quantisation calibrated on them."""
    tf = _tf()
    converted = _tf_function(serving, polymorphic_batch=False)
    concrete = tf.function(converted, autograph=False).get_concrete_function(
        tf.TensorSpec([batch, *serving.input_shape], tf.uint8))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    name = "tflite"
    if representative is not None:
        images = [np.asarray(image, np.uint8) for image in representative]
        if not images:
            raise ValueError("int8 TFLite needs at least one representative image")

        def dataset():
            for start in range(0, len(images) - batch + 1, batch):
                yield [np.stack(images[start:start + batch])]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = dataset
        name = "tflite_int8"
    path = _artifact(folder, name)
    with open(path, "wb") as f:
        f.write(converter.convert())
    _describe(serving, folder, name, path, batch=batch)
    return path


def load_tflite(path: str) -> Callable:
    """A runner that feeds the interpreter its fixed batch, chunk by chunk."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # TensorFlow's own, deprecated in favour of LiteRT
        Interpreter = _tf().lite.Interpreter  # noqa: N806
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
        interpreter = Interpreter(model_path=path)
    interpreter.allocate_tensors()
    (inp,) = interpreter.get_input_details()
    outputs = interpreter.get_output_details()
    batch = int(inp["shape"][0])

    def run(images):
        images = np.asarray(images, np.uint8)
        results = []
        for start in range(0, len(images), batch):
            chunk = images[start:start + batch]
            padded = np.concatenate([chunk, np.zeros((batch - len(chunk), *chunk.shape[1:]),
                                                     np.uint8)])
            interpreter.set_tensor(inp["index"], padded)
            interpreter.invoke()
            out = [_dequantized(interpreter.get_tensor(o["index"]), o)[:len(chunk)]
                   for o in outputs]
            results.append(out)
        merged = [np.concatenate(parts) for parts in zip(*results)]
        return merged[0] if len(merged) == 1 else merged

    return run


def _dequantized(value: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero = detail.get("quantization", (0.0, 0))
    if value.dtype in (np.int8, np.uint8) and scale:
        return (value.astype(np.float32) - zero) * scale
    return value


# --------------------------------------------------------------------------------- ONNX

def _onnx_max_pool_shim():
    """Make jax2onnx's Linen ``max_pool`` shim accept Flax's own call forms (module doc)."""
    from jax2onnx.plugins.flax.linen import max_pool as plugin_module

    plugin = plugin_module.MaxPoolPlugin
    if getattr(plugin, "_jaxvision_shim", False):
        return
    make_patch = plugin._make_patch.__func__

    def adapted(cls, orig):
        patched = make_patch(cls, orig)

        def max_pool(x, window_shape, strides=None, padding="VALID"):
            if not isinstance(padding, str):
                pads = ((0, 0),) * (x.ndim - 1 - len(padding)) + tuple(padding) + ((0, 0),)
                x = jnp.pad(x, pads, constant_values=-jnp.inf)
                padding = "VALID"
            return patched(x, window_shape=tuple(window_shape), strides=strides, padding=padding)

        return max_pool

    plugin._make_patch = classmethod(adapted)
    plugin._jaxvision_shim = True


@_quiet
def export_onnx(serving: ServingModel, folder: str) -> str:
    """An ONNX model (symbolic batch) of the serving function."""
    from jax2onnx import to_onnx

    _onnx_max_pool_shim()
    model = to_onnx(lambda images: serving(images),
                    [jax.ShapeDtypeStruct(("B", *serving.input_shape), jnp.uint8)],
                    model_name=serving.description["architecture"])
    path = _artifact(folder, "onnx")
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    _describe(serving, folder, "onnx", path)
    return path


@_quiet
def export_onnx_int8(serving: ServingModel, folder: str,
                     representative: Iterable[np.ndarray]) -> str:
    """onnxruntime's static int8 quantisation (QOperator, per-channel weights) of the model
    :func:`export_onnx` writes, calibrated on ``representative`` uint8 images."""
    import onnx
    from onnxruntime import quantization as q

    images = np.stack([np.asarray(image, np.uint8) for image in representative])
    float_path = os.path.join(folder, ARTIFACTS["onnx"])
    if not os.path.exists(float_path):
        export_onnx(serving, folder)
    name = onnx.load(float_path).graph.input[0].name

    class Calibration(q.CalibrationDataReader):
        def __init__(self):
            self.batches = iter(images[i:i + 16] for i in range(0, len(images), 16))

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {name: batch}

    path = _artifact(folder, "onnx_int8")
    q.quantize_static(float_path, path, Calibration(), quant_format=q.QuantFormat.QOperator,
                      per_channel=True, weight_type=q.QuantType.QInt8,
                      activation_type=q.QuantType.QUInt8)
    _describe(serving, folder, "onnx_int8", path)
    return path


def load_onnx(path: str) -> Callable:
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run(images):
        out = session.run(None, {name: np.asarray(images, np.uint8)})
        return out[0] if len(out) == 1 else out

    return run


# ------------------------------------------------------------------------------ helpers

def _artifact(folder: str, name: str) -> str:
    path = os.path.join(folder, ARTIFACTS[name])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


def artifact_size(path: str) -> int:
    """Bytes of a file, or of every file under a folder (a SavedModel)."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(root, name))
               for root, _, names in os.walk(path) for name in names)


def _output_shapes(serving: ServingModel) -> list[tuple[str, tuple[int, ...]]]:
    outputs = _as_dict(jax.eval_shape(serving, serving.example(1)))
    return [(name, tuple(value.shape)) for name, value in outputs.items()]


def _describe(serving: ServingModel, folder: str, fmt: str, path: str, **extra: Any) -> None:
    """``metadata.json`` (machine-readable) and ``MODEL_CARD.md`` (for people) for one
    artifact, in ``folder/<format>.metadata.json`` and ``folder/<format>.MODEL_CARD.md``."""
    spec = serving.spec
    metadata = {
        "format": fmt,
        "artifact": os.path.relpath(path, folder),
        "bytes": artifact_size(path),
        "input": {"dtype": "uint8", "shape": ["batch", *spec.shape], **spec.to_json()},
        "outputs": {name: ["batch", *shape[1:]] for name, shape in _output_shapes(serving)},
        "num_classes": serving.num_classes,
        "class_names": list(serving.class_names) if serving.class_names else None,
        "model": serving.description,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "jax": jax.__version__,
        **extra,
    }
    with open(os.path.join(folder, f"{fmt}.metadata.json"), "w") as f:
        json.dump(metadata, f, indent=2)
    training = serving.description.get("training", {})
    lines = [
        f"# Model card: {serving.description['architecture']} ({fmt})", "",
        f"- Artifact: `{metadata['artifact']}` ({metadata['bytes']:,} bytes)",
        f"- Parameters: {serving.description['parameters']:,}; BatchNorms folded into "
        f"convolutions: {serving.description['batch_norms_folded']}; weights "
        + ("int8 (post-training quantisation of the float artifact, calibrated on training "
           "images)" if fmt.endswith("_int8") else serving.description["weights"]),
        "- Input: " + (spec.describe() if fmt == "saved_model" else
                       f"uint8 images [{extra.get('batch', 'batch')}, "
                       f"{', '.join(map(str, spec.shape))}] (other sizes: resize first, "
                       f"{spec.resize_method} with antialiasing, as training did)"),
        "- Outputs: " + ", ".join(f"{name} {shape}" for name, shape in metadata["outputs"].items())
        + (f"; classes: {', '.join(serving.class_names)}" if serving.class_names else ""),
        f"- Training data and metrics: {json.dumps(training) if training else 'not recorded'}",
        "- Intended use: the task and data it was trained on; check the input's distribution "
        "against the training statistics before trusting a prediction.",
        "- Limits: inputs far from the training distribution (other domains, corrupted or "
        "adversarial images) get confident wrong answers; an int8 artifact's top-1 answer "
        "differs from the float model's on a few inputs (at most 1% on the digits test).",
    ]
    with open(os.path.join(folder, f"{fmt}.MODEL_CARD.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


__all__ = ["ARTIFACTS", "FORMATS", "artifact_size", "export_onnx", "export_onnx_int8",
           "export_saved_model", "export_stablehlo", "export_tflite", "load_onnx",
           "load_saved_model", "load_stablehlo", "load_tflite"]
