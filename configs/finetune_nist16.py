"""LSTM-EnDec on NIST'16: the Base model (configs/base.py) fine-tuned on NIST'16.

Paper section 4: the synthetic-data Base model is fine-tuned on the dataset's
70% training split, with 1024 x 1024 crops at the four corners and the centre
resized to 256 (the input pipeline's `crop_sizes`). Params and batch
statistics come from `init_from`; the optimiser starts fresh. The paper gives
no fine-tuning schedule: a constant 3e-5 (HLED's rate) is our choice.

NIST'16 cannot be downloaded automatically: pass the folder, e.g.
  python -m lstm_endec_jax.main --config=configs/finetune_nist16.py \
      --config.dataset.manual_dir=/data/NC2016_Test0613
"""

import ml_collections

from configs import base


def get_config() -> ml_collections.ConfigDict:
  config = base.get_config()
  config.init_from = "workdir/base"
  config.dataset.name = "nist16"
  config.learning_rate = 3e-5
  config.schedule = "constant"
  config.warmup_steps = 0
  config.num_train_steps = 1000
  config.eval_every_steps = 250
  return config
