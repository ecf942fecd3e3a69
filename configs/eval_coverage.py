"""Evaluation only: a trained model on COVERAGE (test-only, too small to train).

Paper Table 2/3 report LSTM-EnDec-Base on COVERAGE. Nothing is trained
(`num_train_steps = 0`); params and batch statistics come from `init_from`
(a workdir, its checkpoints/ or one step). Writes eval.json and roc.png.
  python -m lstm_endec_jax.main --config=configs/eval_coverage.py \
      --config.dataset.manual_dir=/data/COVERAGE --config.init_from=workdir/base
"""

import ml_collections

from configs import base


def get_config() -> ml_collections.ConfigDict:
  config = base.get_config()
  config.init_from = "workdir/base"
  config.dataset.name = "coverage"
  config.test_split = "test"
  config.num_train_steps = 0
  return config
