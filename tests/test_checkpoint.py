"""Orbax checkpoints: restore across device counts, and damaged checkpoints never load."""

import glob
import logging
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxvision import models
from jaxvision.train import CheckpointError, Checkpointer, create_train_state, make_parallel
from jaxvision.train.checkpoint import abstract_items, fingerprint


@pytest.fixture(scope="module")
def items():
    model = models.create("small_cnn", num_classes=10)
    state = create_train_state(model, optax.adamw(1e-3), seed=3, input_shape=(1, 8, 8, 1))
    # Move away from the initial values so that a restored default could not pass for them.
    state = state.replace(step=jnp.int32(7), params=jax.tree.map(lambda p: p + 0.25, state.params))
    return state.checkpoint_items()


def _assert_equal(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("save_mode,restore_mode", [("jit", "none"), ("none", "jit")])
def test_restore_onto_another_device_count(tmp_path, items, save_mode, restore_mode):
    saver, loader = make_parallel(save_mode), make_parallel(restore_mode)
    checkpointer = Checkpointer(tmp_path)
    checkpointer.save(7, saver.place_state(items), meta={"note": "x"})
    checkpointer.wait()
    step, restored, meta = Checkpointer(tmp_path).restore_latest(
        abstract_items(items, loader.replicated))
    assert step == 7 and meta["note"] == "x"
    _assert_equal(restored, items)
    leaf = restored["params"]["conv0"]["kernel"]
    assert len(leaf.sharding.device_set) == loader.num_devices
    assert restored["rng"].dtype == jnp.uint32  # key data, restorable as a key


def _state_files(directory, step):
    files = [f for f in glob.glob(f"{directory}/{step}/state/**", recursive=True)
             if os.path.isfile(f) and "/d/" in f]
    assert files, "expected OCDBT data files in the checkpoint"
    return files


def _save_steps(directory, items, steps):
    checkpointer = Checkpointer(directory, keep_latest=3)
    for step in steps:
        checkpointer.save(step, dict(items, step=jnp.int32(step)))
    checkpointer.wait()


@pytest.mark.parametrize("damage", ["flip_byte", "truncate"])
def test_damaged_latest_falls_back_to_previous(tmp_path, items, caplog, damage):
    _save_steps(tmp_path, items, [1, 2])
    for path in _state_files(tmp_path, 2):
        data = bytearray(open(path, "rb").read())
        if damage == "flip_byte":
            data[len(data) // 2] ^= 0x04
        else:
            data = data[: len(data) // 3]
        open(path, "wb").write(bytes(data))
    target = abstract_items(items, make_parallel("none").replicated)
    with caplog.at_level(logging.WARNING):
        step, restored, _ = Checkpointer(tmp_path).restore_latest(target)
    assert step == 1
    assert int(restored["step"]) == 1
    _assert_equal(restored["params"], items["params"])
    assert any("step 2" in r.getMessage() for r in caplog.records)


def test_all_damaged_stops_with_clear_message(tmp_path, items):
    _save_steps(tmp_path, items, [1])
    for path in _state_files(tmp_path, 1):
        open(path, "wb").write(b"garbage")
    with pytest.raises(CheckpointError, match="could be restored intact"):
        Checkpointer(tmp_path).restore_latest(abstract_items(items, make_parallel("none").replicated))


def test_empty_directory_restores_nothing(tmp_path, items):
    assert Checkpointer(tmp_path).restore_latest(items) is None


def test_fingerprint_sees_any_bit_and_ignores_sharding(items):
    base = [int(v) for v in fingerprint(items)]
    sharded = make_parallel("jit").place_state(items)
    assert [int(v) for v in fingerprint(sharded)] == base
    kernel = np.asarray(items["params"]["conv0"]["kernel"]).copy()
    for bit in (0, 13, 31):
        flipped = kernel.view(np.uint32).copy()
        flipped.flat[5] ^= np.uint32(1 << bit)
        changed = dict(items, params={**items["params"], "conv0": {
            **items["params"]["conv0"], "kernel": flipped.view(np.float32)}})
        assert [int(v) for v in fingerprint(changed)] != base
