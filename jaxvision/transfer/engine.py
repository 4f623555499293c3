"""The engine's side of ``config.transfer``: the model it names (a new head, adapters) and its
plan (frozen leaves, multipliers, stages), used by ``train_and_evaluate`` and ``load_state``."""

from __future__ import annotations

import flax.linen as nn

from jaxvision import models
from jaxvision.transfer.heads import HEADS, TransferModel
from jaxvision.transfer.strategy import Plan, make_plan
from jaxvision.transfer.structure import model_structure


def build_model(config, *, num_classes: int) -> nn.Module:
    """``config.model``, wrapped in a :class:`TransferModel` when ``config.transfer`` asks for
    a new head (``head``: linear, mlp, bottleneck, domain_adaptation) or adapters."""
    transfer = config.get("transfer")
    kwargs = dict(config.model_kwargs)
    if transfer is None or not (transfer.head or transfer.adapters_after):
        return models.create(config.model, num_classes=num_classes, **kwargs)
    head = None
    if transfer.head:
        if transfer.head not in HEADS:
            raise ValueError(f"config.transfer.head must be one of {('', *HEADS)}, got "
                             f"{transfer.head!r}")
        options = {}
        if transfer.get("head_dropout") is not None and transfer.head in ("linear", "mlp"):
            options["dropout_rate"] = float(transfer.head_dropout)
        head = HEADS[transfer.head](num_classes, **options, name="head")
    backbone = models.create(config.model, num_classes=None if head else num_classes, **kwargs)
    return TransferModel(backbone, head, adapters_after=tuple(transfer.adapters_after),
                         adapter_reduction=int(transfer.adapter_reduction))


def plan(config, model: nn.Module, input_shape, *, steps_per_epoch: int = 1) -> Plan:
    """The transfer :class:`Plan` of ``config`` for ``model`` (traced, nothing computed).
    A config from before ``config.transfer`` existed gets its defaults."""
    if config.get("transfer") is None:
        from jaxvision.train.config import default_config

        config = config.copy_and_resolve_references()
        config.transfer = default_config().transfer
    return make_plan(config, model_structure(model, input_shape),
                     steps_per_epoch=steps_per_epoch)
