"""The paper's own protocol (Bappy et al. 2019, section 4): synthetic pre-training, then
fine-tuning on NIST'16 and IEEE IFS-TC (configs/finetune_*.py), COVERAGE tested only.

The paper scores each dataset with the model fine-tuned on it (its Tables 2-3), so run the table
once per checkpoint; with the Base model (the default, the shipped weights) it gives the
"LSTM-EnDec-Base" rows.

  python -m lstm_endec_jax.protocol --config=configs/protocol_paper.py \
      --config.dataset.manual_dir=/data/forensics [--checkpoint=workdir/finetune_nist16]
"""

import ml_collections

from configs import base


def get_config() -> ml_collections.ConfigDict:
  config = base.get_config()
  config.protocol_name = "Paper protocol (Bappy et al. 2019, Tables 2-3)"
  config.protocol_test_sets = ("nist16:test", "ieee_ifs_tc:test", "coverage:test")
  return config
