"""Instance masks for COCO 'segm' evaluation: RLE in and out, areas and mask IoU, in numpy.

Masks are handled as COCO's run-length encoding handles them: column-major (Fortran order)
runs that start with background. A mask here is the sorted list of its foreground intervals
``[start, end)`` on that flat index, so the intersection of a detection with a ground-truth
mask is a sum over the detection's intervals of the ground truth's coverage function, looked up
with ``searchsorted``: no mask is ever decoded to pixels, and all pairs are done at once.

Accepted inputs (``segmentation`` of an annotation or a result): a dense ``[H, W]`` array
(non-zero = foreground), an RLE dict ``{"size": [H, W], "counts": ...}`` with ``counts`` a list
of run lengths or COCO's compressed string (bytes or str). Polygons must be converted first
(``pycocotools.mask.frPyObjects``): their rasterization is pycocotools' own.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np


def decode_counts(counts: str | bytes) -> np.ndarray:
    """Run lengths from COCO's compressed RLE string (``rleFrString`` in pycocotools' C)."""
    return _decode_many([counts.encode() if isinstance(counts, str) else bytes(counts)])[0]


def _decode_many(strings: Sequence[bytes]) -> list[np.ndarray]:
    """Many compressed RLE strings decoded at once (one pass of numpy over their bytes)."""
    data = np.frombuffer(b"".join(strings), np.uint8).astype(np.int64) - 48
    lengths = np.asarray([len(s) for s in strings], np.int64)
    if (data < 0).any() or (data > 63).any():
        raise ValueError("not a COCO compressed RLE string (characters outside '0'..'o')")
    more = (data & 0x20) != 0
    ends_at = np.cumsum(lengths) - 1
    if more[ends_at[lengths > 0]].any():
        raise ValueError("truncated COCO compressed RLE string")
    last = np.flatnonzero(~more)  # the last 5-bit group of each value
    first = np.concatenate([[0], last[:-1] + 1]).astype(np.int64)
    group = np.arange(len(data)) - np.repeat(first, last - first + 1)
    values = (np.add.reduceat((data & 0x1F) << (5 * group), first) if len(last)
              else np.zeros(0, np.int64))
    negative = (data[last] & 0x10) != 0  # sign bit of the last group
    values = np.where(negative, values - (np.int64(1) << (5 * (last - first + 1))), values)
    # From the fourth value on, each is stored as a difference to the value two places back:
    # a cumulative sum along each string's odd values, and along its even values from the third.
    per_string = np.diff(np.searchsorted(last, np.concatenate([[-1], ends_at]), side="right"))
    string_start = np.cumsum(per_string) - per_string
    local = np.arange(len(values)) - np.repeat(string_start, per_string)
    runs = values.copy()
    for parity in (0, 1):
        chain = np.where((local % 2 == parity) & (local > 0), values, 0)
        total = np.cumsum(chain)
        before = np.repeat(total[np.maximum(string_start - 1, 0)] * (string_start > 0), per_string)
        runs = np.where((local % 2 == parity) & (local > 0), total - before, runs)
    return np.split(runs, np.cumsum(per_string)[:-1])


def encode_counts(runs: Sequence[int]) -> str:
    """COCO's compressed RLE string of run lengths (``rleToString``)."""
    runs = np.asarray(runs, np.int64)
    out = bytearray()
    for i, value in enumerate(runs.tolist()):
        x = value - runs[i - 2] if i > 2 else value
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(c + 48)
    return out.decode("ascii")


def mask_runs(mask: np.ndarray) -> np.ndarray:
    """Run lengths of a dense ``[H, W]`` mask, column-major, starting with background."""
    flat = np.asarray(mask).astype(bool).ravel(order="F")
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds)
    return np.concatenate([[0], runs]) if flat.size and flat[0] else runs


def encode(mask: np.ndarray) -> dict:
    """A dense ``[H, W]`` mask as a compressed COCO RLE (``pycocotools.mask.encode``)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"a mask must be [H, W], got shape {mask.shape}")
    return {"size": [int(mask.shape[0]), int(mask.shape[1])],
            "counts": encode_counts(mask_runs(mask))}


def decode(rle: dict) -> np.ndarray:
    """The dense ``[H, W]`` uint8 mask of an RLE dict (``pycocotools.mask.decode``)."""
    mask = MaskSet.from_segmentations([rle])
    height, width = mask.sizes[0]
    flat = np.zeros(height * width, np.uint8)
    for start, end in zip(mask.starts, mask.ends):
        flat[start:end] = 1
    return flat.reshape((height, width), order="F")


@dataclasses.dataclass(frozen=True)
class MaskSet:
    """Many masks as foreground intervals on one global line: mask ``i`` owns the flat indices
    ``[offset[i], offset[i] + H_i * W_i)``; intervals are sorted, disjoint and never empty."""

    sizes: np.ndarray    # [N, 2] (H, W)
    offsets: np.ndarray  # [N] start of each mask's span
    starts: np.ndarray   # [I] global interval starts, ascending
    ends: np.ndarray     # [I]
    first: np.ndarray    # [N + 1] interval index range of each mask
    covered: np.ndarray  # [I] foreground pixels before each interval (global)
    areas: np.ndarray    # [N] foreground pixels of each mask

    @classmethod
    def from_segmentations(cls, segmentations: Sequence[Any]) -> MaskSet:
        sizes, runs = _sizes_and_runs(segmentations)
        spans = sizes[:, 0] * sizes[:, 1]
        offsets = np.concatenate([[0], np.cumsum(spans)[:-1]]).astype(np.int64)
        per_mask = np.asarray([len(r) for r in runs], np.int64)
        flat = np.concatenate(runs) if runs else np.zeros(0, np.int64)
        totals = np.add.reduceat(flat, np.cumsum(per_mask) - per_mask) if len(flat) else flat
        totals = np.where(per_mask > 0, totals, 0) if len(flat) else np.zeros(len(runs), np.int64)
        if (flat < 0).any() or (totals != spans).any():
            bad = int(np.flatnonzero(totals != spans)[0]) if (totals != spans).any() else 0
            raise ValueError(f"segmentation {bad}: RLE counts sum to {int(totals[bad])}, not "
                             f"H*W = {int(spans[bad])} for size {sizes[bad].tolist()} (or a "
                             f"count is negative)")
        # Global run boundaries; the odd runs of each mask are its foreground intervals.
        mask_of = np.repeat(np.arange(len(runs)), per_mask)
        local = np.arange(len(flat)) - np.repeat(np.cumsum(per_mask) - per_mask, per_mask)
        ends = offsets[mask_of] + (np.cumsum(flat) - np.repeat(np.cumsum(totals) - totals,
                                                               per_mask))
        foreground = (local % 2 == 1) & (flat > 0)
        starts, ends, mask_of = (ends - flat)[foreground], ends[foreground], mask_of[foreground]
        lengths = ends - starts
        covered = np.cumsum(lengths) - lengths
        first = np.searchsorted(mask_of, np.arange(len(runs) + 1), side="left")
        areas = np.bincount(mask_of, weights=lengths, minlength=len(runs)).astype(np.int64)
        return cls(sizes=sizes, offsets=offsets, starts=starts, ends=ends, first=first,
                   covered=covered, areas=areas)

    def coverage(self, points: np.ndarray) -> np.ndarray:
        """Foreground pixels of the whole set strictly before each global flat index."""
        if len(self.starts) == 0:
            return np.zeros(len(points), np.int64)
        i = np.searchsorted(self.starts, points, side="right") - 1
        inside = np.minimum(points - self.starts[np.maximum(i, 0)],
                            self.ends[np.maximum(i, 0)] - self.starts[np.maximum(i, 0)])
        return np.where(i >= 0, self.covered[np.maximum(i, 0)] + inside, 0)


def _sizes_and_runs(segmentations: Sequence[Any]) -> tuple[np.ndarray, list[np.ndarray]]:
    """``[N, 2]`` sizes and each mask's run lengths; compressed strings decoded together."""
    sizes, runs, compressed = [], [], []
    for index, segmentation in enumerate(segmentations):
        if isinstance(segmentation, dict):
            if "size" not in segmentation or "counts" not in segmentation:
                raise ValueError(f"segmentation {index}: an RLE dict needs 'size' [H, W] and "
                                 f"'counts'")
            sizes.append([int(v) for v in segmentation["size"]])
            counts = segmentation["counts"]
            if isinstance(counts, (str, bytes)):
                compressed.append((index, counts.encode() if isinstance(counts, str) else counts))
                runs.append(None)
            else:
                runs.append(np.asarray(counts, np.int64))
        elif isinstance(segmentation, list):
            raise ValueError(f"segmentation {index} is a polygon list: convert polygons to RLE "
                             f"first (pycocotools.mask.frPyObjects(polygons, H, W)); jaxvision "
                             f"does not rasterize them")
        else:
            mask = np.asarray(segmentation)
            if mask.ndim != 2:
                raise ValueError(f"segmentation {index}: a dense mask must be [H, W], got shape "
                                 f"{mask.shape}")
            sizes.append(list(mask.shape))
            runs.append(mask_runs(mask))
    if compressed:
        for (index, _), decoded in zip(compressed, _decode_many([c for _, c in compressed])):
            runs[index] = decoded
    return np.asarray(sizes, np.int64).reshape(-1, 2), runs


def pair_iou(dt: MaskSet, gt: MaskSet, dt_index: np.ndarray, gt_index: np.ndarray,
             crowd: np.ndarray) -> np.ndarray:
    """IoU of each (detection, ground truth) mask pair, as pycocotools' ``rleIou``: for crowd
    ground truth the union is the detection's area. Pairs must have masks of the same size."""
    dt_index, gt_index = np.asarray(dt_index, np.int64), np.asarray(gt_index, np.int64)
    if len(dt_index) == 0:
        return np.zeros(0)
    mismatch = (dt.sizes[dt_index] != gt.sizes[gt_index]).any(axis=1)
    if mismatch.any():
        p = int(np.flatnonzero(mismatch)[0])
        raise ValueError(f"a detection mask of size {dt.sizes[dt_index[p]].tolist()} is compared "
                         f"with a ground-truth mask of size {gt.sizes[gt_index[p]].tolist()}: "
                         f"masks of one image must share its size")
    # Every interval of each pair's detection mask, moved onto the ground truth mask's span.
    per_pair = dt.first[dt_index + 1] - dt.first[dt_index]
    pair_of = np.repeat(np.arange(len(dt_index)), per_pair)
    interval = (np.arange(per_pair.sum()) - np.repeat(np.cumsum(per_pair) - per_pair, per_pair)
                + dt.first[dt_index][pair_of])
    shift = gt.offsets[gt_index][pair_of] - dt.offsets[dt_index][pair_of]
    overlap = gt.coverage(dt.ends[interval] + shift) - gt.coverage(dt.starts[interval] + shift)
    inter = np.bincount(pair_of, weights=overlap, minlength=len(dt_index))
    dt_area, gt_area = dt.areas[dt_index], gt.areas[gt_index]
    union = np.where(crowd, dt_area, dt_area + gt_area - inter)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(inter > 0, inter / np.where(union > 0, union, 1), 0.0)
