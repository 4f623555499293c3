"""Denoising and inpainting autoencoders: corrupted inputs, clean targets.

Command:  python -m experiments.denoising --workdir workdirs/denoising
Expected: the conv autoencoder trained through the engine on corrupted digits (the noise made
          on device inside the jitted step, ramped up by a curriculum) and scored against the
          clean images: its output's PSNR is well above the noisy input's, for Gaussian and
          salt-and-pepper noise, with and without a U-Net-style skip; the inpainting model (random
          square holes growing from 25% to 50% of the side, loss on the hole only) fills the
          hole better than leaving it black.
Measured: (2026-12-01, defaults, 15 epochs each) PSNR noisy input -> output: Gaussian
          sigma 0.3 12.97 -> 17.48 dB (+4.51); with the skip 17.34 (+4.37: no help at this
          size); salt-and-pepper 20% with the skip 10.98 -> 16.78 (+5.80). Inpainting (holes
          of half the side): MSE in the hole 0.066 vs 0.336 left black; the composite (known
          pixels kept) 18.42 dB vs 11.18 dB for the holed input.
Runtime:  about 4.5 minutes on 2 shared CPU cores (four trainings of about 60 s).
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from experiments._autoencoders import ae_config, as_float, digits, image_row, train_model
from jaxvision import cli, models, plots
from jaxvision.autoencoders import Corrupted
from jaxvision.metrics import image_quality as iq


def get_config() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(dict(epochs=15, learning_rate=3e-3, channels=(32, 64),
                                          gaussian_std=0.3, salt_pepper=0.2, hole=0.5, seed=0))


def variants(config):
    """name -> (corruption kind, level, start level, skip, masked loss)."""
    return {"gaussian": ("gaussian", config.gaussian_std, 0.1, None, False),
            "gaussian + skip": ("gaussian", config.gaussian_std, 0.1, "add", False),
            "salt & pepper + skip": ("salt_pepper", config.salt_pepper, 0.05, "add", False),
            "inpainting + skip": ("box", config.hole, 0.25, "add", True)}


def main(config, workdir: str) -> dict:
    os.makedirs(workdir, exist_ok=True)
    train_u8, _ = digits("train")
    test_u8, _ = digits("test")
    x_test = as_float(test_u8)
    results, shown = {}, {}
    for i, (name, (kind, level, start, skip, masked)) in enumerate(variants(config).items()):
        inner = models.create("conv_autoencoder", channels=tuple(config.channels), skip=skip)
        model = Corrupted(inner, kind=kind, level=level, start_level=start,
                          curriculum_steps=len(train_u8) // 32 * config.epochs // 2)
        cfg = ae_config(epochs=config.epochs, learning_rate=config.learning_rate, masked=masked)
        cfg.seed = config.seed
        run = train_model(cfg, os.path.join(workdir, f"run{i}"), model, train_u8, test_u8)
        out = jax.jit(lambda v, x: model.apply(v, x, train=False))(run.state.variables(),
                                                                    jnp.asarray(x_test[:512]))
        out = jax.device_get(out)
        hole = np.asarray(out["mask"], bool)[..., 0]
        s = run.summary
        results[name] = {"psnr": s["eval_psnr"], "input_psnr": s["eval_input_psnr"],
                         "ssim": s["eval_ssim"], "input_ssim": s["eval_input_ssim"],
                         "seconds": run.seconds}
        output = out["reconstruction"]
        if masked:  # trained on the hole only: keep the known pixels, fill the hole
            err = (out["reconstruction"][..., 0] - x_test[:512, ..., 0]) ** 2
            results[name]["hole_mse"] = float(err[hole].mean())
            results[name]["hole_mse_black"] = float((x_test[:512, ..., 0][hole] ** 2).mean())
            output = np.where(out["mask"] > 0, out["reconstruction"], out["corrupted"])
            results[name]["composite_psnr"] = float(np.mean(iq.psnr(output, x_test[:512])))
            results[name]["composite_input_psnr"] = float(np.mean(np.minimum(
                iq.psnr(out["corrupted"], x_test[:512]), 100.0)))
        shown[name] = (out["corrupted"][:8], output[:8])

    fig, axes = plots.figure((8, 1.1 * (1 + 2 * len(shown))), nrows=1 + 2 * len(shown), ncols=8)
    image_row(axes[0], x_test[:8], "clean")
    for r, (name, (noisy, recon)) in enumerate(shown.items()):
        image_row(axes[1 + 2 * r], noisy, f"{name}\ninput")
        image_row(axes[2 + 2 * r], recon, "output")
    plots.save(fig, os.path.join(workdir, "denoising.png"), dpi=110)

    lines = ["# Denoising and inpainting autoencoders (digits)", "",
             f"Conv autoencoder {tuple(config.channels)} channels, BatchNorm, sigmoid output, "
             f"{config.epochs} epochs each; the corruption level ramps linearly from the start "
             "level to the final one over the first half of training; eval at the final level "
             "with a fixed noise key.", "",
             "| model | input PSNR | output PSNR | gain (dB) | input SSIM | output SSIM |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {n} | {r['input_psnr']:.2f} | {r['psnr']:.2f} | "
              f"**{r['psnr'] - r['input_psnr']:+.2f}** | {r['input_ssim']:.3f} | {r['ssim']:.3f} |"
              for n, r in results.items()]
    inp = results["inpainting + skip"]
    lines += ["", f"Inpainting (loss on the hole only, so the output is composited: known pixels "
              f"kept, the hole filled): MSE inside the hole {inp['hole_mse']:.4f} vs "
              f"{inp['hole_mse_black']:.4f} for the black hole left as is; PSNR of the "
              f"composite {inp['composite_psnr']:.2f} dB vs {inp['composite_input_psnr']:.2f} dB "
              "for the holed input (first 512 test images; the table's row is the raw output).",
              "",
              "SSIM uses a sigma-0.5 Gaussian window (5x5): the usual 11x11 window does not fit "
              "8x8 digits.", "",
              "Command: `python -m experiments.denoising --workdir workdirs/denoising`", "",
              "![denoising](denoising.png)"]
    cli.write_report(workdir, lines, results)
    return results


if __name__ == "__main__":
    cli.run(get_config, main, name="denoising")
