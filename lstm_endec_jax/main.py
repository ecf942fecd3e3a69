"""Trains and evaluates LSTM-EnDec: `python -m lstm_endec_jax.main --config=configs/base.py`.

Kept short on purpose; the work is in `train.py`. Any config value can be
overridden on the command line, e.g. `--config.num_train_steps=100`.
Running the same command again resumes from the workdir's last checkpoint.

Exit codes (`cli.run`): 0 done (eval.json written); 1 a run-time failure (disk
full, unwritable or busy workdir, training diverged); 2 a bad flag or config
field; 130 / 143 stopped by Ctrl-C / SIGTERM after saving (run again to
resume). Each failure is one `error:` line; `--verbosity=0` (absl) shows
library logs too.
"""

import pathlib
import sys

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from lstm_endec_jax.runs import layout
from lstm_endec_jax.runs import reporting
from lstm_endec_jax.runtime import cli
from lstm_endec_jax.training import train

FLAGS = flags.FLAGS


def define_flags() -> None:
  """The command line's flags; defined only when this module is the program."""
  flags.DEFINE_string(
      "workdir",
      None,
      "Directory for checkpoints, metrics and plots (default: ./workdir/<config file name>).",
  )
  config_flags.DEFINE_config_file(
      "config", None, "Training configuration file (configs/*.py).", lock_config=True
  )


def default_workdir(config_filename: str) -> str:
  return str(pathlib.Path("workdir") / pathlib.Path(config_filename).stem)


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if FLAGS.config is None:
    raise app.UsageError("--config is required, e.g. --config=configs/base.py")
  cli.start_command()
  workdir = FLAGS.workdir or default_workdir(config_flags.get_config_filename(FLAGS["config"]))
  logging.info(
      "JAX process %d / %d, local devices: %s",
      jax.process_index(),
      jax.process_count(),
      jax.local_devices(),
  )
  logging.info("Workdir: %s", workdir)
  train.train_and_evaluate(FLAGS.config, workdir)
  reporting.announce(layout.Run(pathlib.Path(workdir).absolute()).summary())


if __name__ == "__main__":
  define_flags()
  cli.check_config_file_flag(sys.argv)
  cli.run(main, huge_pages=True)
