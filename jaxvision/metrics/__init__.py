"""jaxvision.metrics: classification, calibration, detection (COCO/VOC) and segmentation.

``confusion_matrix`` is the classification one; the segmentation variant (with an ignore
index) is ``jaxvision.metrics.segmentation.confusion_matrix``.
"""

from jaxvision.metrics.calibration import (calibration_bins, expected_calibration_error, fit_temperature,
                                           plot_reliability_diagram)
from jaxvision.metrics.classification import (accuracy, binary_roc_auc, classification_report,
                                              confusion_matrix, ensemble_probabilities, precision_recall_f1,
                                              roc_auc, roc_curve, top_k_accuracy)
from jaxvision.metrics.coco import STAT_NAMES, COCOEvaluation, coco_evaluate, coco_evaluate_detailed
from jaxvision.metrics.detection import (best_f1, coco_evaluate_padded, error_breakdown, f1_scores,
                                         padded_to_coco, plot_precision_recall,
                                         precision_recall_curve)
from jaxvision.metrics.segmentation import (mean_dice, mean_iou, per_class_dice, per_class_iou,
                                            pixel_accuracy, segmentation_metrics)
from jaxvision.metrics.voc import (ap_all_point, ap_coco101, ap_eleven_point, average_precision,
                                   voc_evaluate)

__all__ = ["accuracy", "top_k_accuracy", "confusion_matrix", "precision_recall_f1", "roc_auc",
           "binary_roc_auc", "roc_curve", "classification_report", "ensemble_probabilities",
           "calibration_bins", "expected_calibration_error", "fit_temperature", "plot_reliability_diagram",
           "STAT_NAMES", "COCOEvaluation", "coco_evaluate", "coco_evaluate_detailed", "best_f1",
           "coco_evaluate_padded", "error_breakdown", "f1_scores", "padded_to_coco",
           "plot_precision_recall", "precision_recall_curve", "mean_dice", "mean_iou",
           "per_class_dice", "per_class_iou", "pixel_accuracy", "segmentation_metrics",
           "ap_all_point", "ap_coco101", "ap_eleven_point", "average_precision", "voc_evaluate"]
