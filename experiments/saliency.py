"""Where do attribution methods say a CNN looks? Scored against the object masks of ``shapes``.

Command:  python -m experiments.saliency --workdir workdirs/saliency
Expected: a SimpleCNN trained on the embedded ``shapes/cls32`` images (one object each) gets
          near-perfect test accuracy, and every method puts more of its attribution mass on the
          object, and its peak on the object more often, than a random map, whose mass and
          pointing-game hits are the object's area fraction (about 0.16).
Measured: (2026-12-01, defaults: test accuracy 1.000, 200 test images, object area 0.162)
          pointing game / mass inside the mask: Grad-CAM 0.950 / 0.428, Grad-CAM++ 0.970 /
          0.458, CAM 0.735 / 0.331 (its map is the 4x4 one after the last pooling), saliency
          0.780 / 0.324, SmoothGrad 0.890 / 0.239, guided backprop 0.985 / 0.401, occlusion
          0.860 / 0.417, input x gradient 1.000 / 0.664, integrated gradients 1.000 / 0.736;
          random map 0.140 / 0.163, centre prior 0.530 / 0.278, and the image's brightness
          1.000 / 0.450: the objects are the bright pixels, so methods that multiply by the
          input (input x gradient, integrated gradients from black) inherit a perfect pointing
          score from the input itself. Gradients concentrate on the objects' edges and corners.
Runtime:  94 s of CPU time, under 3 minutes on 2 shared CPU cores (one 6-epoch training on
          2000 images, then nine methods on 200 images); 1 minute for a trained workdir.

Scores (both from the attribution's per-pixel magnitude, input-space attributions summed over
the colour channels as ``|a|``): **mass**, the fraction of the total inside the object's mask;
**pointing game** (Zhang et al. 2016, without their 15-pixel tolerance), whether the map's peak
lies on the object. Baselines: a uniform random map, a centred Gaussian (objects are drawn
away from the borders, so the centre is a strong prior) and the image's brightness.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxvision import cli, models, plots, train
from jaxvision.data import from_arrays, make_datasets
from jaxvision.data.shapes import CLASS_NAMES, ShapesSpec, generate
from jaxvision.interpret import attribution
from jaxvision.interpret.cam import cam, grad_cam, grad_cam_plus_plus


def shapes_config() -> ml_collections.ConfigDict:
    """SimpleCNN on 2000 ``shapes/cls32`` images for 6 epochs: near-perfect in about a minute."""
    config = train.default_config()
    config.dataset = "shapes/cls32"
    config.model = "simple_cnn"
    config.batch_size = 64
    config.num_epochs = 6
    config.optimizer.name = "adamw"
    config.optimizer.learning_rate = 3e-3
    config.optimizer.schedule = "cosine"
    config.best_metric = ""
    config.tensorboard = False
    config.log_every_steps = 50
    config.num_train = 2000
    config.num_test = 500
    return config


def get_config() -> ml_collections.ConfigDict:
    config = shapes_config()
    config.num_eval = 200  # test images the maps are scored on
    config.eval_chunk = 50  # images per attribution call
    config.cam_layer = "bn3"  # the last conv's (normalised) output, 8x8 on 32x32 images
    config.ig_steps = 32
    config.smoothgrad_samples = 16
    config.smoothgrad_stdev = 0.15  # 15% of the [0, 1] range (SmoothGrad's 10-20%)
    config.occlusion_window = 8
    config.occlusion_stride = 4
    config.num_show = 6
    return config


def train_on_shapes(config, workdir: str):
    """The engine trains ``config`` on the first ``num_train`` / ``num_test`` examples of
    ``shapes/cls32`` (its pixels, generated here with their masks); returns the summary, the
    final state and the test arrays."""
    spec = ShapesSpec(image_size=32, num_train=config.num_train, num_test=config.num_test)
    train_data, test_data = generate(spec, "train"), generate(spec, "test")
    datasets = make_datasets(
        *(from_arrays(d["image"], d["label"], num_classes=len(CLASS_NAMES))
          for d in (train_data, test_data)),
        batch_size=config.batch_size, eval_batch_size=config.eval_batch_size, seed=config.seed)
    summary = train.train_and_evaluate(config, workdir, datasets=datasets)
    return summary, train.load_state(workdir, config), test_data


def interpretable_model(config):
    """The trained model with the XLA convolution: the same function, compiled faster than
    the engine's default for the many one-off programs of an interpretation."""
    return models.create(config.model, num_classes=len(CLASS_NAMES),
                         **{**config.model_kwargs, "conv": "xla"})


def pixel_magnitude(attributions: jax.Array) -> jax.Array:
    """``[N, H, W, C]`` input attributions -> ``[N, H, W]``: sum of ``|a|`` over channels."""
    return jnp.abs(attributions).sum(axis=-1)


def methods(model, variables, config) -> dict:
    """``{name: f(x, labels) -> [N, H, W] non-negative map}``."""
    layer = config.cam_layer
    window = (config.occlusion_window,) * 2 + (3,)
    strides = (config.occlusion_stride,) * 2 + (3,)
    key = jax.random.key(config.seed)
    return {
        "CAM": lambda x, y: cam(model, variables, x, y),
        "Grad-CAM": lambda x, y: grad_cam(model, variables, x, layer, y),
        "Grad-CAM++": lambda x, y: grad_cam_plus_plus(model, variables, x, layer, y),
        "saliency": lambda x, y: pixel_magnitude(attribution.saliency(model, variables, x, y)),
        "input x gradient": lambda x, y: pixel_magnitude(
            attribution.input_x_gradient(model, variables, x, y)),
        "SmoothGrad": lambda x, y: pixel_magnitude(attribution.smoothgrad(
            model, variables, x, y, key=key, stdevs=config.smoothgrad_stdev,
            nt_samples=config.smoothgrad_samples)),
        "integrated gradients": lambda x, y: pixel_magnitude(attribution.integrated_gradients(
            model, variables, x, y, n_steps=config.ig_steps)[0]),
        "guided backprop": lambda x, y: pixel_magnitude(
            attribution.guided_backprop(model, variables, x, y)),
        "occlusion": lambda x, y: pixel_magnitude(attribution.occlusion(
            model, variables, x, y, sliding_window_shapes=window, strides=strides)),
    }


def baselines(images: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Maps that know nothing of the model: uniform noise, a centred Gaussian (sigma a quarter
    of the side) and the image's brightness (the objects are the bright pixels)."""
    n, h, w = images.shape[:3]
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    centre = np.exp(-((yy - h / 2) ** 2 + (xx - w / 2) ** 2) / (2 * (h / 4) ** 2))
    return {"random map": np.random.default_rng(seed).random((n, h, w)),
            "centre prior": np.broadcast_to(centre, (n, h, w)),
            "brightness": images.astype(np.float32).sum(axis=-1)}


def mask_scores(maps: np.ndarray, masks: np.ndarray) -> dict[str, float]:
    """Mean attribution mass inside the mask and pointing-game hit rate (an empty map has
    mass 0 and points at pixel (0, 0))."""
    flat, inside = maps.reshape(len(maps), -1), masks.reshape(len(masks), -1)
    mass = (flat * inside).sum(axis=1) / np.maximum(flat.sum(axis=1), 1e-30)
    hits = inside[np.arange(len(flat)), flat.argmax(axis=1)]
    return {"mass": float(mass.mean()), "pointing": float(hits.mean())}


def main(config, workdir: str) -> dict:
    os.makedirs(workdir, exist_ok=True)
    summary, state, test_data = train_on_shapes(config, workdir)
    model = interpretable_model(config)
    variables = state.variables()
    n, chunk = config.num_eval, config.eval_chunk
    x = jnp.asarray(test_data["image"][:n], jnp.float32) / 255.0
    labels = jnp.asarray(test_data["label"][:n])
    masks = test_data["semantic_mask"][:n] > 0

    maps = {}
    for name, method in methods(model, variables, config).items():
        maps[name] = np.concatenate([np.asarray(method(x[i:i + chunk], labels[i:i + chunk]))
                                     for i in range(0, n, chunk)])
    maps.update(baselines(test_data["image"][:n], config.seed))
    scores = {name: mask_scores(m, masks) for name, m in maps.items()}
    results = {"eval_accuracy": float(summary["eval_accuracy"]), "num_eval": n,
               "object_area_fraction": float(masks.mean()), "scores": scores}

    show = min(config.num_show, n)
    names = list(maps)
    fig, axes = plots.figure((1.3 * (len(names) + 1), 1.4 * show), nrows=show,
                             ncols=len(names) + 1)
    for i in range(show):
        axes[i, 0].imshow(test_data["image"][i])
        axes[i, 0].contour(masks[i], levels=[0.5], colors="w", linewidths=0.8)
        for ax, name in zip(axes[i, 1:], names):
            ax.imshow(maps[name][i], cmap="inferno")
            ax.contour(masks[i], levels=[0.5], colors="c", linewidths=0.6)
        for ax, name in zip(axes[0], ["image", *names]):
            ax.set_title(name, fontsize=7)
        for ax in axes[i]:
            ax.axis("off")
    plots.save(fig, os.path.join(workdir, "saliency.png"), dpi=110)

    grad = scores["Grad-CAM"]["pointing"]
    lines = ["# Attribution methods against object masks (shapes/cls32)", "",
             f"SimpleCNN, {config.num_train} training images, {config.num_epochs} epochs: test "
             f"accuracy {results['eval_accuracy']:.3f}. Maps for the true class of the first "
             f"{n} test images; the object covers {results['object_area_fraction']:.3f} of "
             "the image on average.", "",
             f"**Grad-CAM pointing game: {grad:.3f}** (peak on the object) vs "
             f"{scores['random map']['pointing']:.3f} for a random map.", "",
             "| method | mass inside the mask | pointing game |", "|---|---:|---:|"]
    lines += [f"| {name} | {s['mass']:.3f} | {s['pointing']:.3f} |" for name, s in scores.items()]
    lines += ["", f"Grad-CAM/Grad-CAM++ at `{config.cam_layer}`; integrated gradients "
              f"{config.ig_steps} Gauss-Legendre steps from a black image; SmoothGrad "
              f"{config.smoothgrad_samples} samples, sigma {config.smoothgrad_stdev}; occlusion "
              f"{config.occlusion_window}x{config.occlusion_window} black windows, stride "
              f"{config.occlusion_stride}. Input-space maps are sum |a| over colours.", "",
              "The objects are the bright pixels (background at most 90/255), so the brightness "
              "baseline points at them every time; methods that multiply by the input (input x "
              "gradient, integrated gradients from a black image) get part of their score from "
              "the input itself.", "",
              "Command: `python -m experiments.saliency --workdir workdirs/saliency`", "",
              "![saliency](saliency.png)"]
    cli.write_report(workdir, lines, results)
    return results


if __name__ == "__main__":
    cli.run(get_config, main, name="saliency")
