"""The function every export format carries: uint8 images in, the task's predictions out.

``ServingModel`` is a trained ``inference.Predictor`` made portable: XLA's convolution instead
of the CPU-only fast path (``conv="xla"``), BatchNorm folded into the convolutions
(:mod:`jaxvision.export.fold`), optionally int8 weights (:mod:`jaxvision.export.quantize`), and
the preprocessing of the ``InputSpec`` inside (``inference.to_model_input``). Its ``__call__``
takes uint8 ``[N, H, W, C]`` at the spec's size and returns what ``Predictor`` returns for
images of that size; resizing other sizes stays with the runtime (the SavedModel's signature
does it with TensorFlow's resize, as the host pipeline does).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.export import fold, quantize
from jaxvision.inference import InputSpec, Predictor, to_model_input


@dataclasses.dataclass
class ServingModel:
    """A pure function of uint8 images plus the variables it closes over; see module doc."""

    apply: Callable[[Any, jax.Array], Any]  # (variables, uint8 images) -> predictions
    variables: Any
    spec: InputSpec
    num_classes: int
    class_names: tuple[str, ...] | None
    description: dict  # architecture, parameter count, what was folded or quantised

    def __call__(self, images) -> Any:
        return self.apply(self.variables, images)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.spec.shape

    def example(self, batch: int = 1) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct((batch, *self.spec.shape), jnp.uint8)


def _portable(model):
    """The model with XLA's convolution: the fast CPU path is platform-specific code."""
    fields = {f.name for f in dataclasses.fields(model)}
    return model.clone(conv="xla") if "conv" in fields else model


def serving_model(predictor: Predictor, *, fold_batch_norm: bool = True,
                  int8_weights: bool = False, portable: bool = True) -> ServingModel:
    """The predictor's model, variables, task and preprocessing as a ``ServingModel``.
    ``portable=False`` keeps the model's own convolution (the fast CPU path of
    ``conv="auto"``): for serving in this process, not for export."""
    model, task, spec = predictor.model, predictor.task, predictor.spec
    model = _portable(model) if portable else model
    variables = jax.device_get(predictor.variables)
    example = np.zeros((1, *spec.shape), np.float32)
    folded = 0
    if fold_batch_norm:
        folded = len(fold.batch_norm_producers(model, variables, example))
        variables = fold.fold_batch_norm(model, variables, example)
    if int8_weights:
        variables = quantize.quantize_int8(variables)

    def apply(variables, images):
        if int8_weights:
            variables = quantize.dequantize(variables)
        x = to_model_input(spec, images)
        return task.predict(fold.apply_folded(model, variables, x))

    from jaxvision.ops.geometry import param_count

    description = {
        "architecture": type(model).__name__,
        "parameters": int(param_count(predictor.variables["params"])),
        "batch_norms_folded": folded,
        "weights": "int8 per output channel" if int8_weights else "float32",
    }
    return ServingModel(apply=jax.jit(apply), variables=variables, spec=spec,
                        num_classes=predictor.num_classes,
                        class_names=predictor.class_names, description=description)


__all__ = ["ServingModel", "serving_model"]
