"""Data parallelism over a 1-D `data` mesh of devices (docs/method.md section 7).

One code path serves 1 CPU, N simulated CPU devices, N local GPUs and several
hosts: the per-device step is `shard_map`-ped over the mesh axis `DATA_AXIS`,
each device sees its slice of the global batch, and host-local batches are
assembled into global arrays sharded along that axis.
"""

import os
from typing import Any

from absl import logging
import jax
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
import numpy as np

from lstm_endec_jax.runtime.errors import ConfigError

DATA_AXIS = "data"

# Launchers that set these variables run one process per host; the values
# are the process count each one reports.
_PROCESS_COUNT_VARIABLES = ("JAX_NUM_PROCESSES", "SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE")


def _launched_multi_process() -> bool:
  if os.environ.get("JAX_COORDINATOR_ADDRESS"):
    return True
  return any(int(os.environ.get(name, "1")) > 1 for name in _PROCESS_COUNT_VARIABLES)


def maybe_initialize_distributed() -> None:
  """Joins a multi-host job when a launcher set the usual variables.

  `JAX_COORDINATOR_ADDRESS` (+ `JAX_NUM_PROCESSES`, `JAX_PROCESS_ID`), or a
  SLURM / Open MPI launch of more than one task. A single process needs none.
  """
  if not _launched_multi_process() or jax.distributed.is_initialized():
    return
  kwargs = {}
  if "JAX_NUM_PROCESSES" in os.environ:
    kwargs["num_processes"] = int(os.environ["JAX_NUM_PROCESSES"])
  if "JAX_PROCESS_ID" in os.environ:
    kwargs["process_id"] = int(os.environ["JAX_PROCESS_ID"])
  jax.distributed.initialize(**kwargs)
  logging.info("Joined a %d-process job as process %d.", jax.process_count(), jax.process_index())


def create_mesh(num_devices: int = 0) -> Mesh:
  """A `data` mesh over the first `num_devices` devices (0: all of them)."""
  devices = jax.devices()
  if num_devices > 0:
    if num_devices > len(devices):
      raise ConfigError(
          f"config.num_devices={num_devices}, but only "
          f"{len(devices)} devices are available: {devices}."
      )
    if jax.process_count() > 1 and num_devices != len(devices):
      raise ConfigError("config.num_devices: a multi-host run must use every device (0).")
    devices = devices[:num_devices]
  return Mesh(np.asarray(devices), (DATA_AXIS,))


def check_batch_size(batch_size: int, mesh: Mesh, what: str) -> None:
  """Raises a clear error when `batch_size` cannot be split over `mesh`."""
  if batch_size <= 0 or batch_size % mesh.size:
    raise ConfigError(
        f"The {what} ({batch_size}) must be a positive multiple of the number "
        f"of devices ({mesh.size}: {mesh.devices.ravel().tolist()}). Change "
        "it, or use fewer devices with --config.num_devices."
    )


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA_AXIS))


def global_batch(local_batch: Any, mesh: Mesh) -> Any:
  """Assembles each process's numpy batch into arrays sharded over `mesh`."""
  sharding = batch_sharded(mesh)
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local_batch
  )


def to_host(tree: Any) -> Any:
  """Every process gets the full value of (possibly sharded) global arrays."""
  if jax.process_count() == 1:
    return jax.device_get(tree)
  return multihost_utils.process_allgather(tree, tiled=True)
