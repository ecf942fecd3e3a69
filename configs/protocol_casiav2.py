"""The CASIAv2 protocol ("Protocol-MVSS"), the field's most used cross-dataset protocol.

Train on CASIA v2 (tampered and authentic images), then test, without any further training, on
CASIA v1, Columbia, NIST'16, COVERAGE and IMD2020. The test datasets are never trained on, so
each is tested whole (every split of its build), except COVERAGE, which is test-only. LSTM-EnDec
starts from the shipped synthetic-data weights, as the paper fine-tunes its Base model.

  python -m lstm_endec_jax.main --config=configs/protocol_casiav2.py \
      --config.dataset.manual_dir=/data/forensics
  python -m lstm_endec_jax.protocol --config=configs/protocol_casiav2.py \
      --checkpoint=workdir/protocol_casiav2 --config.dataset.manual_dir=/data/forensics
"""

import ml_collections

from configs import base

WHOLE = "train+validation+test"


def get_config() -> ml_collections.ConfigDict:
  config = base.get_config()
  config.init_from = "pretrained:base"
  config.dataset.name = "casia/v2"
  config.dataset.train_split = "train+test"  # all of CASIA v2 but the validation images
  config.learning_rate = 3e-5
  config.schedule = "constant"
  config.warmup_steps = 0
  config.num_train_steps = 4000
  config.eval_every_steps = 500
  config.protocol_name = "CASIAv2 protocol: trained on CASIA v2"
  config.protocol_test_sets = (
      f"casia/v1:{WHOLE}",
      f"columbia:{WHOLE}",
      f"nist16:{WHOLE}",
      "coverage:test",
      f"imd2020:{WHOLE}",
  )
  return config
