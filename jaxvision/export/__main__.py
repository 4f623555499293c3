"""``python -m jaxvision.export --workdir W --format F [--format G ...] [--out DIR]``.

Exports the newest checkpoint of a training run. The int8 formats calibrate on the first
``--calibration`` training images of the run's data set (embedded or TFDS, as trained).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from jaxvision.export import FORMATS


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m jaxvision.export", description=__doc__)
    parser.add_argument("--workdir", required=True, help="a training run's workdir")
    parser.add_argument("--format", action="append", choices=(*FORMATS, "all"),
                        help="repeatable; default: all")
    parser.add_argument("--out", help="output folder (default: <workdir>/export)")
    parser.add_argument("--calibration", type=int, default=256,
                        help="training images for int8 calibration")
    return parser


def _calibration_images(workdir: str, count: int):
    """The first ``count`` training images of the run's data, uint8 at the model's size."""
    import numpy as np

    from jaxvision import inference
    from jaxvision.data import build_datasets

    config = inference._config_from_json(inference._read_json(
        os.path.join(workdir, "config.json"), workdir))
    spec = inference.InputSpec.from_workdir(workdir)
    images = []
    for batch in build_datasets(config).train.epoch(0):  # shuffled by the run's seed
        images.extend(np.asarray(batch["image"]))
        if len(images) >= count:
            break
    return inference.resize_images(spec, images[:count])


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from jaxvision import export

    formats = list(FORMATS) if not args.format or "all" in args.format else args.format
    if not os.path.isdir(args.workdir):
        print(f"error: no workdir at {args.workdir}", file=sys.stderr)
        return 2
    out = args.out or os.path.join(args.workdir, "export")
    calibration = None
    if any(f.endswith("_int8") for f in formats):
        calibration = _calibration_images(args.workdir, args.calibration)
    paths = export.export_workdir(args.workdir, out, formats, representative=calibration)
    for fmt, path in paths.items():
        print(f"{fmt:12s} {export.artifact_size(path):>12,d} bytes  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
