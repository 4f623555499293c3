"""Tasks: what to learn from a batch and how to score it (see ``jaxvision.tasks.base``).

``create(name, **options)`` builds a shipped task by name (``config.task``); any object with
the same members can be passed to ``train_and_evaluate(task=...)`` instead.
"""

from __future__ import annotations

from jaxvision.tasks.base import Evaluator, Task, valid_weights
from jaxvision.tasks.classification import ClassificationTask
from jaxvision.tasks.detection import COCODetectionEvaluator, DetectionTask
from jaxvision.tasks.localization import LocalizationTask
from jaxvision.tasks.reconstruction import (ImageQualityEvaluator, ReconstructionTask, VAETask,
                                            VQVAETask)
from jaxvision.tasks.segmentation import ConfusionMatrixEvaluator, SegmentationTask

TASKS = {"classification": ClassificationTask, "segmentation": SegmentationTask,
         "reconstruction": ReconstructionTask, "vae": VAETask, "vq_vae": VQVAETask,
         "detection": DetectionTask, "localization": LocalizationTask}


def create(name: str, **options) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known: {sorted(TASKS)}")
    return TASKS[name](**options)


__all__ = ["COCODetectionEvaluator", "DetectionTask", "LocalizationTask",
           "ClassificationTask", "ConfusionMatrixEvaluator", "Evaluator", "ImageQualityEvaluator",
           "ReconstructionTask", "SegmentationTask", "VAETask", "VQVAETask",
           "TASKS", "Task", "create", "valid_weights"]
