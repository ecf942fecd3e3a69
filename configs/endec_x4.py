"""Baseline "EnDec" of the paper's tables (encoder-decoder with upsampling
factor 4, i.e. LSTM-EnDec without the LSTM branch), trained like
configs/base.py."""

import ml_collections

from configs import base
from lstm_endec_jax.model import models


def get_config() -> ml_collections.ConfigDict:
  config = base.get_config()
  config.model = models.model_config("endec_x4")
  return config
