"""jaxvision.metrics: classification and calibration metrics as pure functions."""

from jaxvision.metrics.calibration import (calibration_bins, expected_calibration_error, fit_temperature,
                                           plot_reliability_diagram)
from jaxvision.metrics.classification import (accuracy, binary_roc_auc, classification_report,
                                              confusion_matrix, ensemble_probabilities, precision_recall_f1,
                                              roc_auc, roc_curve, top_k_accuracy)

__all__ = ["accuracy", "top_k_accuracy", "confusion_matrix", "precision_recall_f1", "roc_auc",
           "binary_roc_auc", "roc_curve", "classification_report", "ensemble_probabilities",
           "calibration_bins", "expected_calibration_error", "fit_temperature", "plot_reliability_diagram"]
