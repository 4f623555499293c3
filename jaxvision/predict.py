"""Predict with a trained run: ``python -m jaxvision.predict --workdir W IMAGE_OR_FOLDER...``

Prints one JSON line per image (or writes them to ``--output``), in the order given, folders
walked recursively in sorted order (files ending in .png, .jpg, .jpeg, .bmp or .gif)::

    {"path": "cat.png", "top_k": [{"class": 3, "name": "cat", "probability": 0.91}, ...]}

``name`` is the class name the training data carried, or the class id as text when the run
saved none. A segmentation run gives ``{"path", "mask"}`` instead: per-pixel class ids at the
model's input size, as rows. A detection run gives ``{"path", "detections": [{"box": [x1, y1,
x2, y2], "class", "name", "score"}, ...]}``, boxes in the image's own pixels, most confident
first, those under ``--min_score`` left out. ``--draw DIR`` also saves each image as a PNG
there with its boxes (or its mask) drawn. A progress bar (stderr) counts the images when
folders are given.

Every file is checked before anything is predicted: one that is not an image, or whose
channels the model cannot take, stops the run with one line naming it (exit code 1).
``--file_list`` reads the paths from a text file, one per line.

``--output`` (``.jsonl``, or ``.csv``: for classification one row per image, path then class,
name and probability for each of the top k; for detection one row per box) is appended batch by batch and flushed to disk, so a
stopped run can resume: run the same command again and the files already in the output are
skipped (a half-written last line, from a kill mid-write, is dropped and redone).
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
    parser.add_argument("--min_score", type=float, default=0.3,
                        help="detection: leave out boxes scoring under this")
    parser.add_argument("--draw", default=None, metavar="DIR",
                        help="save each image with its predicted boxes or mask drawn, as PNG")
    parser.add_argument("--batch_size", type=int, default=64, help="images per model call")
    parser.add_argument("--file_list", default=None,
                        help="a text file of image paths, one per line (with or instead of "
                             "IMAGE_OR_FOLDER)")
    parser.add_argument("paths", nargs="*", metavar="IMAGE_OR_FOLDER")
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


def _records(predictor, files: list[str], *, top_k: int, batch_size: int, min_score: float,
             draw: str | None, progress) -> Iterator[dict]:
    import numpy as np

    from jaxvision import plots
    from jaxvision.inference import read_image, resize_images

    task = predictor.config.task
    k = min(top_k, predictor.num_classes)
    for start in range(0, len(files), batch_size):
        names = files[start:start + batch_size]
        images = [read_image(path, predictor.spec) for path in names]
        predictions = predictor(images)
        for i, (path, image) in enumerate(zip(names, images)):
            drawing = {"image": image}
            if task == "segmentation":
                record = {"path": path, "mask": np.asarray(predictions[i]).tolist()}
                drawing = {"mask": predictions[i], "num_classes": predictor.num_classes,
                           "image": resize_images(predictor.spec, [image])[0]}
            elif task == "detection":
                keep = predictions["boxes_valid"][i] & (predictions["scores"][i] >= min_score)
                record = {"path": path, "detections": [
                    {"box": [round(float(v), 2) for v in box], "class": int(c),
                     "name": predictor.class_name(int(c)), "score": float(s)}
                    for box, c, s in zip(predictions["boxes"][i][keep],
                                         predictions["box_classes"][i][keep],
                                         predictions["scores"][i][keep])]}
                drawing = {"image": image, "boxes": [d["box"] for d in record["detections"]],
                           "labels": [f"{d['name']} {d['score']:.2f}"
                                      for d in record["detections"]]}
            else:
                order = np.argsort(-predictions[i], kind="stable")[:k]
                record = {"path": path, "top_k": [
                    {"class": int(c), "name": predictor.class_name(int(c)),
                     "probability": float(predictions[i][c])} for c in order]}
            if draw:
                plots.save_prediction(_drawing_path(draw, path), **drawing)
            yield record
        progress.update(len(names))


def _drawing_path(folder: str, path: str) -> str:
    """``folder/<the image's path with separators as '__'>.png``: unique per input path."""
    relative = os.path.splitext(os.path.normpath(path).lstrip(os.sep))[0]
    return os.path.join(folder, relative.replace(os.sep, "__") + ".png")


def _done_paths(output: str) -> set[str]:
    """Paths already in ``output`` (JSONL or CSV); a torn last line is cut off the file."""
    import csv

    if not os.path.exists(output):
        return set()
    with open(output, "rb") as f:
        data = f.read()
    complete = data[:data.rfind(b"\n") + 1]
    if len(complete) != len(data):
        with open(output, "wb") as f:  # drop the torn line; its images are predicted again
            f.write(complete)
    text = complete.decode()
    if output.endswith(".csv"):
        rows = list(csv.reader(text.splitlines()))
        return {row[0] for row in rows[1:] if row}
    return {json.loads(line)["path"] for line in text.splitlines() if line.strip()}


def _csv_rows(record: dict, top_k: int, header: bool) -> list[list]:
    if "detections" in record:
        rows = [["path", "class", "name", "score", "x1", "y1", "x2", "y2"]] if header else []
        return rows + [[record["path"], d["class"], d["name"], d["score"], *d["box"]]
                       for d in record["detections"]]
    if "top_k" not in record:
        raise ValueError("CSV output holds classification or detection results; use .jsonl "
                         "for masks")
    rows = []
    if header:
        rows.append(["path"] + [f"{field}_{i + 1}" for i in range(top_k)
                                for field in ("class", "name", "probability")])
    rows.append([record["path"]] + [value for entry in record["top_k"] for value in
                                    (entry["class"], entry["name"], entry["probability"])])
    return rows


def predict(args: argparse.Namespace) -> int:
    """Runs the parsed command; returns the number of images predicted (this run)."""
    import csv
    import io

    from tqdm import tqdm

    from jaxvision import inference

    if args.top_k < 1:
        raise ValueError(f"--top_k must be >= 1, got {args.top_k}")
    if args.batch_size < 1:
        raise ValueError(f"--batch_size must be >= 1, got {args.batch_size}")
    paths = list(args.paths)
    if args.file_list:
        with open(args.file_list) as f:
            paths += [line.strip() for line in f if line.strip()]
    if not paths:
        raise ValueError("give image files or folders, or --file_list")
    files, any_folder = image_files(paths)
    done = _done_paths(args.output) if args.output else set()
    files = [path for path in files if path not in done]
    predictor = inference.load(args.workdir, step=args.step, batch_size=args.batch_size)
    if args.draw:
        os.makedirs(args.draw, exist_ok=True)
    for path in files:  # every file before any prediction
        inference.check_image_file(path, predictor.spec)
    k = min(args.top_k, predictor.num_classes)
    sink = open(args.output, "a", newline="") if args.output else sys.stdout
    header = bool(args.output) and args.output.endswith(".csv") and os.path.getsize(
        args.output) == 0
    try:
        with tqdm(total=len(files), unit="image", file=sys.stderr,
                  disable=not (any_folder or args.file_list), dynamic_ncols=True) as progress:
            batch = []
            for record in _records(predictor, files, top_k=args.top_k,
                                   batch_size=args.batch_size, min_score=args.min_score,
                                   draw=args.draw, progress=progress):
                if args.output and args.output.endswith(".csv"):
                    buffer = io.StringIO()
                    csv.writer(buffer).writerows(_csv_rows(record, k, header))
                    header = False
                    batch.append(buffer.getvalue())
                else:
                    batch.append(json.dumps(record) + "\n")
                if len(batch) == args.batch_size:
                    _write(sink, batch)
            _write(sink, batch)
    finally:
        if sink is not sys.stdout:
            sink.close()
    return len(files)


def _write(sink, lines: list[str]) -> None:
    """Whole lines, flushed to disk: what is in the file is done."""
    sink.write("".join(lines))
    sink.flush()
    if sink is not sys.stdout:
        os.fsync(sink.fileno())
    lines.clear()


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
