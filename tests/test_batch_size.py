"""The largest-batch finder: halving from a start size returns a size that fits and whose
double does not, under a memory cap set here: XLA's memory_analysis of the compiled step as
the budget. (A real ``RLIMIT_AS`` cap in a subprocess is not a usable test on CPU: XLA raises
a clean RESOURCE_EXHAUSTED for a too-large buffer, but the compiler aborts the process with
``std::bad_alloc`` first at large batch sizes.)"""

import flax.linen as nn
import optax
import pytest

from jaxvision.train.batch_size import (OutOfMemory, find_max_batch_size, is_out_of_memory,
                                        train_step_probe)


class _Tiny(nn.Module):
    @nn.compact
    def __call__(self, x, *, train: bool = False):
        x = nn.relu(nn.Conv(16, (3, 3), name="conv1")(x))
        x = nn.relu(nn.Conv(16, (3, 3), strides=(2, 2), name="conv2")(x))
        return nn.Dense(10, name="head")(x.reshape(x.shape[0], -1))


def test_halving_logic():
    search = find_max_batch_size(lambda n: (_ for _ in ()).throw(MemoryError()) if n > 100
                                 else None, start=1024)
    assert search.batch_size == 64 and search.tried == {1024: False, 512: False, 256: False,
                                                        128: False, 64: True}
    assert find_max_batch_size(lambda n: None, start=32).tried == {32: True}
    with pytest.raises(ValueError, match="shape"):  # not an out-of-memory: re-raised
        find_max_batch_size(lambda n: (_ for _ in ()).throw(ValueError("shape")), start=8)
    with pytest.raises(OutOfMemory):
        find_max_batch_size(lambda n: (_ for _ in ()).throw(MemoryError()), start=8)
    assert is_out_of_memory(RuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating 8 bytes"))


def test_memory_analysis_budget():
    budget = 4 * 2**20
    probe = train_step_probe(_Tiny(), optax.adam(1e-3), (16, 16, 3), budget_bytes=budget)
    search = find_max_batch_size(probe, start=128)
    size = search.batch_size
    assert search.tried[size] and not search.tried[2 * size] and 4 <= size < 128
    assert probe.peak[size] <= budget < probe.peak[2 * size]  # fits (and ran); its double not
