r"""Exports a training run's weights as a shipped model (`lstm_endec_jax/runs/shipped.py`).

  python -m lstm_endec_jax.pretrained --checkpoint=WORKDIR --step=best --name=base

Writes `<name>.npz` and `<name>.json` into the package (or `--directory`); float16 storage halves
the size.
"""

import json
import pathlib
from typing import Any

from absl import flags
from flax import traverse_util
import jax
import numpy as np

from lstm_endec_jax.runs import layout
from lstm_endec_jax.runs import shipped
from lstm_endec_jax.runs import weights
from lstm_endec_jax.runtime import cli


def export(
    loaded: weights.TrainedModel,
    name: str,
    *,
    storage_dtype: str,
    provenance: dict[str, Any],
    directory: pathlib.Path = shipped.WEIGHTS_DIR,
) -> pathlib.Path:
  """Writes `<name>.npz` and `<name>.json` for a loaded run; returns the npz path."""
  dtype = shipped.STORAGE_DTYPES[storage_dtype]
  flat = traverse_util.flatten_dict(jax.device_get(loaded.variables))
  arrays = {shipped.SEPARATOR.join(key): np.asarray(value, dtype) for key, value in flat.items()}
  directory.mkdir(parents=True, exist_ok=True)
  npz_path = directory / f"{name}.npz"
  np.savez_compressed(npz_path, **arrays)
  stored = traverse_util.unflatten_dict(
      {tuple(k.split(shipped.SEPARATOR)): np.asarray(v, np.float32) for k, v in arrays.items()}
  )
  record = {
      "name": name,
      "run_config": {
          "model": loaded.run_config.model.to_dict(),
          "best_metric": loaded.run_config.best_metric,
          "best_mode": loaded.run_config.best_mode,
      },
      "step": loaded.step,
      "storage_dtype": storage_dtype,
      "provenance": provenance,
      "reference_output": shipped.reference_output(loaded.model, stored),
  }
  (directory / f"{name}.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
  return npz_path


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
  loaded = weights.load(options.checkpoint, step=layout.parse_step(options.step))
  provenance = {"checkpoint": str(loaded.step_dir), "note": options.note}
  path = export(
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
