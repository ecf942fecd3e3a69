"""The authors' public code (HLED, `Codes/train.py`): their network variant and loss.

docs/method.md section 4: 64-unit LSTM with output dropout, per-position projection,
fixed bilinear upsampling, 1x1 decoder; unweighted sigmoid binary cross
entropy on the one-hot target; Adam, learning rate 3e-5 (constant), batch 16.
Unlike HLED, BatchNorm uses running averages at test time.
"""

import ml_collections

from configs import base
from lstm_endec_jax.model import models


def get_config() -> ml_collections.ConfigDict:
  config = base.get_config()
  config.model = models.model_config("hled")
  config.loss = "sigmoid_bce"
  config.learning_rate = 3e-5
  config.schedule = "constant"
  config.warmup_steps = 0
  return config
