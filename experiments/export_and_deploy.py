"""Export the quickstart model to every format, run each runtime, compare them side by side.

Command:  python -m experiments.export_and_deploy [--workdir workdirs/export_and_deploy]
Expected: the quickstart model (small_cnn on the embedded digits, 8 epochs) exported by
          ``jaxvision.export`` as StableHLO, SavedModel, TFLite float and int8, ONNX float and
          int8 (int8 calibrated on 256 training digits), each reloaded by its own runtime and
          run on the 359 test digits. Float formats match the in-process predictor to
          < 1e-4 in probability; the int8 ones agree on >= 99% of top-1 answers at about 29%
          of the float file's size; latency p50/p95 per image (batch 1; the course's
          percentile rule) per runtime. Writes report.md, results.json and formats.png.
          Measured figures: see report.md of a run (they depend on the machine).
Runtime:  about 2 minutes on 2 CPU cores (training 30 s, the exports and conversions the
          rest). Needs no network; ONNX needs ``pip install "jaxvision[export]"`` and
          ``pip install --no-deps jax2onnx`` (skipped with a note otherwise).

Deployment: a deployment wrapper with the preprocessing inside, export to portable
formats, quantisation to int8 (a quarter of the bytes), and checking every artifact against
the model it came from before it ships.
"""

from __future__ import annotations

import importlib.util
import os
import time

import ml_collections
import numpy as np

from experiments import quickstart
from jaxvision import cli, export, inference, train
from jaxvision.data.builders import digits_arrays
from jaxvision.monitor import percentile


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.train = quickstart.get_config()
    config.train.num_epochs = 8
    config.calibration_images = 256
    config.latency_images = 64  # batch-1 calls per runtime for the latency percentiles
    return config


def available_formats() -> tuple[list[str], list[str]]:
    """(formats this environment can write and run, those it cannot, with why)."""
    has_onnx = all(importlib.util.find_spec(m) for m in ("jax2onnx", "onnxruntime"))
    formats = [f for f in export.FORMATS if has_onnx or not f.startswith("onnx")]
    missing = [] if has_onnx else ["onnx, onnx_int8 (install jaxvision[export] and jax2onnx)"]
    return formats, missing


def latencies(run, images: np.ndarray, count: int) -> list[float]:
    run(images[:1])  # warm: the first call of a runtime may compile or allocate
    times = []
    for image in images[:count]:
        start = time.perf_counter()
        run(image[None])
        times.append(time.perf_counter() - start)
    return times


def plot(path: str, rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["format"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    axes[0].barh(names, [r["bytes"] / 1024 for r in rows], color="tab:blue")
    axes[0].set_xlabel("artifact size (KiB)")
    axes[0].set_title("Artifact size (int8: under 30% of float)")
    p50 = np.array([r["p50_ms"] for r in rows])
    p95 = np.array([r["p95_ms"] for r in rows])
    axes[1].barh(names, p50, color="tab:orange", label="p50")
    axes[1].barh(names, p95 - p50, left=p50, color="tab:orange", alpha=0.35, label="p95")
    axes[1].set_xscale("log")
    axes[1].set_xlabel("latency per image, batch 1 (ms, log scale)")
    axes[1].set_title("Latency by runtime")
    axes[1].legend(loc="lower right")
    for ax in axes:
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(config, workdir: str) -> dict:
    run_dir = os.path.join(workdir, "train")
    summary = train.train_and_evaluate(config.train, run_dir)
    predictor = inference.load(run_dir)
    images, labels = digits_arrays("test")
    calibration = digits_arrays("train")[0][:config.calibration_images]
    formats, missing = available_formats()
    paths = export.export_workdir(run_dir, os.path.join(workdir, "export"), formats,
                                  representative=calibration)
    expected = predictor(images)
    rows = [{"format": "jax (in process)", "bytes": export.quantize.nbytes(predictor.variables),
             "max_abs_diff": 0.0, "top1_agreement": 1.0,
             "accuracy": float((expected.argmax(1) == labels).mean())}]
    rows[0].update(_percentiles(latencies(predictor, images, config.latency_images)))
    for fmt, path in paths.items():
        run = export.LOADERS[fmt](path)
        got = np.asarray(run(images))
        row = {"format": fmt, "bytes": export.artifact_size(path),
               "max_abs_diff": float(np.abs(got - expected).max()),
               "top1_agreement": float((got.argmax(1) == expected.argmax(1)).mean()),
               "accuracy": float((got.argmax(1) == labels).mean())}
        row.update(_percentiles(latencies(run, images, config.latency_images)))
        rows.append(row)
    plot(os.path.join(workdir, "formats.png"), rows)
    table = ["| format | bytes | max abs diff (prob) | top-1 agreement | accuracy | p50 ms | "
             "p95 ms |", "|---|---:|---:|---:|---:|---:|---:|"]
    table += [f"| {r['format']} | {r['bytes']:,} | {r['max_abs_diff']:.2e} | "
              f"{r['top1_agreement']:.4f} | {r['accuracy']:.4f} | {r['p50_ms']:.2f} | "
              f"{r['p95_ms']:.2f} |" for r in rows]
    results = {"engine_eval_accuracy": summary["eval_accuracy"], "formats": rows,
               "not_exported": missing}
    cli.write_report(workdir, [
        "# Export and deployment of the quickstart model", "",
        f"{config.train.model} trained {config.train.num_epochs} epochs on digits (engine eval "
        f"accuracy {summary['eval_accuracy']:.4f}), exported with BatchNorm folded and the "
        f"preprocessing inside; every artifact reloaded by its runtime and run on the "
        f"{len(labels)} test digits. Differences are against the in-process predictor. "
        f"Latency: {config.latency_images} single-image calls per runtime, p50/p95 by the "
        "course's rule `sorted(x)[int(q n)]`. The in-process row's size is its float32 "
        "variables before folding.", "", *table, "",
        *(f"Not exported here: {m}" for m in missing), "", "![formats](formats.png)",
    ], results)
    return results


def _percentiles(times: list[float]) -> dict:
    return {"p50_ms": 1e3 * percentile(times, 0.5), "p95_ms": 1e3 * percentile(times, 0.95)}


if __name__ == "__main__":
    cli.run(get_config, main, name="export_and_deploy")
