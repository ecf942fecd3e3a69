"""A tiny end-to-end run for tests and a first look: seconds, not hours.

The paper's network with every width cut down, on the 16 / 8 / 8-example
`synthetic_splice/tiny` dataset, in-process data loading.
"""

import ml_collections

from configs import base


def get_config() -> ml_collections.ConfigDict:
  config = base.get_config()
  config.model.encoder_features = (4, 4, 4, 4)
  config.model.lstm_hidden_size = 8
  config.model.lstm_maps = 4
  config.model.decoder_features = (4, 4)
  config.dataset.name = "synthetic_splice/tiny"
  config.dataset.worker_count = 0
  config.dataset.read_threads = 1
  config.dataset.read_prefetch = 4

  config.batch_size = 4
  config.eval_batch_size = 4
  config.class_weight_batches = 2
  config.learning_rate = 1e-3
  config.warmup_steps = 2
  config.num_train_steps = 6
  config.log_every_steps = 2
  config.eval_every_steps = 3
  config.checkpoint_every_steps = 2
  config.keep_checkpoints = 2
  config.num_eval_batches = 1
  config.num_test_batches = -1
  config.num_sample_images = 2
  return config
