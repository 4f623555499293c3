"""Transfer learning: strategies as configs, heads, adapters, BatchNorm modes, discriminative
rates, gradual unfreezing, input adaptation and the data size x similarity strategy matrix.

The engine runs every strategy from ``config.transfer`` (see :mod:`jaxvision.transfer.strategy`);
the functions here also work on their own on any parameter tree and optax schedule.
"""

from jaxvision.transfer.batch_norm import adapt_batch_norm
from jaxvision.transfer.heads import (HEADS, BottleneckHead, DomainAdaptationHead, LinearHead,
                                      MLPHead, ResidualAdapter, TransferModel, dirac_init,
                                      kaiming_fan_out, prior_bias_init)
from jaxvision.transfer.inputs import (adapt_leaf, grayscale_stem_kernel,
                                       normalization_statistics)
from jaxvision.transfer.rates import (COURSE_DIVISORS, course_multipliers,
                                      layer_decay_multipliers)
from jaxvision.transfer.recommend import Recommendation, recommend_strategy
from jaxvision.transfer.strategy import STRATEGIES, Plan, make_plan
from jaxvision.transfer.structure import Group, Structure, model_structure
from jaxvision.transfer.unfreeze import delayed, gradual_optimizer

__all__ = [
    "BottleneckHead", "COURSE_DIVISORS", "DomainAdaptationHead", "Group", "HEADS", "LinearHead",
    "MLPHead", "Plan", "Recommendation", "ResidualAdapter", "STRATEGIES", "Structure",
    "TransferModel", "adapt_batch_norm", "adapt_leaf", "course_multipliers", "delayed",
    "dirac_init", "grayscale_stem_kernel", "gradual_optimizer", "kaiming_fan_out",
    "layer_decay_multipliers", "make_plan", "model_structure", "normalization_statistics",
    "prior_bias_init", "recommend_strategy",
]
