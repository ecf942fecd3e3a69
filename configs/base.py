"""LSTM-EnDec-Base: the paper's network trained on the offline synthetic splices.

Paper section 3.4 gives the loss (cross entropy weighted by inverse class
frequency, weights in [0, 1]) and the optimiser (Adam); the batch size of 16 is
the authors' code's (HLED), the paper gives none. The paper gives no learning
rate either: 1e-4 with a short warm-up and cosine decay is our choice (HLED's
3e-5, in configs/hled.py, learns too slowly for a CPU-sized run).

Run length: 300 steps of 16 (4,800 images, ~1.4 passes over the 3,500
training images of synthetic_splice/default). How long that takes on a CPU
and on a GPU is measured in benchmarks/ and stated in the README. A short
CPU demonstration:
  python -m lstm_endec_jax.main --config=configs/base.py \
      --config.num_train_steps=50 --config.eval_every_steps=50 \
      --config.num_eval_batches=4 --config.num_test_batches=16
"""

import ml_collections

from lstm_endec_jax.data import input_pipeline
from lstm_endec_jax.model import models


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.model = models.model_config("paper")
  config.dataset = input_pipeline.default_dataset_config()
  config.validation_split = "validation"
  config.test_split = "test"

  # 0 = every device; the global batch is split evenly over them.
  config.num_devices = 0
  config.batch_size = 16
  config.eval_batch_size = 16

  # "weighted_softmax_ce" (paper), "softmax_ce" (unweighted), "sigmoid_bce" (HLED),
  # "softmax_ce_dice" (ours: unweighted cross entropy plus a soft Dice term).
  config.loss = "weighted_softmax_ce"
  # Class frequencies for the loss weights are measured on this many training
  # batches at the start of a run, logged and saved to class_weights.json.
  config.class_weight_batches = 8

  config.learning_rate = 1e-4
  config.schedule = "cosine"  # "constant" | "cosine"
  config.warmup_steps = 20
  config.grad_clip_norm = 0.0  # 0 = no clipping
  # A step whose loss, gradient or update is not finite is skipped; this many
  # in a row stop the run with an error (learning rate too high, broken data).
  config.max_consecutive_skipped_steps = 10
  config.adam_b1 = 0.9
  config.adam_b2 = 0.999
  config.adam_eps = 1e-8

  config.num_train_steps = 300
  config.log_every_steps = 10
  config.eval_every_steps = 100
  config.checkpoint_every_steps = 50
  config.keep_checkpoints = 3
  config.best_metric = "pooled/pixel_auc"
  config.best_mode = "max"
  config.async_checkpointing = True
  # Batches of the validation split per evaluation during training and of the
  # test split at the end; -1 = the whole split.
  config.num_eval_batches = -1
  config.num_test_batches = -1
  config.num_sample_images = 4  # rows of the PNG grid written at each evaluation

  # Another run's workdir or checkpoint, or "pretrained:base" (the weights
  # shipped with the package), to take params and batch statistics from
  # (fine-tuning; the optimiser starts fresh). Ignored when resuming.
  config.init_from = ""
  return config
