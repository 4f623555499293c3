"""Looking inside a network: its filters, its feature maps, its activations and what excites them.

Everything reaches layers by name (:mod:`jaxvision.interpret.hooks`), so it works on any zoo
model. Maps and filters come back as one tiled numpy image (:func:`image_grid`, each tile
scaled on its own so weak channels stay visible) and :func:`save_grids` writes such images
side by side to a PNG with matplotlib's object API (no pyplot, no backend switch).

* :func:`activation_stats`: mean, std and dead-ReLU fractions per layer over a batch, the
  diagnosis of dead units and of signals that vanish or explode with depth.
* :func:`se_gates`: the channel weights ``sigmoid(fc2(...))`` of every squeeze-and-excitation
  block, i.e. which channels each block keeps for this input.
* :func:`maximize_activation`: gradient ascent on the input for one channel of any layer
  (the course's Adam, lr 0.1, 30 steps), with the jitter, blur and L2 regularisers of Yosinski
  et al. (2015) that keep the image from turning into high-frequency noise.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxvision import plots
from jaxvision.augment.photometric import gaussian_blur
from jaxvision.interpret.cam import spatial_grid
from jaxvision.interpret.hooks import capture, check_layers, layer_names


def image_grid(tiles, *, columns: int | None = None, pad: int = 1) -> np.ndarray:
    """``[K, h, w]`` or ``[K, h, w, 3]`` tiles -> one image, ``columns`` wide (default
    ``ceil(sqrt(K))``), each tile min-max scaled to [0, 1]; the padding is NaN (blank)."""
    tiles = np.asarray(tiles, np.float32)
    if tiles.ndim not in (3, 4) or (tiles.ndim == 4 and tiles.shape[-1] != 3):
        raise ValueError(f"tiles must be [K, h, w] or [K, h, w, 3], got {tiles.shape}")
    count, h, w = tiles.shape[:3]
    low = tiles.min(axis=tuple(range(1, tiles.ndim)), keepdims=True)
    span = tiles.max(axis=tuple(range(1, tiles.ndim)), keepdims=True) - low
    tiles = (tiles - low) / np.where(span > 0, span, 1)
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    grid = np.full((rows * (h + pad) - pad, columns * (w + pad) - pad, *tiles.shape[3:]), np.nan,
                   np.float32)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        grid[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = tile
    return grid


def feature_maps(model: nn.Module, variables, x: jax.Array, layer: str, *, index: int = 0,
                 channels: int = 64) -> np.ndarray:
    """The first ``channels`` maps of ``layer`` for example ``index`` of ``x``, as one grid
    (a transformer's tokens as their patch grid)."""
    _, acts = capture(model, variables, x[index:index + 1], [layer])
    maps = np.asarray(spatial_grid(acts[layer], x))[0]
    return image_grid(np.moveaxis(maps[..., :channels], -1, 0))


def filters(model: nn.Module, variables, x: jax.Array, layer: str | None = None) -> np.ndarray:
    """The kernels of a conv ``layer`` (default: the first in call order) as one grid: RGB
    tiles for a 3-channel input, the mean over input channels otherwise."""
    if layer is None:
        layer = next((n for n in layer_names(model, variables, x)
                      if np.ndim(_params(variables, n).get("kernel")) == 4), None)
        if layer is None:
            raise ValueError(f"{type(model).__name__} has no convolution")
    else:
        check_layers(model, variables, x, [layer])
    kernel = np.asarray(_params(variables, layer).get("kernel"))
    if kernel.ndim != 4:
        raise ValueError(f"{layer!r} is not a convolution (its kernel: {kernel.shape})")
    tiles = np.moveaxis(kernel, -1, 0)  # [out, kh, kw, in]
    return image_grid(tiles if tiles.shape[-1] == 3 else tiles.mean(axis=-1))


def _params(variables, layer: str) -> Mapping:
    tree = variables["params"]
    for part in layer.split("/"):
        tree = tree.get(part, {})
    return tree


def activation_stats(model: nn.Module, variables, x: jax.Array,
                     layers: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """Per layer (default: every layer with an array output), over the batch: ``mean`` and
    ``std`` of its output; ``dead``, the fraction of exact zeros after a ReLU (of the layer's
    output, or of the ReLU that follows it: the same zeros); ``dead_units``, the fraction of
    channels that are zero at every position of every example (units that no longer learn)."""
    layers = list(layers or layer_names(model, variables, x))
    _, acts = capture(model, variables, x, layers)
    stats = {}
    for name, out in acts.items():
        if not isinstance(out, jax.Array) or out.ndim < 2:
            continue
        off = jax.nn.relu(out) == 0
        stats[name] = {"mean": float(out.mean()), "std": float(out.std()),
                       "dead": float(off.mean()),
                       "dead_units": float(off.reshape(-1, out.shape[-1]).all(axis=0).mean())}
    return stats


def se_gates(model: nn.Module, variables, x: jax.Array) -> dict[str, jax.Array]:
    """``{SE block: [N, C] gates}``: ``sigmoid`` of each ``SEBlock``'s ``fc2`` output (the
    only thing the block adds to fc2), for every block named ``se`` as jaxvision's are."""
    names = [n for n in layer_names(model, variables, x) if n.split("/")[-2:] == ["se", "fc2"]]
    if not names:
        raise ValueError(f"{type(model).__name__} has no squeeze-and-excitation blocks "
                         "(e.g. models.create('se_resnet18'))")
    _, acts = capture(model, variables, x, names)
    return {name.removesuffix("/fc2"): jax.nn.sigmoid(acts[name]).reshape(len(x), -1)
            for name in names}


def maximize_activation(model: nn.Module, variables, x: jax.Array, layer: str, channel, *,
                        steps: int = 30, learning_rate: float = 0.1, jitter: int = 1,
                        blur_sigma: float = 0.5, blur_every: int = 4, l2: float = 1e-3,
                        clip: tuple[float, float] | None = None,
                        unit: tuple[int, int] | None = None,
                        key: jax.Array | None = None) -> jax.Array:
    """Images that maximise ``channel`` (one int, or one per image) of ``layer``: its mean over
    the map (the course's objective) or, with ``unit=(row, col)``, that one position's value,
    which shows the pattern within the unit's receptive field. Adam on the input from the
    starting images ``x`` (the course starts from noise).

    Each step sees the image rolled by up to ``jitter`` pixels (a pattern must work wherever
    it lies) and pays ``l2 * mean(x^2)``; every ``blur_every`` steps the image is blurred with
    ``blur_sigma`` (0: never); ``clip=(low, high)`` keeps it in the data's range (else a
    pattern can win by contrast alone). Inference mode: every image is optimised on its own."""
    channel = np.broadcast_to(np.asarray(channel), x.shape[:1])
    width = jax.eval_shape(lambda x: capture(model, variables, x, [layer])[1][layer], x).shape[-1]
    if (channel < 0).any() or (channel >= width).any():
        raise ValueError(f"channels {channel.tolist()} out of range for {layer!r} "
                         f"({width} channels)")
    optimizer = optax.adam(learning_rate)
    radius = math.ceil(2 * blur_sigma)

    def objective(variables, image):  # [N]: each image's activation of its channel
        out = capture(model, variables, image, [layer])[1][layer]
        if unit is not None:
            out = out[:, unit[0], unit[1]]
        picked = jnp.take_along_axis(out, channel.reshape(-1, *[1] * (out.ndim - 1)), axis=-1)
        return picked.mean(axis=tuple(range(1, out.ndim)))

    @jax.jit
    def run(variables, x, key):
        def step(state, inputs):
            image, opt_state = state
            i, step_key = inputs
            shift = tuple(jax.random.randint(step_key, (2,), -jitter, jitter + 1))
            loss = lambda im: jnp.sum(l2 * jnp.mean(im**2, axis=(1, 2, 3))
                                      - objective(variables, jnp.roll(im, shift, axis=(1, 2))))
            updates, opt_state = optimizer.update(jax.grad(loss)(image), opt_state)
            image = optax.apply_updates(image, updates)
            if clip is not None:
                image = jnp.clip(image, *clip)
            if blur_sigma > 0:
                blurred = jax.vmap(lambda im: gaussian_blur(im, sigma=blur_sigma,
                                                            kernel_size=2 * radius + 1))(image)
                image = jnp.where((i + 1) % blur_every == 0, blurred, image)
            return (image, opt_state), None

        inputs = (jnp.arange(steps), jax.random.split(key, steps))
        return jax.lax.scan(step, (x, optimizer.init(x)), inputs)[0][0]

    return run(variables, jnp.asarray(x, jnp.float32),
               jax.random.key(0) if key is None else key)


def save_grids(grids: Mapping[str, np.ndarray], path: str, *, cmap: str = "viridis",
               columns: int | None = None, panel_size: float = 3.0, title: str = "") -> str:
    """Grids (from :func:`image_grid` and friends) as titled panels of one PNG; returns path."""
    columns = columns or len(grids)
    rows = math.ceil(len(grids) / columns)
    fig, axes = plots.figure((panel_size * columns, panel_size * rows + 0.3 * bool(title)),
                             nrows=rows, ncols=columns)
    axes = np.atleast_1d(axes).ravel()
    for ax, (name, grid) in zip(axes, grids.items()):
        image = np.nan_to_num(grid, nan=1.0) if grid.ndim == 3 else grid  # RGB: white padding
        ax.imshow(image, cmap=cmap, interpolation="nearest")
        ax.set_title(name, fontsize=8)
    for ax in axes:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    plots.save(fig, path)
    return path
