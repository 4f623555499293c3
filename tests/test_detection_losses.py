"""Detection losses: a focal loss table, the prior bias, smooth L1, IoU losses."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxvision.losses import detection as L

# p_t -> (FL γ=2, α_t=0.25, α_t=0.75), worked by hand: FL = -α_t (1 - p_t)^γ log p_t.
FOCAL_TABLE = {
    0.1: (1.865093925325177, 0.46627348133129426, 1.3988204439938827),
    0.5: (0.17328679513998632, 0.04332169878499658, 0.12996509635498973),
    0.9: (0.0010536051565782623, 0.00026340128914456557, 0.0007902038674336967),
    0.99: (1.0050335853501468e-06, 2.512583963375367e-07, 7.537751890126101e-07),
    0.999: (1.0005003335835363e-09, 2.5012508339588407e-10, 7.503752501876522e-10),
}
GAMMAS = {0.9: [0.10536051565782628, 0.03331792049285648, 0.010536051565782628,
                0.001053605156578263, 1.053605156578263e-06],
          0.5: [0.6931471805599453, 0.4901290717342736, 0.34657359027997264,
                0.17328679513998632, 0.02166084939249829]}


def _logit(p):
    return math.log(p / (1 - p))


@pytest.mark.parametrize("p_t", sorted(FOCAL_TABLE))
def test_focal_table_positive_and_negative(p_t):
    fl, pos, neg = FOCAL_TABLE[p_t]
    with jax.enable_x64(True):
        x_pos = jnp.array([_logit(p_t)], jnp.float64)  # y = 1, p = p_t
        x_neg = jnp.array([_logit(1 - p_t)], jnp.float64)  # y = 0, p = 1 - p_t
        one, zero = jnp.ones(1, jnp.float64), jnp.zeros(1, jnp.float64)
        got = [L.sigmoid_focal_loss(x_pos, one, alpha=None)[0],
               L.sigmoid_focal_loss(x_neg, zero, alpha=None)[0],
               L.sigmoid_focal_loss(x_pos, one, alpha=0.25)[0],
               L.sigmoid_focal_loss(x_neg, zero, alpha=0.25)[0]]
    np.testing.assert_allclose(got, [fl, fl, pos, neg], rtol=1e-9)


@pytest.mark.parametrize("p_t", [0.9, 0.5])
def test_focal_gamma_sweep_and_gamma0_is_cross_entropy(p_t):
    with jax.enable_x64(True):
        x = jnp.array([_logit(p_t)], jnp.float64)
        got = [float(L.sigmoid_focal_loss(x, jnp.ones(1), alpha=None, gamma=g)[0])
               for g in (0.0, 0.5, 1.0, 2.0, 5.0)]
    np.testing.assert_allclose(got, GAMMAS[p_t], rtol=1e-9)


def _torchvision_focal(logits, targets, alpha, gamma):
    """torchvision.ops.sigmoid_focal_loss(reduction='none'), transcribed in torch."""
    torch = pytest.importorskip("torch")
    x, t = torch.from_numpy(logits), torch.from_numpy(targets)
    p = torch.sigmoid(x)
    ce = torch.nn.functional.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
    return loss.numpy()


def test_focal_matches_torchvision_and_optax_and_normalizes_by_positives():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (4, 7))
    targets = (rng.uniform(size=(4, 7)) < 0.2).astype(np.float64)
    weights = (rng.uniform(size=(4, 7)) < 0.8).astype(np.float64)  # 0 = ignored anchor
    with jax.enable_x64(True):
        got = L.sigmoid_focal_loss(logits, targets)
        np.testing.assert_allclose(got, _torchvision_focal(logits, targets, 0.25, 2.0), rtol=1e-12)
        np.testing.assert_allclose(got, optax.sigmoid_focal_loss(logits, targets, alpha=0.25),
                                   rtol=1e-12)
        num_pos = targets.sum()
        normalized = L.sigmoid_focal_loss(logits, targets, weights=weights,
                                          reduction="num_positives", num_positives=num_pos)
        np.testing.assert_allclose(normalized, (np.asarray(got) * weights).sum() / num_pos,
                                   rtol=1e-12)
        zero_pos = L.sigmoid_focal_loss(logits, 0 * targets, reduction="num_positives",
                                        num_positives=0.0)
        np.testing.assert_allclose(zero_pos, np.asarray(L.sigmoid_focal_loss(logits, 0 * targets)).sum())
    with pytest.raises(ValueError, match="num_positives"):
        L.sigmoid_focal_loss(logits, targets, reduction="num_positives")


def test_focal_jit_vmap_and_grad_finite():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 4, (3, 10)).astype(np.float32)
    targets = (rng.uniform(size=(3, 10)) < 0.3).astype(np.float32)
    fn = lambda x, t: L.sigmoid_focal_loss(x, t, reduction="num_positives",
                                           num_positives=t.sum())
    eager = jnp.stack([fn(logits[i], targets[i]) for i in range(3)])
    np.testing.assert_allclose(jax.vmap(jax.jit(fn))(logits, targets), eager, rtol=1e-6)
    grads = jax.grad(lambda x: fn(x, targets[0]))(np.array([40.0, -40.0, 0, 3] * 2 + [0, 0],
                                                            np.float32))
    assert np.all(np.isfinite(grads))


def test_prior_bias_notes_d6():
    assert L.prior_probability_bias(0.01) == pytest.approx(-4.59511985013459, abs=1e-14)
    init = L.prior_bias_init(0.01)
    bias = init(jax.random.key(0), (9,))
    np.testing.assert_allclose(jax.nn.sigmoid(bias), 0.01, rtol=1e-6)
    with pytest.raises(ValueError, match="probability"):
        L.prior_probability_bias(1.0)


def test_smooth_l1_and_l1_notes_d4():
    x = np.array([0.0, 0.5, -0.5, 0.999, 1.0, 2.0, -3.0])
    with jax.enable_x64(True):
        np.testing.assert_allclose(L.smooth_l1_loss(x, np.zeros_like(x)),
                                   [0, 0.125, 0.125, 0.4990005, 0.5, 1.5, 2.5], rtol=1e-12)
        np.testing.assert_allclose(L.smooth_l1_loss(x, 0 * x),
                                   optax.huber_loss(x, delta=1.0), rtol=1e-12)
        b, bhat = np.array([0.5, 0.5, 0.2, 0.2]), np.array([0.4, 0.6, 0.2, 0.4])
        np.testing.assert_allclose(L.smooth_l1_loss(bhat, b).sum(), 0.03, rtol=1e-12)
        np.testing.assert_allclose(L.smooth_l1_loss(x, 0 * x, beta=0.0), np.abs(x))
        np.testing.assert_allclose(L.l1_loss(bhat, b).sum(), 0.1 + 0.1 + 0 + 0.2, rtol=1e-12)
        # β = 2: quadratic zone |x| < 2, value 0.5 x² / β.
        np.testing.assert_allclose(L.smooth_l1_loss(x, 0 * x, beta=2.0),
                                   np.where(np.abs(x) < 2, 0.25 * x ** 2, np.abs(x) - 1.0))


def test_iou_losses_values_and_gradients():
    a = jnp.array([[0.0, 0, 10, 10], [0, 0, 1, 1]])
    b = jnp.array([[5.0, 5, 15, 15], [2, 0, 3, 1]])
    np.testing.assert_allclose(L.iou_loss(a, b), [1 - 1 / 7, 1.0], rtol=1e-6)
    np.testing.assert_allclose(L.giou_loss(a, b), [1 - (1 / 7 - 50 / 225), 4 / 3], rtol=1e-6)
    np.testing.assert_allclose(L.diou_loss(a, b), [1 - (1 / 7 - 50 / 450), 1.4], rtol=1e-6)
    np.testing.assert_allclose(L.ciou_loss(a, b), [1 - (1 / 7 - 50 / 450), 1.4], rtol=1e-6)
    disjoint_pred, target = a[1], b[1]
    assert np.all(jax.grad(lambda p: L.iou_loss(p, target))(disjoint_pred) == 0)
    for fn in (L.giou_loss, L.diou_loss, L.ciou_loss):
        grad = jax.grad(lambda p: fn(p, target))(disjoint_pred)
        assert grad[2] < 0 and np.all(np.isfinite(grad)), fn.__name__  # pulls x2 to the right
        batched = jax.jit(jax.vmap(fn))(a, b)
        np.testing.assert_allclose(batched, fn(a, b), rtol=1e-6)


def _numpy_focal(x, t, alpha=0.25, gamma=2.0):
    p = 1 / (1 + np.exp(-x))
    ce = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    p_t = p * t + (1 - p) * (1 - t)
    return ce * (1 - p_t) ** gamma * (alpha * t + (1 - alpha) * (1 - t))


def test_anchor_targets_and_retinanet_loss_batched_under_jit():
    from jaxvision.ops import anchors as A
    from jaxvision.ops import matcher as M
    rng = np.random.default_rng(3)
    anchors = A.generate_anchors((32, 32), strides=(8, 16), sizes=(12.0, 24.0))
    xy = rng.uniform(0, 18, (2, 4, 2))
    gt = np.concatenate([xy, xy + rng.uniform(6, 14, (2, 4, 2))], -1).astype(np.float32)
    classes = rng.integers(0, 3, (2, 4))
    valid = np.array([[1, 1, 0, 0], [1, 1, 1, 1]], bool)
    logits = rng.normal(0, 2, (2, len(anchors), 3)).astype(np.float32)
    deltas = rng.normal(0, 0.3, (2, len(anchors), 4)).astype(np.float32)
    from jaxvision.ops.box_coder import decode_boxes

    @jax.jit
    def everything(gt, classes, valid, logits, deltas):  # one compilation for the whole test
        targets = jax.vmap(lambda b, c, v: M.anchor_targets(anchors, b, c, v, num_classes=3))(
            gt, classes, valid)
        giou_loss = lambda d: L.retinanet_loss(logits, d, targets, anchors=anchors,
                                               box_loss="giou")
        return (targets, L.retinanet_loss(logits, deltas, targets), giou_loss(deltas),
                jax.grad(lambda d: giou_loss(d)["loss"])(deltas),
                decode_boxes(targets["box_targets"], anchors),
                L.giou_loss(decode_boxes(deltas, anchors), targets["matched_boxes"]))

    targets, out, giou, grads, decoded, per_anchor = everything(gt, classes, valid, logits, deltas)
    labels = np.asarray(targets["labels"])
    pos, keep = labels == 1, labels != -1
    assert pos.sum() >= 4 and (labels == -1).any()
    onehot = np.eye(3)[classes[np.arange(2)[:, None], np.asarray(targets["matched_index"])]]
    cls_t = onehot * pos[..., None]
    np.testing.assert_allclose(targets["class_targets"], cls_t)
    expected_cls = (_numpy_focal(logits.astype(np.float64), cls_t) * keep[..., None]).sum() / pos.sum()
    diff = np.abs(deltas - np.asarray(targets["box_targets"]))
    smooth = np.where(diff < 1 / 9, 0.5 * diff ** 2 * 9, diff - 0.5 / 9).sum(-1)
    expected_box = (smooth * pos).sum() / pos.sum()
    np.testing.assert_allclose(out["classification"], expected_cls, rtol=1e-5)
    np.testing.assert_allclose(out["box"], expected_box, rtol=1e-5)
    np.testing.assert_allclose(out["loss"], expected_cls + expected_box, rtol=1e-5)
    # Box targets decode back to the matched boxes; GIoU variant on decoded boxes.
    np.testing.assert_allclose(np.asarray(decoded)[pos], np.asarray(targets["matched_boxes"])[pos],
                               atol=1e-4)
    np.testing.assert_allclose(giou["box"], np.asarray(per_anchor)[pos].sum() / pos.sum(),
                               rtol=1e-5)
    assert np.all(np.isfinite(grads))
    with pytest.raises(ValueError, match="anchors"):
        L.retinanet_loss(logits, deltas, targets, box_loss="giou")
