"""The single-object localizer: model outputs, losses (a worked vector), λ schedule, has_box."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision import models
from jaxvision.losses.localization import box_loss, box_weight_schedule, localization_loss
from jaxvision.tasks.localization import LocalizationTask


def test_notes_D4_box_losses():
    b, b_hat = jnp.array([0.5, 0.5, 0.2, 0.2]), jnp.array([0.4, 0.6, 0.2, 0.4])
    assert float(box_loss(b_hat, b, kind="mse")) == pytest.approx(0.015, abs=1e-7)
    assert float(box_loss(b_hat, b, kind="smooth_l1")) == pytest.approx(0.03, abs=1e-7)
    x = jnp.array([0.0, 0.5, -0.5, 0.999, 1.0, 2.0, -3.0])
    from jaxvision.losses.detection import smooth_l1_loss
    np.testing.assert_allclose(smooth_l1_loss(x, 0.0),
                               [0, 0.125, 0.125, 0.4990005, 0.5, 1.5, 2.5], atol=1e-6)
    boxes = jnp.array([[0.0, 0.0, 0.5, 0.5]])
    np.testing.assert_allclose(box_loss(boxes, jnp.array([[0.25, 0.0, 0.75, 0.5]]), kind="iou"),
                               [1 - 1 / 3], rtol=1e-6)
    with pytest.raises(ValueError, match="box loss"):
        box_loss(boxes, boxes, kind="l2")


def test_has_box_masks_the_box_term_and_lambda_weights_it():
    logits = jnp.array([[2.0, 0.0], [0.0, 2.0]])
    labels = jnp.array([0, 1])
    pred = jnp.array([[0.1, 0.1, 0.5, 0.5], [0.2, 0.2, 0.9, 0.9]])
    gt = jnp.array([[0.1, 0.1, 0.5, 0.7], [0.0, 0.0, 0.1, 0.1]])
    has_box = jnp.array([True, False])
    out = localization_loss(logits, pred, labels, gt, has_box, box_weight=3.0, kind="mse")
    assert float(out["box"]) == pytest.approx(0.2 ** 2 / 4, rel=1e-5)  # image 0 only
    ce = -np.log(np.exp(2) / (np.exp(2) + 1))
    assert float(out["loss"]) == pytest.approx(ce + 3.0 * 0.01, rel=1e-5)
    grad = jax.grad(lambda p: localization_loss(logits, p, labels, gt, has_box,
                                                kind="giou")["loss"])(pred)
    assert np.all(np.asarray(grad[1]) == 0) and np.any(np.asarray(grad[0]) != 0)
    assert float(box_weight_schedule(0, start=1, end=10, ramp_steps=100)) == 1.0
    assert float(box_weight_schedule(50, start=1, end=10, ramp_steps=100)) == 5.5
    assert float(box_weight_schedule(500, start=1, end=10, ramp_steps=100)) == 10.0


@pytest.mark.slow
def test_localizer_outputs_and_task_metrics():
    from jaxvision.models.localizer import Localizer

    assert isinstance(models.create("localizer_small", num_classes=5), Localizer)
    # A small backbone keeps the test fast; any family with feature_info works.
    model = Localizer(backbone=models.create("small_cnn", num_classes=None), num_classes=5)
    x = jnp.zeros((2, 32, 32, 3))
    variables = jax.jit(lambda k: model.init(k, x, train=False))(jax.random.key(0))
    out = model.apply(variables, x, train=False)
    assert out.class_logits.shape == (2, 5) and out.boxes.shape == (2, 4)
    assert np.all((out.boxes[:, 2:] >= out.boxes[:, :2]))
    kernel = variables["params"]["box_head"]["kernel"]
    assert kernel.shape[-1] == 4  # the 4-unit regression layer
    task = LocalizationTask(num_classes=5)
    batch = {"image": x, "label": jnp.array([0, 1]),
             "boxes": jnp.array([[[0, 0, 32, 32]], [[0, 0, 16, 16]]], jnp.float32) ,
             "boxes_valid": jnp.array([[True], [True]])}
    perfect = type(out)(class_logits=jnp.array([[9.0, 0, 0, 0, 0], [0, 9.0, 0, 0, 0]]),
                        boxes=jnp.array([[0, 0, 1, 1], [0, 0, 0.5, 0.4]]))
    sums = task.batch_metrics(perfect, batch)
    assert float(sums["accuracy"][0]) == 2
    assert float(sums["iou50"][0]) == 2 and float(sums["mean_iou"][0]) == pytest.approx(1.8)
    with pytest.raises(ValueError, match="box_loss"):
        LocalizationTask(num_classes=5, box_loss="l3")
