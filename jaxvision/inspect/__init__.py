"""Model inspection: a per-layer summary table, FLOPs from XLA, the memory a training step
needs (estimated by parts, and XLA's figure to check it) and gradient norms per group."""

from jaxvision.inspect.gradients import grad_norms
from jaxvision.inspect.memory import (MemoryEstimate, compiled_step_bytes, make_train_step,
                                      peak_bytes, saved_residual_bytes, training_memory,
                                      xla_training_memory)
from jaxvision.inspect.table import Row, Summary, compiled_flops, flops, format_table, summary

__all__ = ["MemoryEstimate", "Row", "Summary", "compiled_flops", "compiled_step_bytes", "flops",
           "format_table", "grad_norms", "make_train_step", "peak_bytes",
           "saved_residual_bytes", "summary", "training_memory", "xla_training_memory"]
