r"""Weights that ship inside the package: LSTM-EnDec-Base trained by this project.

  localizer = Localizer.from_pretrained()                    # "base"
  python -m lstm_endec_jax.predict photo.jpg                 # no --checkpoint: the same weights
  --config.init_from=pretrained:base                         # fine-tune from them

Each model is two files in `lstm_endec_jax/runs/shipped_weights/`: `<name>.npz`, the params and batch
statistics as plain arrays (read with `allow_pickle=False`, so loading runs no code), and
`<name>.json`: the model config, the run that trained them (docs/model_card.md), and the output the
weights gave for a fixed input when they were exported, which the tests check so that a change of
the model code that breaks the weights cannot pass unnoticed.

`python -m lstm_endec_jax.pretrained` exports them from a training run.
"""

import json
import pathlib
from typing import Any

from flax import traverse_util
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from lstm_endec_jax.model import models
from lstm_endec_jax.runs import checkpointing
from lstm_endec_jax.runs import layout
from lstm_endec_jax.runs import trained_model

WEIGHTS_DIR = pathlib.Path(__file__).parent / "shipped_weights"
INIT_FROM_PREFIX = "pretrained:"
DEFAULT_NAME = "base"
STORAGE_DTYPES = {"float16": np.float16, "float32": np.float32}
SEPARATOR = "/"


def available() -> list[str]:
  """Names of the shipped models."""
  return sorted(path.stem for path in WEIGHTS_DIR.glob("*.npz"))


def _paths(name: str) -> tuple[pathlib.Path, pathlib.Path]:
  if name not in available():
    raise layout.CheckpointNotFoundError(
        f"No pretrained model {name!r}; the package ships {available() or 'none'}."
    )
  return WEIGHTS_DIR / f"{name}.npz", WEIGHTS_DIR / f"{name}.json"


def description(name: str = DEFAULT_NAME) -> dict[str, Any]:
  """The JSON record of a shipped model: config, provenance, reference output."""
  return json.loads(_paths(name)[1].read_text())


def read_variables(name: str = DEFAULT_NAME) -> dict[str, Any]:
  """{"params", "batch_stats"} as float32 numpy arrays."""
  with np.load(_paths(name)[0], allow_pickle=False) as arrays:
    flat = {tuple(key.split(SEPARATOR)): np.asarray(arrays[key], np.float32) for key in arrays}
  return traverse_util.unflatten_dict(flat)


def load(name: str = DEFAULT_NAME) -> trained_model.TrainedModel:
  """A shipped model, as a loaded training run would be."""
  record = description(name)
  run_config = ml_collections.ConfigDict(record["run_config"])
  model = models.create_model(models.saved_model_config(run_config.model))
  variables = jax.device_put(read_variables(name), jax.local_devices()[0])
  return trained_model.TrainedModel(
      model=model,
      variables=variables,
      run_config=run_config,
      step_dir=_paths(name)[0],
      step=int(record["step"]),
  )


def name_of(init_from: str) -> str | None:
  """The model name of `config.init_from` = "pretrained:<name>", else None."""
  return (
      init_from.removeprefix(INIT_FROM_PREFIX) if init_from.startswith(INIT_FROM_PREFIX) else None
  )


def variables_like(
    name: str, like: dict[str, Any], sharding: jax.sharding.Sharding
) -> dict[str, Any]:
  """A shipped model's params and batch statistics shaped as `like` (fine-tuning's start)."""
  loaded = read_variables(name)
  expected = {k: np.shape(v) for k, v in traverse_util.flatten_dict(like).items()}
  found = {k: np.shape(v) for k, v in traverse_util.flatten_dict(loaded).items()}
  if expected != found:
    differing = sorted(
        SEPARATOR.join(k)
        for k in set(expected) ^ set(found)
        | {k for k in set(expected) & set(found) if expected[k] != found[k]}
    )
    raise checkpointing.CheckpointMismatchError(
        f"the pretrained model {name!r} does not fit this config's model; "
        f"differing arrays: {differing[:5]}"
    )
  return jax.tree.map(
      lambda x, target: jax.device_put(jnp.asarray(x, target.dtype), sharding), loaded, like
  )


def reference_input() -> np.ndarray:
  """A fixed (1, 256, 256, 3) uint8 input: a smooth gradient with a pasted noise square."""
  rows, cols = np.mgrid[0:256, 0:256]
  image = np.stack([rows, cols, (rows + cols) // 2], axis=-1).astype(np.uint8)
  noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
  image[96:160, 96:160] = noise
  return image[None]


def reference_output(model, variables) -> list[list[float]]:
  """P(manipulated) of `reference_input()` averaged over 16x16 blocks (a 16x16 grid)."""
  probabilities = np.asarray(models.probabilities(model, variables, reference_input())[0])
  return probabilities.reshape(16, 16, 16, 16).mean(axis=(1, 3)).round(6).tolist()


def export(
    loaded: trained_model.TrainedModel,
    name: str,
    *,
    storage_dtype: str,
    provenance: dict[str, Any],
    directory: pathlib.Path = WEIGHTS_DIR,
) -> pathlib.Path:
  """Writes `<name>.npz` and `<name>.json` for a loaded run; returns the npz path."""
  dtype = STORAGE_DTYPES[storage_dtype]
  flat = traverse_util.flatten_dict(jax.device_get(loaded.variables))
  arrays = {SEPARATOR.join(key): np.asarray(value, dtype) for key, value in flat.items()}
  directory.mkdir(parents=True, exist_ok=True)
  npz_path = directory / f"{name}.npz"
  np.savez_compressed(npz_path, **arrays)
  stored = traverse_util.unflatten_dict(
      {tuple(k.split(SEPARATOR)): np.asarray(v, np.float32) for k, v in arrays.items()}
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
      "reference_output": reference_output(loaded.model, stored),
  }
  (directory / f"{name}.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
  return npz_path
