"""The shipped LSTM-EnDec-Base weights (CPU path): `base.py` for what one 2-core session allows.

The paper's network (`paper` variant) on the offline `synthetic_splice/default` data (splices,
copy-moves and removals in the many-scene photographs of
`tfds_builders/synthetic_splice/photos.py`, made by the generator's `train` recipe). Differences
from `base.py`, chosen before the run, not by a sweep: a longer run (the step budget of about an
hour of a 2-core CPU), a 3x higher peak learning rate with a longer warm-up, since a short run has
few steps to spend, and validation every 40 steps on the whole validation split, for the learning
curve and the best-step checkpoint. The test split is evaluated once, at the end;
`python -m experiments.model_card` adds the held-out-generator and cross-source test splits.
docs/model_card.md reports the run.
"""

import ml_collections

from configs import base


def get_config() -> ml_collections.ConfigDict:
  config = base.get_config()
  config.num_train_steps = 360
  config.learning_rate = 3e-4
  config.warmup_steps = 40
  config.eval_every_steps = 40
  config.checkpoint_every_steps = 20
  config.num_eval_batches = -1
  config.num_test_batches = -1
  return config
