"""Two local processes joined through `jax.distributed` take the same step as one process.

This is the multi-host code path (parallel.maybe_initialize_distributed, process-local batches
assembled into global arrays, cross-process gradient averaging and gathering to every host) run
on one CPU, so that it cannot rot between real multi-host runs.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np

from tests import conftest

STEP_SCRIPT = r"""
import json
import jax
import numpy as np
from configs import smoke
from lstm_endec_jax import models, optimizers, parallel, train

parallel.maybe_initialize_distributed()
config = smoke.get_config()
config.model = models.model_config("endec")
config.model.encoder_features = (4, 4, 4, 4)
config.model.decoder_features = (4, 4, 4, 4)
config.dataset.image_size = 32
config.batch_size = 4
rng = np.random.default_rng(0)
masks = np.zeros((4, 32, 32), np.int32)
masks[:, 8:20, 10:24] = 1
whole = {"image": rng.integers(0, 256, (4, 32, 32, 3), np.uint8), "mask": masks}
rows = slice(2 * jax.process_index(), 2 * jax.process_index() + 4 // jax.process_count())
mesh = parallel.create_mesh()
schedule = optimizers.create_learning_rate_schedule(config)
variables = models.initial_variables(config.model, jax.random.key(0), image_size=32)
state = train.create_train_state(config, variables, jax.random.key(1), np.array([0.3, 0.7]), schedule)
state = jax.device_put(state, parallel.replicated(mesh))
batch = parallel.global_batch({name: value[rows] for name, value in whole.items()}, mesh)
state, metrics = train.make_parallel_train_step(config, mesh, schedule)(state, batch)
kernel = parallel.to_host(state.params["decoder"]["classifier"]["kernel"])
print(json.dumps({"processes": jax.process_count(), "devices": jax.device_count(),
                  "loss": float(parallel.to_host(metrics["loss"])),
                  "kernel": np.asarray(kernel).ravel().tolist()}))
"""


def _free_port() -> int:
  with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    return sock.getsockname()[1]


def _env(**variables: str) -> dict[str, str]:
  env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "SLURM_", "OMPI_"))}
  env.update(variables)
  return env


def _result(process: subprocess.Popen) -> dict:
  stdout, stderr = process.communicate(timeout=300)
  assert process.returncode == 0, stderr[-3000:]
  return json.loads(stdout.strip().splitlines()[-1])


def test_two_processes_take_the_same_step_as_one():
  command = [sys.executable, "-c", STEP_SCRIPT]
  address = f"127.0.0.1:{_free_port()}"
  launched = [
      subprocess.Popen(
          command,
          cwd=conftest.REPO_ROOT,
          text=True,
          stdout=subprocess.PIPE,
          stderr=subprocess.PIPE,
          env=_env(
              JAX_COORDINATOR_ADDRESS=address,
              JAX_NUM_PROCESSES="2",
              JAX_PROCESS_ID=str(index),
              XLA_FLAGS="--xla_force_host_platform_device_count=1",
          ),
      )
      for index in range(2)
  ]
  single = subprocess.Popen(
      command,
      cwd=conftest.REPO_ROOT,
      text=True,
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      env=_env(XLA_FLAGS="--xla_force_host_platform_device_count=2"),
  )
  first, second = (_result(process) for process in launched)
  alone = _result(single)
  assert (first["processes"], first["devices"]) == (2, 2)
  assert (alone["processes"], alone["devices"]) == (1, 2)
  assert first["loss"] == second["loss"]
  assert first["kernel"] == second["kernel"]
  np.testing.assert_allclose(first["loss"], alone["loss"], rtol=1e-6)
  np.testing.assert_allclose(first["kernel"], alone["kernel"], rtol=1e-5, atol=1e-7)
