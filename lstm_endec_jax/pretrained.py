r"""Exports a training run's weights as a shipped model (`lstm_endec_jax/runs/shipped.py`).

  python -m lstm_endec_jax.pretrained --checkpoint=WORKDIR --step=best --name=base

Writes `<name>.npz` and `<name>.json` into the package (or `--directory`); float16 storage halves
the size.
"""

import pathlib

from absl import flags

from lstm_endec_jax.runs import layout
from lstm_endec_jax.runs import shipped
from lstm_endec_jax.runs import trained_model
from lstm_endec_jax.runtime import cli


def define_flags() -> None:
  """The export command's flags; defined only when this module is the program."""
  flags.DEFINE_string("checkpoint", None, "Training workdir (or step directory).", required=True)
  flags.DEFINE_string("step", "best", "'latest', 'best' or a step number.")
  flags.DEFINE_string("name", shipped.DEFAULT_NAME, "Name of the shipped model.")
  flags.DEFINE_enum("storage_dtype", "float16", list(shipped.STORAGE_DTYPES), "Stored precision.")
  flags.DEFINE_string("note", "", "Free text kept in the JSON (how the run was made).")
  flags.DEFINE_string(
      "directory", str(shipped.WEIGHTS_DIR), "Where the two files go (default: shipped)."
  )


def main(argv):
  del argv
  cli.quiet_libraries()
  options = flags.FLAGS
  loaded = trained_model.load(options.checkpoint, step=layout.parse_step(options.step))
  provenance = {"checkpoint": str(loaded.step_dir), "note": options.note}
  path = shipped.export(
      loaded,
      options.name,
      storage_dtype=options.storage_dtype,
      provenance=provenance,
      directory=pathlib.Path(options.directory),
  )
  print(f"{path} ({path.stat().st_size / 2**20:.1f} MiB) from step {loaded.step}")


if __name__ == "__main__":
  define_flags()
  cli.run(main)
