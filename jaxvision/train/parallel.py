"""How a step body runs on the devices: ``none``, ``jit`` (global view) or ``pmap`` (per device).

All three compile with ``jax.jit`` over a 1-D ``("data",)`` mesh; the state is replicated and
the batch is split along its first axis.

- ``none``: a one-device mesh; the reference for the others.
- ``jit``: the body sees the global batch; XLA inserts the gradient all-reduce, and BatchNorm
  statistics are those of the global batch (synced BN with no code).
- ``pmap``: the body runs per device under ``jax.shard_map`` (what ``jax.pmap`` is since JAX
  0.8), with explicit ``lax.pmean`` of gradients and metrics, per-device RNG keys, and either
  synced BatchNorm (the model's ``norm`` with ``axis_name="data"``) or per-device BatchNorm whose running
  statistics are averaged after each step.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxvision.xla_options import compiler_options

AXIS = "data"
MODES = ("none", "jit", "pmap")


@dataclasses.dataclass(frozen=True)
class Parallel:
    mode: str
    mesh: Mesh

    @property
    def num_devices(self) -> int:
        return self.mesh.size

    @property
    def axis_name(self) -> str | None:
        """The name the step body uses for collectives (only under ``pmap``)."""
        return AXIS if self.mode == "pmap" else None

    @property
    def replicated(self) -> NamedSharding:
        return NamedSharding(self.mesh, P())

    @property
    def batch_sharding(self) -> NamedSharding:
        return NamedSharding(self.mesh, P(AXIS))

    def place_state(self, state):
        return jax.device_put(state, self.replicated)

    def place_batch(self, local_batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
        """This process's numpy batch becomes one global array split over the mesh."""
        return {k: jax.make_array_from_process_local_data(self.batch_sharding, v)
                for k, v in local_batch.items()}

    def compile_train_step(self, body: Callable) -> Callable:
        return self._compile(body, donate=True, out_specs=(P(), P()))

    def compile_eval_step(self, body: Callable, *, with_predictions: bool = False) -> Callable:
        """``with_predictions``: the body returns ``(sums, predictions)``, the predictions split
        along the batch like the input."""
        out_specs = (P(), P(AXIS)) if with_predictions else P()
        return self._compile(body, donate=False, out_specs=out_specs)

    def _compile(self, body: Callable, *, donate: bool, out_specs) -> Callable:
        if self.mode == "pmap":
            # check_vma=False gives pmap's per-device semantics: gradients stay local until
            # the body's explicit pmean, so per-device SAM perturbations remain possible.
            body = jax.shard_map(body, mesh=self.mesh, in_specs=(P(), P(AXIS)),
                                 out_specs=out_specs, check_vma=False)
        out_shardings = jax.tree.map(lambda spec: NamedSharding(self.mesh, spec), out_specs,
                                     is_leaf=lambda x: isinstance(x, P))
        return jax.jit(body, in_shardings=(self.replicated, self.batch_sharding),
                       out_shardings=out_shardings, donate_argnums=(0,) if donate else (),
                       compiler_options=compiler_options())


def make_parallel(mode: str, *, num_devices: int | None = None) -> Parallel:
    """A ``Parallel`` over the first ``num_devices`` devices (all by default; 1 for ``none``).

    In a multi-process job (``jax.distributed``) the devices are those of every process, in
    process order, and each process must hold the same number of them: process ``i`` then
    owns rows ``[i * local, (i + 1) * local)`` of every global batch, which is how the data
    pipeline splits them (``TrainStream``)."""
    if mode not in MODES:
        raise ValueError(f"parallel must be one of {MODES}, got {mode!r}")
    devices = jax.devices()
    processes = jax.process_count()
    if processes > 1:
        if mode == "none":
            raise ValueError(f"parallel='none' runs on one device, but this job has {processes} "
                             "processes: use parallel='jit' or 'pmap'")
        devices = sorted(devices, key=lambda d: (d.process_index, d.id))
    count = 1 if mode == "none" else (num_devices or len(devices))
    if count > len(devices):
        raise ValueError(f"asked for {count} devices but only {len(devices)} are visible")
    if processes > 1:
        per_process = np.bincount([d.process_index for d in devices[:count]],
                                  minlength=processes)
        if len(set(per_process.tolist())) != 1:
            raise ValueError(f"num_devices={count} gives the {processes} processes unequal "
                             f"device counts ({per_process.tolist()}); use a multiple of "
                             f"{len(devices) // processes} per process, or 0 for all devices")
    return Parallel(mode, Mesh(np.asarray(devices[:count]), (AXIS,)))
