"""Baseline "FCN" of the paper's tables, trained like configs/base.py."""

import ml_collections

from configs import base
from lstm_endec_jax.model import models


def get_config() -> ml_collections.ConfigDict:
  config = base.get_config()
  config.model = models.model_config("fcn")
  return config
