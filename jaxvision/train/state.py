"""The train state: everything a resumed run needs, and nothing a checkpoint cannot hold."""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxvision.train.freeze import Freeze


@struct.dataclass
class TrainState:
    """Parameters, the model's mutable collections (``model_state``: BatchNorm statistics and
    whatever else the model declares), optimizer state, step and base RNG.

    ``rng`` holds raw key data (uint32) rather than a typed key so that checkpoints store a
    plain array; ``key`` rebuilds the typed key. Per-step keys are ``fold_in(key, step)``, so
    the random stream depends only on the seed and the step, never on how the run was split.
    """

    step: jax.Array
    params: Any
    model_state: Any  # {collection name: tree}, e.g. {"batch_stats": ...}; {} for none
    opt_state: Any
    rng: jax.Array
    apply_fn: Callable = struct.field(pytree_node=False)
    tx: optax.GradientTransformation = struct.field(pytree_node=False)

    @property
    def key(self) -> jax.Array:
        return jax.random.wrap_key_data(self.rng)

    @property
    def batch_stats(self) -> Any:
        return self.model_state.get("batch_stats", {})

    def variables(self) -> dict:
        return {"params": self.params, **self.model_state}

    def checkpoint_items(self) -> dict:
        """The arrays a checkpoint stores (the functions are rebuilt from the config)."""
        return {"step": self.step, "params": self.params, "model_state": self.model_state,
                "opt_state": self.opt_state, "rng": self.rng}

    def with_checkpoint_items(self, items: dict) -> "TrainState":
        return self.replace(**items)


def create_train_state(model: nn.Module, tx: optax.GradientTransformation, *, seed: int,
                       input_shape: tuple[int, ...], freeze: Freeze = Freeze()) -> TrainState:
    """Initialises ``model`` on a dummy batch of ``input_shape`` (NHWC, batch 1); the
    optimizer state covers the parameters ``freeze`` leaves trainable."""
    root = jax.random.key(seed)
    init_key, train_key = jax.random.split(root)
    variables = model.init({"params": init_key, "dropout": init_key},
                           jnp.zeros(input_shape, jnp.float32), train=False)
    params = variables["params"]
    # Sown values are outputs, not state.
    model_state = {name: tree for name, tree in variables.items()
                   if name not in ("params", "intermediates")}
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        model_state=model_state,
        opt_state=tx.init(freeze.split(params)[0] if freeze else params),
        rng=jax.random.key_data(train_key),
        apply_fn=model.apply,
        tx=tx,
    )
