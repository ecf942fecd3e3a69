r"""Weights that ship inside the package: LSTM-EnDec-Base trained by this project.

  localizer = Localizer.from_pretrained()                    # "base"; weights.load("pretrained:base")
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
import numpy as np

from lstm_endec_jax.model import models
from lstm_endec_jax.runs import layout

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


def weights_path(name: str) -> pathlib.Path:
  """The `.npz` file of a shipped model."""
  return _paths(name)[0]


def description(name: str = DEFAULT_NAME) -> dict[str, Any]:
  """The JSON record of a shipped model: config, provenance, reference output."""
  return json.loads(_paths(name)[1].read_text())


def read_variables(name: str = DEFAULT_NAME) -> dict[str, Any]:
  """{"params", "batch_stats"} as float32 numpy arrays."""
  with np.load(_paths(name)[0], allow_pickle=False) as arrays:
    flat = {tuple(key.split(SEPARATOR)): np.asarray(arrays[key], np.float32) for key in arrays}
  return traverse_util.unflatten_dict(flat)


def name_of(init_from: str) -> str | None:
  """The model name of `config.init_from` = "pretrained:<name>", else None."""
  return (
      init_from.removeprefix(INIT_FROM_PREFIX) if init_from.startswith(INIT_FROM_PREFIX) else None
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
