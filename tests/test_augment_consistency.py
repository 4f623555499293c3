"""Every op: jit(vmap) and eager vmap equal the per-image call with the same key; the same key
gives the same output; different keys give different outputs. Samples carry boxes and masks so
that the geometric paths are exercised too."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxvision.augment as A

BATCH, SIZE = 4, 16


def _batch():
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(BATCH, SIZE, SIZE, 3)).astype(np.float32)
    boxes = np.array([[[2, 3, 10, 12], [8, 8, 15, 14], [0, 0, 0, 0]]] * BATCH, np.float32)
    valid = np.array([[True, True, False]] * BATCH)
    masks = np.zeros((BATCH, SIZE, SIZE), np.int32)
    masks[:, 3:12, 2:10] = 1
    masks[:, 8:14, 8:15] = 2
    return {"image": jnp.asarray(images), "boxes": jnp.asarray(boxes),
            "boxes_valid": jnp.asarray(valid), "mask": jnp.asarray(masks)}


# Options that make every op random on every call (probabilities at 1 where the op would
# otherwise sometimes be the identity, so that different keys must differ).
RANDOM_OPS = {
    "flip": dict(),
    "vflip": dict(),
    "crop": dict(padding=4),
    "random_resized_crop": dict(),
    "affine": dict(degrees=20.0, translate=(0.1, 0.1), scale=(0.8, 1.2), shear_x=0.2),
    "rotate": dict(degrees=30.0),
    "translate": dict(fraction=(0.2, 0.2)),
    "shear": dict(shear_x=0.3, shear_y=0.2),
    "zoom": dict(scale=(0.7, 1.3)),
    "elastic": dict(alpha=8.0, sigma=2.0),
    "perspective": dict(distortion_scale=0.5, probability=1.0),
    "color_jitter": dict(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.1),
    "brightness": dict(),
    "contrast": dict(),
    "saturation": dict(),
    "hue": dict(),
    "grayscale": dict(probability=0.5),
    "channel_permutation": dict(),
    "gaussian_noise": dict(std=0.1),
    "salt_and_pepper": dict(amount=0.2),
    "blur": dict(sigma=(0.3, 2.0), kernel_size=5),
    "sharpen": dict(factor=(0.0, 3.0)),
    "posterize": dict(bits=(1, 6)),
    "solarize": dict(threshold=0.5, probability=0.5),
    "equalize": dict(probability=0.5),
    "autocontrast": dict(probability=0.5),
    "invert": dict(probability=0.5),
    "cutout": dict(length=6),
    "random_erasing": dict(probability=1.0),
    "randaugment": dict(num_ops=2, magnitude=9.0),
    "trivialaugment": dict(),
    "autoaugment": dict(policy="svhn"),  # mostly likely steps: different keys differ
}


def test_every_per_example_op_is_covered():
    per_example = {n for n, spec in A.OPS.items() if not spec.batch}
    deterministic = {"normalize", "center_crop"}
    assert per_example - deterministic == set(RANDOM_OPS)


def _assert_tree_close(a, b, atol=1e-5):
    for key in a:
        np.testing.assert_allclose(np.asarray(a[key]), np.asarray(b[key]), atol=atol, rtol=0,
                                   err_msg=key)


@pytest.mark.parametrize("name", sorted(RANDOM_OPS))
def test_jit_vmap_match_per_image_and_keys_matter(name):
    op = functools.partial(A.OPS[name].fn, **RANDOM_OPS[name])
    batch = _batch()
    keys = jax.random.split(jax.random.key(42), BATCH)
    single = jax.jit(op)
    per_image = [single(keys[i], jax.tree.map(lambda v: v[i], batch)) for i in range(BATCH)]
    per_image = jax.tree.map(lambda *v: jnp.stack(v), *per_image)
    batched = jax.jit(jax.vmap(op))
    first = batched(keys, batch)
    _assert_tree_close(per_image, first)
    # The un-jitted per-image call agrees with both (first example; eager is slow to warm up).
    _assert_tree_close(jax.tree.map(lambda v: v[0], per_image),
                       op(keys[0], jax.tree.map(lambda v: v[0], batch)))
    # The same key again gives the same output.
    _assert_tree_close(first, batched(keys, batch), atol=0)
    # Different keys on the same image give different outputs.
    same = jax.tree.map(lambda v: jnp.repeat(v[:1], BATCH, axis=0), batch)
    images = np.asarray(batched(jax.random.split(jax.random.key(7), BATCH), same)["image"])
    distinct = {tuple(np.round(row, 5)) for row in images.reshape(BATCH, -1)}
    assert len(distinct) >= 2, f"{name}: {BATCH} keys gave one output"


@pytest.mark.parametrize("name", ["normalize", "center_crop"])
def test_deterministic_ops_ignore_the_key(name):
    batch = _batch()
    op = A.OPS[name].fn
    a = jax.vmap(op)(jax.random.split(jax.random.key(0), BATCH), batch)
    b = jax.jit(jax.vmap(op))(jax.random.split(jax.random.key(1), BATCH), batch)
    _assert_tree_close(a, b)


@pytest.mark.parametrize("name", ["mixup", "cutmix", "mixup_or_cutmix"])
def test_batch_ops_are_deterministic_per_key_and_keys_matter(name):
    # Batch ops have no per-image form; their values are checked against numpy in
    # test_augment_reference.py.
    op = jax.jit(functools.partial(A.OPS[name].fn, num_classes=4))
    rng = np.random.default_rng(1)
    batch = {"image": jnp.asarray(rng.uniform(size=(8, SIZE, SIZE, 3)), jnp.float32),
             "label": jnp.arange(8, dtype=jnp.int32) % 4}
    first = op(jax.random.key(3), batch)
    _assert_tree_close(first, op(jax.random.key(3), batch), atol=0)
    other = op(jax.random.key(4), batch)
    assert not np.allclose(np.asarray(other["image"]), np.asarray(first["image"]))
    np.testing.assert_allclose(np.asarray(first["label"]).sum(-1), 1.0, atol=1e-6)
