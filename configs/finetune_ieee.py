"""LSTM-EnDec on the IEEE IFS-TC challenge: Base fine-tuned on its training set.

As configs/finetune_nist16.py, with the paper's 512 x 512 training crops for
this lower-resolution dataset (the input pipeline's `crop_sizes`). Pass the
folder, e.g.
  python -m lstm_endec_jax.main --config=configs/finetune_ieee.py \
      --config.dataset.manual_dir=/data/ifs_tc_phase1
"""

import ml_collections

from configs import finetune_nist16


def get_config() -> ml_collections.ConfigDict:
  config = finetune_nist16.get_config()
  config.dataset.name = "ieee_ifs_tc"
  return config
