"""Named intermediate feature maps of any jaxvision model (for FPN, Grad-CAM, transfer).

Models ``sow`` their stage outputs into the ``intermediates`` collection; :func:`features` runs
the model once and returns them by name.
"""

from __future__ import annotations

from typing import Any, Iterable

import flax.linen as nn
import jax


def features(model: nn.Module, variables: Any, x: jax.Array, *,
             names: Iterable[str] | None = None, train: bool = False,
             with_output: bool = False, **apply_kwargs) -> dict[str, jax.Array]:
    """Runs ``model`` on ``x`` and returns ``{name: feature map}`` for the sown ``names``.

    ``names=None`` returns every sown map. With ``with_output=True`` the model's output is
    included under ``"output"``. In training mode pass ``rngs`` and handle ``batch_stats`` as
    usual through ``apply_kwargs`` (updated BN statistics are discarded here).
    """
    mutable = ["intermediates"] + (["batch_stats"] if train else [])
    variables = {k: v for k, v in variables.items() if k != "intermediates"}
    output, state = model.apply(variables, x, train=train, mutable=mutable, **apply_kwargs)
    sown = {name: values[-1] for name, values in state.get("intermediates", {}).items()
            if not isinstance(values, dict)}
    if names is not None:
        names = list(names)
        missing = [n for n in names if n not in sown]
        if missing:
            raise KeyError(f"{type(model).__name__} does not sow {missing}; "
                           f"available: {sorted(sown)}")
        sown = {n: sown[n] for n in names}
    if with_output:
        sown["output"] = output
    return sown
