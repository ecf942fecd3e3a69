"""Training on several datasets with equal shares, as CAT-Net balances its training sets.

`dataset.mixture` weights are shares of each epoch: equal weights give every dataset the same
number of samples per epoch, the smaller ones repeating (input_pipeline.MixtureDataSource).
Validation and testing use `dataset.name`.

  python -m lstm_endec_jax.main --config=configs/balanced_mixture.py \
      --config.dataset.manual_dir=/data/forensics
"""

import ml_collections

from configs import base


def get_config() -> ml_collections.ConfigDict:
  config = base.get_config()
  config.init_from = "pretrained:base"
  config.dataset.name = "casia/v2"
  config.dataset.mixture = "casia/v2:1,imd2020:1,defacto:1,synthetic_splice/default:1"
  config.learning_rate = 3e-5
  config.schedule = "constant"
  config.warmup_steps = 0
  config.num_train_steps = 4000
  config.eval_every_steps = 500
  return config
