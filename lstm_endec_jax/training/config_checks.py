"""Checks a whole training config once, before any compile or data work.

Every mistake is reported in one line that names the field (`config.<field>`), the value and what
is allowed, so that a bad command-line override fails in a second instead of as a traceback after
minutes of compiling. `validate` is the one place these rules live; modules that read a field
trust it.
"""

import importlib
import math
import pathlib
import pkgutil
from collections.abc import Callable
from typing import Any

import ml_collections

from lstm_endec_jax.model import layers
from lstm_endec_jax.model import models
from lstm_endec_jax.model import patch_order
from lstm_endec_jax.runs import shipped
from lstm_endec_jax.runtime.errors import ConfigError
from lstm_endec_jax.training import losses
from lstm_endec_jax.training import optimizers


def project_datasets() -> dict[str, tuple[str, ...]]:
  """This project's TFDS builders and their configs, by builder name (from `tfds_builders/`)."""
  import tfds_builders  # pylint: disable=g-import-not-at-top

  datasets = {}
  for module in pkgutil.iter_modules(tfds_builders.__path__):
    if module.ispkg:
      builder = importlib.import_module(
          f"tfds_builders.{module.name}.{module.name}_dataset_builder"
      ).Builder
      datasets[builder.name] = tuple(config.name for config in builder.BUILDER_CONFIGS or ())
  return datasets


def check_dataset_name(name: str, field: str) -> None:
  """`name` is `builder` or `builder/config` of one of this project's builders."""
  datasets = project_datasets()
  builder, _, builder_config = name.partition("/")
  known = ", ".join(f"{b} ({', '.join(c)})" if c else b for b, c in sorted(datasets.items()))
  if builder not in datasets:
    raise ConfigError(f"{field}={name!r} is not a dataset of this project; known: {known}")
  configs = datasets[builder]
  if builder_config and builder_config not in configs:
    raise ConfigError(
        f"{field}={name!r}: {builder} has no config {builder_config!r}; "
        f"its configs are {', '.join(configs) or 'none'}"
    )


def _require(condition: bool, field: str, value: Any, allowed: str) -> None:
  if not condition:
    raise ConfigError(f"config.{field}={value!r} is not allowed: {allowed}")


def _is_int(value: Any) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _one_of(choices: tuple[str, ...]) -> tuple[Callable[[Any], bool], str]:
  return (lambda value: value in choices), f"one of {', '.join(choices)}"


POSITIVE_INT = (lambda v: _is_int(v) and v > 0, "a whole number > 0")
NON_NEGATIVE_INT = (lambda v: _is_int(v) and v >= 0, "a whole number >= 0")
BATCH_LIMIT = (lambda v: _is_int(v) and (v == -1 or v > 0), "-1 (the whole split) or a number > 0")
NON_NEGATIVE_NUMBER = (lambda v: _is_number(v) and v >= 0, "a finite number >= 0")

RULES = {
    "num_train_steps": (
        NON_NEGATIVE_INT[0],
        "a whole number >= 0 (0 = no training: evaluate the "
        "workdir's checkpoint, or init_from's, on the test "
        "split)",
    ),
    "log_every_steps": POSITIVE_INT,
    "eval_every_steps": POSITIVE_INT,
    "checkpoint_every_steps": POSITIVE_INT,
    "keep_checkpoints": POSITIVE_INT,
    "batch_size": POSITIVE_INT,
    "eval_batch_size": POSITIVE_INT,
    "class_weight_batches": POSITIVE_INT,
    "max_consecutive_skipped_steps": POSITIVE_INT,
    "num_devices": NON_NEGATIVE_INT,
    "warmup_steps": NON_NEGATIVE_INT,
    "num_sample_images": NON_NEGATIVE_INT,
    "num_eval_batches": BATCH_LIMIT,
    "num_test_batches": BATCH_LIMIT,
    "learning_rate": NON_NEGATIVE_NUMBER,
    "grad_clip_norm": NON_NEGATIVE_NUMBER,
    "loss": _one_of(losses.LOSSES),
    "schedule": _one_of(optimizers.SCHEDULES),
    "best_mode": _one_of(("max", "min")),
    "model.variant": _one_of(models.VARIANTS),
    "model.dtype": _one_of(tuple(models.DTYPES)),
    "model.upsampling": _one_of(layers.UPSAMPLING_KINDS),
    "model.projection": _one_of(layers.PROJECTION_KINDS),
    "model.decoder_kind": _one_of(models.DECODER_KINDS),
    "model.patch_order": _one_of(patch_order.PATCH_ORDERS),
    "dataset.image_size": POSITIVE_INT,
    "dataset.crop_size": POSITIVE_INT,
    "dataset.worker_count": NON_NEGATIVE_INT,
}


def _lookup(config: ml_collections.ConfigDict, dotted: str) -> Any:
  value = config
  for part in dotted.split("."):
    value = value[part]
  return value


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises `ConfigError` for the first field the run cannot use.

  What depends on the machine (the device count the batches must divide) is checked where the
  mesh is made, `parallel.create_mesh` and `parallel.check_batch_size`, with the same error type.
  """
  for field, (is_allowed, allowed) in RULES.items():
    try:
      value = _lookup(config, field)
    except (KeyError, AttributeError):
      raise ConfigError(f"config.{field} is missing") from None
    _require(is_allowed(value), field, value, allowed)
  for field in ("validation_split", "test_split", "dataset.train_split"):
    value = _lookup(config, field)
    _require(isinstance(value, str) and bool(value), field, value, "a split name, e.g. 'test'")
  check_dataset_name(config.dataset.name, "config.dataset.name")
  from lstm_endec_jax.data import input_pipeline  # pylint: disable=g-import-not-at-top

  try:
    mixture = input_pipeline.training_mixture(config.dataset)
  except ValueError as error:
    raise ConfigError(f"config.dataset.mixture={config.dataset.mixture!r}: {error}") from None
  for name, _ in mixture:
    check_dataset_name(name, "config.dataset.mixture")
  shipped_name = shipped.name_of(config.init_from)
  if shipped_name is not None:
    _require(
        shipped_name in shipped.available(),
        "init_from",
        config.init_from,
        f"shipped models: {', '.join(shipped.available()) or 'none'}",
    )
  elif config.init_from:
    _require(
        pathlib.Path(config.init_from).exists(),
        "init_from",
        config.init_from,
        "an existing workdir, checkpoints folder or checkpoint step folder, or "
        f"{shipped.INIT_FROM_PREFIX}<name> of a shipped model",
    )
