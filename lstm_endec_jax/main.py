"""Trains and evaluates LSTM-EnDec: `python -m lstm_endec_jax.main --config=configs/base.py`.

Kept short on purpose; the work is in `train.py`. Any config value can be
overridden on the command line, e.g. `--config.num_train_steps=100`.
Running the same command again resumes from the workdir's last checkpoint.

Exit codes: 0 done (eval.json written); 1 a run-time failure (disk full,
unwritable workdir, training diverged); 2 a bad flag or config field; 130 /
143 stopped by Ctrl-C / SIGTERM after saving (run again to resume). Each
failure is one `error:` line; `--verbosity=0` (absl) shows library logs too.
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
from lstm_endec_jax import cli
from lstm_endec_jax import interrupts
from lstm_endec_jax import reporting
from lstm_endec_jax import runs
from lstm_endec_jax import train
from lstm_endec_jax.errors import ConfigError
from tfds_builders import manual

FLAGS = flags.FLAGS

flags.DEFINE_string(
    "workdir",
    None,
    "Directory for checkpoints, metrics and plots (default: ./workdir/<config file name>).",
)
config_flags.DEFINE_config_file(
    "config", None, "Training configuration file (configs/*.py).", lock_config=True
)
flags.mark_flags_as_required(["config"])


def default_workdir(config_filename: str) -> str:
  return str(pathlib.Path("workdir") / pathlib.Path(config_filename).stem)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError("Too many command-line arguments.")
  cli.start_command()
  workdir = FLAGS.workdir or default_workdir(config_flags.get_config_filename(FLAGS["config"]))
  logging.info(
      "JAX process %d / %d, local devices: %s",
      jax.process_index(),
      jax.process_count(),
      jax.local_devices(),
  )
  logging.info("Workdir: %s", workdir)
  try:
    train.train_and_evaluate(FLAGS.config, workdir)
  except ConfigError as error:
    cli.exit_with(str(error), code=2)
  except interrupts.Stopped as stopped:
    reporting.announce(str(stopped))
    sys.exit(stopped.exit_code)
  except (
      runs.WorkdirError,
      checkpointing.CheckpointWriteError,
      train.TrainingDivergedError,
      manual.ManualDirError,
  ) as error:
    cli.exit_with(str(error))
  except runs.CheckpointNotFoundError as error:
    cli.exit_with(
        f"{error} (num_train_steps=0 evaluates an existing checkpoint: "
        "the workdir's, or config.init_from's)"
    )
  except OSError as error:
    if error.errno != errno.ENOSPC:
      raise
    cli.exit_with(
        f"The disk is full: cannot write {error.filename or workdir}. "
        "Free space, then run the same command to resume."
    )
  reporting.announce(runs.Run(pathlib.Path(workdir).absolute()).summary())


if __name__ == "__main__":
  cli.check_config_file_flag(sys.argv)
  app.run(main)
