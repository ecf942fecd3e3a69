"""Trains and evaluates LSTM-EnDec: `python -m lstm_endec_jax.main --config=configs/base.py`.

Kept short on purpose; the work is in `train.py`. Any config value can be
overridden on the command line, e.g. `--config.num_train_steps=100`.
Running the same command again resumes from the workdir's last checkpoint.
"""

import errno
import pathlib
import sys

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from lstm_endec_jax import checkpointing
from lstm_endec_jax import parallel
from lstm_endec_jax import reporting
from lstm_endec_jax import train

FLAGS = flags.FLAGS

flags.DEFINE_string(
    "workdir", None,
    "Directory for checkpoints, metrics and plots "
    "(default: ./workdir/<config file name>).")
config_flags.DEFINE_config_file(
    "config", None, "Training configuration file (configs/*.py).",
    lock_config=True)
flags.mark_flags_as_required(["config"])


def default_workdir(config_filename: str) -> str:
  return str(pathlib.Path("workdir") / pathlib.Path(config_filename).stem)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError("Too many command-line arguments.")
  parallel.maybe_initialize_distributed()
  workdir = FLAGS.workdir or default_workdir(
      config_flags.get_config_filename(FLAGS["config"]))
  logging.info("JAX process %d / %d, local devices: %s", jax.process_index(),
               jax.process_count(), jax.local_devices())
  logging.info("Workdir: %s", workdir)
  try:
    train.train_and_evaluate(FLAGS.config, workdir)
  except (reporting.WorkdirError, checkpointing.CheckpointWriteError) as error:
    _exit_with(str(error))
  except OSError as error:
    if error.errno != errno.ENOSPC:
      raise
    _exit_with(f"The disk is full: cannot write {error.filename or workdir}. "
               "Free space, then run the same command to resume.")


def _exit_with(message: str) -> None:
  logging.error("%s", message)
  sys.exit(f"error: {message}")


if __name__ == "__main__":
  app.run(main)
