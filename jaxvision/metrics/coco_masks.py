"""Instance masks for COCO 'segm' evaluation: RLE in and out, areas and mask IoU, in numpy.

Masks are handled as COCO's run-length encoding handles them: column-major (Fortran order)
runs that start with background. A mask here is the sorted list of its foreground intervals
``[start, end)`` on that flat index, so the intersection of a detection with a ground-truth
mask is a sum over the detection's intervals of the ground truth's coverage function, looked up
with ``searchsorted``: no mask is ever decoded to pixels. Compressed RLE strings are decoded
together, in a few numpy passes over their bytes, and pairs compared together, each a chunk
at a time that fits the processor's cache; an evaluation decodes only the masks it compares.

Accepted inputs (``segmentation`` of an annotation or a result): a dense ``[H, W]`` array
(non-zero = foreground), an RLE dict ``{"size": [H, W], "counts": ...}`` with ``counts`` a list
of run lengths or COCO's compressed string (bytes or str). Polygons must be converted first
(``pycocotools.mask.frPyObjects``): their rasterization is pycocotools' own.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Sequence

import numpy as np


def decode_counts(counts: str | bytes) -> np.ndarray:
    """Run lengths from COCO's compressed RLE string (``rleFrString`` in pycocotools' C)."""
    return _decode_strings(*_joined([counts]))[0]


def _joined(strings: Sequence[str | bytes]) -> tuple[bytes, np.ndarray]:
    """Compressed RLE strings as one byte string, and the length of each."""
    try:
        if set(map(type, strings)) <= {str}:
            data = "".join(strings).encode("ascii")
        else:
            data = b"".join(s.encode("ascii") if isinstance(s, str) else bytes(s)
                            for s in strings)
    except UnicodeEncodeError:
        raise ValueError("not a COCO compressed RLE string (characters outside '0'..'o')")
    return data, np.fromiter(map(len, strings), np.int64, len(strings))


def _decode_strings(data: bytes, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run lengths of the compressed RLE strings joined in ``data``: all runs concatenated,
    and how many each string holds.

    A value is 5-bit groups, least significant first; a set 0x20 bit means "more follows" and
    0x10 in the last group is the sign. From a string's fourth value on, each is stored as the
    difference to the run two places back.
    """
    digits = np.frombuffer(data, np.uint8) - np.uint8(48)  # wraps below '0'
    if (digits > 63).any():
        raise ValueError("not a COCO compressed RLE string (characters outside '0'..'o')")
    string_end = np.cumsum(lengths)
    if (digits[string_end[lengths > 0] - 1] & 0x20).any():
        raise ValueError("truncated COCO compressed RLE string")
    ends_value = digits < 0x20
    last = np.flatnonzero(ends_value)
    # Nearly all values are one group: each value's last group, sign-extended from 5 bits.
    values = ((digits[ends_value] ^ 0x10).view(np.int8) - 16).astype(np.int64)
    more = np.flatnonzero(~ends_value)  # groups of longer values other than their last
    if len(more):
        value = more - np.arange(len(more))  # the value each of them belongs to
        begins = np.flatnonzero(np.diff(value, prepend=-1))
        longer, first_group = value[begins], more[begins]
        shift = 5 * (more - np.repeat(first_group, np.diff(begins, append=len(more))))
        low = np.add.reduceat((digits[more] & 0x1F).astype(np.int64) << shift, begins)
        values[longer] = (values[longer] << 5 * (last[longer] - first_group)) + low
    per_string = np.diff(np.searchsorted(last, string_end - 1, side="right"), prepend=0)
    # runs[i] = values[i] + runs[i - 2], restarted at each string's first three values: a
    # cumulative sum along every other value, with the sum since the previous restart of the
    # same chain taken off at each restart.
    string_first = np.cumsum(per_string) - per_string
    restarts = np.sort(np.concatenate([string_first[per_string > k] + k for k in range(3)]))
    for parity in (0, 1):
        chain = values[parity::2]  # a view: updated in place
        at = restarts[restarts % 2 == parity] // 2
        if len(at):
            chain[at[1:]] -= np.add.reduceat(chain, at)[:-1]
        np.cumsum(chain, out=chain)
    return values, per_string


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
    sizes, runs, _ = _sizes_and_runs([rle], np.zeros(1, np.int64))
    MaskSet.from_runs(sizes, runs, np.asarray([len(runs)]))  # validates the counts
    flat = np.repeat(np.arange(len(runs), dtype=np.uint8) % 2, runs)
    return flat.reshape(sizes[0], order="F")


_MASKS_PER_CHUNK = 1024
_INTERVALS_PER_CHUNK = 1 << 17


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
    def from_segmentations(cls, segmentations: Sequence[Any],
                           numbers: Sequence[int] | None = None) -> MaskSet:
        """``numbers``: what error messages call each segmentation (default: its position).

        Decoded a chunk of masks at a time, so that the many temporary arrays per run length
        stay in the processor's cache (about twice as fast as all at once)."""
        numbers = np.arange(len(segmentations)) if numbers is None else np.asarray(numbers)
        parts, start, covered = [], 0, 0
        for lo in range(0, max(len(segmentations), 1), _MASKS_PER_CHUNK):
            chunk = slice(lo, lo + _MASKS_PER_CHUNK)
            part = cls.from_runs(*_sizes_and_runs(segmentations[chunk], numbers[chunk]),
                                 numbers=numbers[chunk], start=start, covered=covered)
            parts.append(part)
            start = part.offsets[-1] + part.sizes[-1].prod() if len(part.sizes) else start
            covered += int(part.areas.sum())
        if len(parts) == 1:
            return parts[0]
        intervals_before = np.cumsum([0] + [len(part.starts) for part in parts[:-1]])
        return cls(*(np.concatenate([getattr(part, name) for part in parts]) for name in
                     ("sizes", "offsets", "starts", "ends")),
                   first=np.append(np.concatenate([part.first[:-1] + before for part, before
                                                   in zip(parts, intervals_before)]),
                                   intervals_before[-1] + len(parts[-1].starts)),
                   covered=np.concatenate([part.covered for part in parts]),
                   areas=np.concatenate([part.areas for part in parts]))

    @classmethod
    def from_runs(cls, sizes: np.ndarray, runs: np.ndarray, per_mask: np.ndarray, *,
                  numbers: np.ndarray | None = None, start: int = 0,
                  covered: int = 0) -> MaskSet:
        """From ``[N, 2]`` sizes, all masks' run lengths concatenated, and each one's count;
        the first mask's span begins at ``start``, after ``covered`` foreground pixels."""
        spans = sizes[:, 0] * sizes[:, 1]
        first_run = np.cumsum(per_mask) - per_mask
        # Each mask's runs fill exactly its span, so their running sum is the position.
        position = np.cumsum(runs)
        last_run = first_run + per_mask - 1
        mask_end = position[last_run] if len(runs) else np.zeros(len(sizes), np.int64)
        mask_end[last_run < 0] = 0
        totals = np.diff(mask_end, prepend=0)
        if (runs < 0).any() or (totals != spans).any():
            bad = int(np.flatnonzero(totals != spans)[0]) if (totals != spans).any() else 0
            name = bad if numbers is None else int(numbers[bad])
            raise ValueError(f"segmentation {name}: RLE counts sum to {int(totals[bad])}, not "
                             f"H*W = {int(spans[bad])} for size {sizes[bad].tolist()} (or a "
                             f"count is negative)")
        odd = np.zeros(len(runs), bool)  # odd runs of each mask are foreground
        odd[1::2] = True
        odd ^= np.repeat((first_run & 1).astype(bool), per_mask)
        foreground = np.flatnonzero(odd & (runs > 0))
        lengths = runs[foreground]
        ends = position[foreground] + start
        first = np.searchsorted(foreground, np.append(first_run, len(runs)))
        covered_after = np.cumsum(lengths) + covered
        areas = np.diff(np.append(covered, covered_after)[first])
        return cls(sizes=sizes, offsets=np.cumsum(spans) - spans + start, starts=ends - lengths,
                   ends=ends, first=first, covered=covered_after - lengths, areas=areas)

    def coverage(self, points: np.ndarray, masks: slice = slice(None)) -> np.ndarray:
        """Foreground pixels of the whole set strictly before each global flat index; the
        points must lie in the spans of ``masks`` (a range), which are then the only ones
        searched."""
        bounds, table = self._coverage_table
        lo, hi, _ = masks.indices(len(self.sizes))
        lo, hi = 2 * self.first[lo], 2 * self.first[max(hi, lo)] + 1  # from the end before
        at = np.searchsorted(bounds[lo:hi], points, side="right") + (lo - 1)
        return table[at] + (at & 1) * points

    @functools.cached_property
    def _coverage_table(self) -> tuple[np.ndarray, np.ndarray]:
        """Interval bounds ``[-1, start_0, end_0, start_1, ...]`` and, at each, the coverage
        less the position (starts: coverage grows with it) or the coverage (ends and -1)."""
        bounds = np.empty(2 * len(self.starts) + 1, np.int64)
        table = np.empty_like(bounds)
        bounds[0], bounds[1::2], bounds[2::2] = -1, self.starts, self.ends
        table[0], table[1::2] = 0, self.covered - self.starts
        table[2::2] = self.covered + (self.ends - self.starts)
        return bounds, table


def _sizes_and_runs(segmentations: Sequence[Any], numbers: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``[N, 2]`` sizes, all masks' run lengths concatenated, and each mask's number of runs.
    Compressed strings, the usual input, are decoded together."""
    try:  # the usual input: all compressed RLE dicts
        sizes = [segmentation["size"] for segmentation in segmentations]
        strings = [segmentation["counts"] for segmentation in segmentations]
        if set(map(type, strings)) <= {str, bytes}:
            return _size_array(sizes), *_decode_strings(*_joined(strings))
    except (KeyError, TypeError, IndexError):
        pass
    sizes, strings, string_masks, others = [], [], [], {}
    for index, segmentation in enumerate(segmentations):
        if (isinstance(segmentation, dict) and "size" in segmentation
                and isinstance(segmentation.get("counts"), (str, bytes))):
            sizes.append(segmentation["size"])
            strings.append(segmentation["counts"])
            string_masks.append(index)
        else:
            size, others[index] = _size_and_runs(int(numbers[index]), segmentation)
            sizes.append(size)
    sizes = _size_array(sizes)
    runs, per_string = _decode_strings(*_joined(strings))
    if not others:
        return sizes, runs, per_string
    per_mask = np.zeros(len(sizes), np.int64)
    per_mask[string_masks] = per_string
    for index, own in others.items():
        per_mask[index] = len(own)
    first_run = np.cumsum(per_mask) - per_mask
    placed = np.empty(per_mask.sum(), np.int64)
    placed[np.repeat(first_run[string_masks] - (np.cumsum(per_string) - per_string),
                     per_string) + np.arange(len(runs))] = runs
    for index, own in others.items():
        placed[first_run[index]:first_run[index] + len(own)] = own
    return sizes, placed, per_mask


def _size_array(sizes: list) -> np.ndarray:
    try:
        return np.asarray(sizes, np.int64).reshape(len(sizes), 2)
    except ValueError:
        raise ValueError("every RLE 'size' must be [H, W]") from None


def _size_and_runs(index: int, segmentation: Any) -> tuple[list[int], np.ndarray]:
    """Size and run lengths of a segmentation that is not a compressed RLE dict."""
    if isinstance(segmentation, dict):
        if "size" not in segmentation or "counts" not in segmentation:
            raise ValueError(f"segmentation {index}: an RLE dict needs 'size' [H, W] and "
                             f"'counts'")
        return segmentation["size"], np.asarray(segmentation["counts"], np.int64).ravel()
    if isinstance(segmentation, list):
        raise ValueError(f"segmentation {index} is a polygon list: convert polygons to RLE "
                         f"first (pycocotools.mask.frPyObjects(polygons, H, W)); jaxvision "
                         f"does not rasterize them")
    mask = np.asarray(segmentation)
    if mask.ndim != 2:
        raise ValueError(f"segmentation {index}: a dense mask must be [H, W], got shape "
                         f"{mask.shape}")
    return list(mask.shape), mask_runs(mask)


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
    # A chunk of pairs at a time, in ground-truth order, so that the temporaries and the
    # part of the ground truth searched stay in the processor's cache.
    order = np.argsort(gt_index, kind="stable")
    per_pair = (dt.first[dt_index + 1] - dt.first[dt_index])[order]
    chunk_ends = np.searchsorted(np.cumsum(per_pair), np.arange(
        _INTERVALS_PER_CHUNK, per_pair.sum(), _INTERVALS_PER_CHUNK), side="right")
    inter = np.empty(len(order), np.int64)
    for lo, hi in zip(np.append(0, chunk_ends), np.append(chunk_ends, len(order))):
        inter[order[lo:hi]] = _intersections(dt, gt, dt_index[order[lo:hi]],
                                             gt_index[order[lo:hi]])
    dt_area, gt_area = dt.areas[dt_index], gt.areas[gt_index]
    union = np.where(crowd, dt_area, dt_area + gt_area - inter)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(inter > 0, inter / np.where(union > 0, union, 1), 0.0)


def _intersections(dt: MaskSet, gt: MaskSet, dt_index: np.ndarray,
                   gt_index: np.ndarray) -> np.ndarray:
    """Foreground pixels each (detection, ground truth) pair shares; ground truth sorted."""
    masks = slice(gt_index[0], gt_index[-1] + 1) if len(gt_index) else slice(0, 0)
    per_pair = dt.first[dt_index + 1] - dt.first[dt_index]
    pair_first = np.cumsum(per_pair) - per_pair
    interval = np.arange(per_pair.sum()) + np.repeat(dt.first[dt_index] - pair_first, per_pair)
    shift = np.repeat(gt.offsets[gt_index] - dt.offsets[dt_index], per_pair)
    overlap = (gt.coverage(dt.ends[interval] + shift, masks)
               - gt.coverage(dt.starts[interval] + shift, masks))
    return np.diff(np.append(0, np.cumsum(overlap))[np.append(pair_first, len(overlap))])


def segmentation_iou(dt: Sequence[Any] | MaskSet, gt: Sequence[Any] | MaskSet,
                     dt_index: np.ndarray, gt_index: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """:func:`pair_iou` of segmentations (or mask sets), decoding only the masks some pair
    names: in an evaluation, detections of categories an image lacks are never compared."""
    def used(masks, index):
        if isinstance(masks, MaskSet):
            return masks, index
        numbers, index = np.unique(np.asarray(index, np.int64), return_inverse=True)
        return MaskSet.from_segmentations([masks[i] for i in numbers.tolist()], numbers), index

    (dt, dt_index), (gt, gt_index) = used(dt, dt_index), used(gt, gt_index)
    return pair_iou(dt, gt, dt_index, gt_index, crowd)
