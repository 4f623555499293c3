"""Export a trained model: portable artifacts with the preprocessing inside.

    python -m jaxvision.export --workdir W --format all [--out W/export]

or from Python::

    from jaxvision import export, inference
    paths = export.export_workdir("workdirs/quickstart", "exported", formats=("stablehlo",))

See :mod:`jaxvision.export.formats` for the formats, :mod:`~jaxvision.export.serving` for the
function they carry, :mod:`~jaxvision.export.fold` (BatchNorm folding) and
:mod:`~jaxvision.export.quantize` (int8 weights for in-process serving).
"""

from __future__ import annotations

import json
import os
from typing import Iterable, Sequence

import numpy as np

from jaxvision.export.fold import apply_folded, batch_norm_producers, fold_batch_norm
from jaxvision.export.formats import (ARTIFACTS, FORMATS, artifact_size, export_onnx,
                                      export_onnx_int8, export_saved_model, export_stablehlo,
                                      export_tflite, load_onnx, load_saved_model, load_stablehlo,
                                      load_tflite)
from jaxvision.export.quantize import Int8Weight, dequantize, quantize_int8
from jaxvision.export.serving import ServingModel, serving_model

LOADERS = {"stablehlo": load_stablehlo, "saved_model": load_saved_model,
           "tflite": load_tflite, "tflite_int8": load_tflite, "onnx": load_onnx,
           "onnx_int8": load_onnx}
_CALIBRATED = ("tflite_int8", "onnx_int8")


def export(serving: ServingModel, folder: str, formats: Sequence[str] = FORMATS, *,
           representative: Iterable[np.ndarray] | None = None) -> dict[str, str]:
    """``{format: artifact path}`` for each of ``formats`` written under ``folder``.
    The int8 formats need ``representative`` uint8 images (calibration)."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown export format(s) {unknown}; choose from {list(FORMATS)}")
    calibrated = [f for f in formats if f in _CALIBRATED]
    if calibrated and representative is None:
        raise ValueError(f"format(s) {calibrated} need representative images for calibration")
    representative = None if representative is None else list(representative)
    os.makedirs(folder, exist_ok=True)
    writers = {
        "stablehlo": lambda: export_stablehlo(serving, folder),
        "saved_model": lambda: export_saved_model(serving, folder),
        "tflite": lambda: export_tflite(serving, folder),
        "tflite_int8": lambda: export_tflite(serving, folder, representative=representative),
        "onnx": lambda: export_onnx(serving, folder),
        "onnx_int8": lambda: export_onnx_int8(serving, folder, representative),
    }
    return {fmt: writers[fmt]() for fmt in formats}


def export_workdir(workdir: str, folder: str, formats: Sequence[str] = FORMATS, *,
                   representative: Iterable[np.ndarray] | None = None) -> dict[str, str]:
    """Export the newest checkpoint of a training run (``inference.load``), with its training
    summary in the model cards."""
    from jaxvision import inference

    serving = serving_model(inference.load(workdir))
    summary_path = os.path.join(workdir, "summary.json")
    if os.path.exists(summary_path):
        with open(summary_path) as f:
            summary = json.load(f)
        serving.description["training"] = {
            "dataset": serving_dataset(workdir),
            **{k: v for k, v in summary.items() if isinstance(v, (int, float, str))}}
    return export(serving, folder, formats, representative=representative)


def serving_dataset(workdir: str) -> str | None:
    with open(os.path.join(workdir, "config.json")) as f:
        return json.load(f).get("dataset")


__all__ = ["ARTIFACTS", "FORMATS", "Int8Weight", "LOADERS", "ServingModel", "apply_folded",
           "artifact_size", "batch_norm_producers", "dequantize", "export", "export_onnx",
           "export_onnx_int8", "export_saved_model", "export_stablehlo", "export_tflite",
           "export_workdir", "fold_batch_norm", "load_onnx", "load_saved_model",
           "load_stablehlo", "load_tflite", "quantize_int8", "serving_model"]
