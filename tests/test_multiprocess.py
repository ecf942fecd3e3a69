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
from tests import multiprocess_step


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
  command = [sys.executable, "-m", "tests.multiprocess_step"]
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
  alone = multiprocess_step.take_step()  # this process: one process, two simulated devices
  first, second = (_result(process) for process in launched)
  assert (first["processes"], first["devices"]) == (2, 2)
  assert (alone["processes"], alone["devices"]) == (1, 2)
  assert first["loss"] == second["loss"]
  assert first["kernel"] == second["kernel"]
  np.testing.assert_allclose(first["loss"], alone["loss"], rtol=1e-6)
  np.testing.assert_allclose(first["kernel"], alone["kernel"], rtol=1e-5, atol=1e-7)
