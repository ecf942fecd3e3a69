"""One data-parallel train step of a tiny model on a fixed global batch, for test_multiprocess.

Run as a program (`python -m tests.multiprocess_step`) it joins the multi-process job its
environment describes and prints the step's loss and one updated kernel as JSON; imported, the
test calls `take_step` in its own process for the single-process reference.
"""

import json

import jax
import numpy as np

from configs import smoke
from lstm_endec_jax.model import models
from lstm_endec_jax.runtime import parallel
from lstm_endec_jax.training import optimizers
from lstm_endec_jax.training import train


def take_step() -> dict:
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
  share = 4 // jax.process_count()
  rows = slice(share * jax.process_index(), share * (jax.process_index() + 1))
  mesh = parallel.create_mesh()
  schedule = optimizers.create_learning_rate_schedule(config)
  variables = models.initial_variables(config.model, jax.random.key(0), image_size=32)
  state = train.create_train_state(
      config, variables, jax.random.key(1), np.array([0.3, 0.7]), schedule
  )
  state = jax.device_put(state, parallel.replicated(mesh))
  batch = parallel.global_batch({name: value[rows] for name, value in whole.items()}, mesh)
  state, metrics = train.make_parallel_train_step(config, mesh, schedule)(state, batch)
  kernel = parallel.to_host(state.params["decoder"]["classifier"]["kernel"])
  return {
      "processes": jax.process_count(),
      "devices": jax.device_count(),
      "loss": float(parallel.to_host(metrics["loss"])),
      "kernel": np.asarray(kernel).ravel().tolist(),
  }


if __name__ == "__main__":
  parallel.maybe_initialize_distributed()
  print(json.dumps(take_step()))
