"""Predict with a trained run: ``python -m jaxvision.predict --workdir W IMAGE_OR_FOLDER...``

Prints one JSON line per image (or writes them to ``--output``), in the order given, folders
walked recursively in sorted order (files ending in .png, .jpg, .jpeg, .bmp or .gif)::

    {"path": "cat.png", "top_k": [{"class": 3, "name": "cat", "probability": 0.91}, ...]}

``name`` is the class name the training data carried, or the class id as text when the run
saved none. A segmentation run gives ``{"path", "mask"}`` instead: per-pixel class ids at the
model's input size, as rows. A progress bar (stderr) counts the images when folders are given.

Every file is checked before anything is predicted: one that is not an image, or whose
channels the model cannot take, stops the run with one line naming it (exit code 1).
``--output`` is written atomically: a stopped run leaves no half-written file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Iterator, Sequence


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m jaxvision.predict", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", required=True,
                        help="the training workdir (or its checkpoints folder, or one step's)")
    parser.add_argument("--step", type=int, default=None,
                        help="checkpoint step (default: the newest intact one)")
    parser.add_argument("--output", default=None,
                        help="write the JSON lines to this file instead of stdout")
    parser.add_argument("--top_k", type=int, default=5,
                        help="classes per image, most probable first (classification)")
    parser.add_argument("--batch_size", type=int, default=64, help="images per model call")
    parser.add_argument("paths", nargs="+", metavar="IMAGE_OR_FOLDER")
    return parser


def image_files(paths: Sequence[str]) -> tuple[list[str], bool]:
    """The image files of ``paths`` (files as given, folders walked recursively and sorted,
    hidden entries skipped) and whether any folder was given."""
    from jaxvision.inference import IMAGE_SUFFIXES

    files, any_folder = [], False
    for path in paths:
        if os.path.isdir(path):
            any_folder = True
            found = []
            for root, dirs, names in os.walk(path):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                found += [os.path.join(root, n) for n in names
                          if not n.startswith(".") and n.lower().endswith(IMAGE_SUFFIXES)]
            if not found:
                raise ValueError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in the folder "
                                 f"{path!r}")
            files += sorted(found)
        elif os.path.exists(path):
            files.append(path)
        else:
            raise ValueError(f"{path!r}: no such image file or folder")
    return files, any_folder


def _records(predictor, files: list[str], *, top_k: int, batch_size: int,
             progress) -> Iterator[dict]:
    import numpy as np

    from jaxvision.inference import read_image

    segmentation = predictor.config.task == "segmentation"
    k = min(top_k, predictor.num_classes)
    for start in range(0, len(files), batch_size):
        names = files[start:start + batch_size]
        predictions = predictor([read_image(path, predictor.spec) for path in names])
        for path, prediction in zip(names, predictions):
            if segmentation:
                yield {"path": path, "mask": np.asarray(prediction).tolist()}
                continue
            order = np.argsort(-prediction, kind="stable")[:k]
            yield {"path": path, "top_k": [
                {"class": int(c), "name": predictor.class_name(int(c)),
                 "probability": float(prediction[c])} for c in order]}
        progress.update(len(names))


def predict(args: argparse.Namespace) -> int:
    """Runs the parsed command; returns the number of images predicted."""
    from tqdm import tqdm

    from jaxvision import inference
    from jaxvision.train.workdir import write_text_atomic

    if args.top_k < 1:
        raise ValueError(f"--top_k must be >= 1, got {args.top_k}")
    if args.batch_size < 1:
        raise ValueError(f"--batch_size must be >= 1, got {args.batch_size}")
    files, any_folder = image_files(args.paths)
    predictor = inference.load(args.workdir, step=args.step, batch_size=args.batch_size)
    for path in files:  # every file before any prediction: no half-done output
        inference.check_image_file(path, predictor.spec)
    lines = []
    with tqdm(total=len(files), unit="image", file=sys.stderr, disable=not any_folder,
              dynamic_ncols=True) as progress:
        for record in _records(predictor, files, top_k=args.top_k, batch_size=args.batch_size,
                               progress=progress):
            line = json.dumps(record) + "\n"
            if args.output:
                lines.append(line)
            else:
                sys.stdout.write(line)
    if args.output:  # all or nothing: a stopped run leaves no half-written file
        write_text_atomic(args.output, "".join(lines))
    return len(files)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; errors end with one line on stderr and exit code 1
    (``JAXVISION_TRACEBACK=1`` shows the traceback)."""
    from jaxvision.cli import run_reporting_errors, setup_logging

    args = _parser().parse_args(argv)
    setup_logging()
    run_reporting_errors(lambda _config, _workdir: predict(args), None, args.workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
