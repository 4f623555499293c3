"""IoU family against worked vectors (float64) and torchvision."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.ops import iou as I

# (A, B, IoU, GIoU, DIoU, CIoU), worked by hand.
WORKED_ROWS = [
    ([0, 0, 10, 10], [5, 5, 15, 15], 1 / 7, 1 / 7 - 50 / 225, 1 / 7 - 50 / 450, 1 / 7 - 50 / 450),
    ([0, 0, 2, 1], [1, 0, 3, 1], 1 / 3, 1 / 3, 0.233333333333, 0.233333333333),
    ([0, 0, 2, 1], [0, 0, 1, 1], 0.5, 0.5, 0.45, 0.446751870701),
    ([0, 0, 1, 1], [2, 0, 3, 1], 0.0, -1 / 3, -0.4, -0.4),
    ([0, 0, 10, 10], [0, 0, 10, 10], 1.0, 1.0, 1.0, 1.0),
    ([0, 0, 4, 2], [1, 0, 3, 4], 1 / 3, 0.083333333333, 0.302083333333, 0.268331664923),
]


@pytest.mark.parametrize("row", WORKED_ROWS)
def test_notes_vectors_float64(row):
    a, b, *expected = row
    with jax.enable_x64(True):
        a = jnp.asarray([a], jnp.float64)
        b = jnp.asarray([b], jnp.float64)
        got = [float(f(a, b)[0, 0]) for f in (I.box_iou, I.generalized_box_iou,
                                               I.distance_box_iou, I.complete_box_iou)]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-11)


def _random_boxes(rng, n):
    xy = rng.uniform(0, 20, (n, 2))
    return np.concatenate([xy, xy + rng.uniform(0.5, 15, (n, 2))], axis=1)


def _numpy_reference(a, b):
    """torchvision's box_iou / generalized / distance / complete IoU (eps=0), in numpy float64."""
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None] - inter
    iou = inter / union
    lti = np.minimum(a[:, None, :2], b[None, :, :2])
    rbi = np.maximum(a[:, None, 2:], b[None, :, 2:])
    whi = np.clip(rbi - lti, 0, None)
    areai = whi[..., 0] * whi[..., 1]
    giou = iou - (areai - union) / areai
    diag = whi[..., 0] ** 2 + whi[..., 1] ** 2
    cxa, cya = (a[:, 0] + a[:, 2]) / 2, (a[:, 1] + a[:, 3]) / 2
    cxb, cyb = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    rho = (cxa[:, None] - cxb[None]) ** 2 + (cya[:, None] - cyb[None]) ** 2
    diou = iou - rho / diag
    wa, ha = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    wb, hb = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    v = (4 / np.pi ** 2) * (np.arctan(wa / ha)[:, None] - np.arctan(wb / hb)[None]) ** 2
    alpha = v / (1 - iou + v)
    return iou, giou, diou, diou - alpha * v


def test_pairwise_matches_numpy_reference():
    rng = np.random.default_rng(0)
    a, b = _random_boxes(rng, 13), _random_boxes(rng, 9)
    b[:3] = a[:3] + rng.uniform(-2, 2, (3, 4))  # some heavily overlapping pairs
    b[:3, 2:] = np.maximum(b[:3, 2:], b[:3, :2] + 0.5)
    expected = _numpy_reference(a, b)
    assert (expected[0] > 0.3).sum() >= 3 and (expected[0] == 0).sum() >= 10
    with jax.enable_x64(True):
        fns = (I.box_iou, I.generalized_box_iou, I.distance_box_iou, I.complete_box_iou)
        for fn, reference in zip(fns, expected):
            np.testing.assert_allclose(fn(a, b), reference, rtol=1e-12, atol=1e-12)


def test_aligned_equals_pairwise_diagonal_and_batched():
    rng = np.random.default_rng(1)
    a, b = _random_boxes(rng, 6).astype(np.float32), _random_boxes(rng, 6).astype(np.float32)
    for plain in (I.box_iou, I.generalized_box_iou, I.distance_box_iou, I.complete_box_iou):
        fn = jax.jit(plain, static_argnames="aligned")
        pairwise = fn(a, b)
        np.testing.assert_allclose(fn(a, b, aligned=True), np.diag(pairwise), rtol=1e-6)
        batched = fn(np.stack([a, b]), np.stack([b, a]))
        np.testing.assert_allclose(batched[0], pairwise, rtol=1e-6)
        np.testing.assert_allclose(batched[1], pairwise.T, rtol=1e-6)


def test_jit_and_vmap_match_eager():
    rng = np.random.default_rng(2)
    a = _random_boxes(rng, 10).reshape(2, 5, 4).astype(np.float32)
    b = _random_boxes(rng, 6).reshape(2, 3, 4).astype(np.float32)
    for fn in (I.box_iou, I.generalized_box_iou, I.distance_box_iou, I.complete_box_iou):
        eager = fn(a, b)
        np.testing.assert_allclose(jax.jit(fn)(a, b), eager, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(jax.vmap(fn)(a, b), eager, rtol=1e-6, atol=1e-7)


def test_degenerate_boxes_are_defined_with_finite_gradients():
    point = jnp.array([3.0, 3.0, 3.0, 3.0])
    line = jnp.array([0.0, 0.0, 5.0, 0.0])
    for fn in (I.box_iou, I.generalized_box_iou, I.distance_box_iou, I.complete_box_iou):
        assert float(fn(point, point, aligned=True)) == 0.0
        value = fn(point, line, aligned=True)
        assert np.isfinite(value)
        grad = jax.grad(lambda p: fn(p, point, aligned=True))(point)
        assert np.all(np.isfinite(grad)), fn.__name__
    # IoU of a zero-area box with a real box is 0, GIoU then is the enclosing-box penalty.
    assert float(I.box_iou(line, jnp.array([0.0, 0.0, 5.0, 5.0]), aligned=True)) == 0.0


def test_ciou_alpha_has_no_gradient():
    a = jnp.array([0.0, 0.0, 4.0, 2.0])
    b = jnp.array([1.0, 0.0, 3.0, 4.0])

    def manual(p):  # CIoU with α computed from constants
        iou = I.box_iou(p, b, aligned=True)
        v = (4 / np.pi ** 2) * (jnp.arctan2(p[2] - p[0], p[3] - p[1]) - jnp.arctan2(2.0, 4.0)) ** 2
        alpha = jax.lax.stop_gradient(v / (1 - iou + v))
        return I.distance_box_iou(p, b, aligned=True) - alpha * v

    np.testing.assert_allclose(jax.grad(lambda p: I.complete_box_iou(p, b, aligned=True))(a),
                               jax.grad(manual)(a), rtol=1e-6)


def test_bad_shape_names_the_problem():
    with pytest.raises(ValueError, match="size 4"):
        I.box_iou(np.zeros((3, 5)), np.zeros((2, 4)))
