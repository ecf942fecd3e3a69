"""The one way to load trained weights: from a training run, or shipped with the package.

`load(source)` takes a run's workdir, its `checkpoints/` folder, one step folder, or
"pretrained:<name>" for the weights in `runs/shipped_weights/` (`shipped`). A run's `config.json`
names the model variant and its fields, and its Orbax checkpoints hold the weights (`layout` knows
where both are). Loading reads JSON and array files only, no pickle, so opening a checkpoint never
runs code from it. Evaluation, inference, fine-tuning (`like=`) and the export command all load
through it.
"""

import dataclasses
import os
import pathlib
from typing import Any

from absl import logging
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from lstm_endec_jax.model import models
from lstm_endec_jax.runs import checkpointing
from lstm_endec_jax.runs import layout
from lstm_endec_jax.runs import shipped
from lstm_endec_jax.runtime.errors import UserError


class CheckpointUnreadableError(layout.CheckpointNotFoundError):
  """The checkpoint the user asked for exists but cannot be read."""


class ModelVariantMismatchError(UserError, ValueError):
  """The checkpoint was trained as one model variant and is being used as another."""


@dataclasses.dataclass(frozen=True)
class TrainedModel:
  model: nn.Module
  variables: dict[str, Any]  # {"params", "batch_stats"} on the first device
  run_config: ml_collections.ConfigDict  # the training run's config.json
  step_dir: pathlib.Path
  step: int

  @property
  def variant(self) -> str:
    return self.run_config.model.variant


def check_variant(
    run_config: ml_collections.ConfigDict, expected: str, where: os.PathLike[str]
) -> None:
  found = run_config.model.variant
  if found != expected:
    raise ModelVariantMismatchError(
        f"Checkpoint {where} holds a {found!r} model, but the config asks for the {expected!r} "
        f"variant. Use a checkpoint trained with the {expected!r} config, or a config of the "
        f"{found!r} variant."
    )


def load(
    source: str | os.PathLike[str],
    *,
    step: str | int = "latest",
    model_config: ml_collections.ConfigDict | None = None,
    like: dict[str, Any] | None = None,
    sharding: jax.sharding.Sharding | None = None,
) -> TrainedModel:
  """Loads params and batch statistics, with the model they belong to.

  Args:
    source: "pretrained:<name>" (a shipped model), a training workdir, its `checkpoints/`
      directory, or one step directory.
    step: for a workdir, "latest", "best" (by the run's `best_metric`) or a step number.
    model_config: the model the caller expects (e.g. evaluate's `--config`); weights of another
      variant are refused, naming both. None: the model the weights were trained as.
    like: variables to match in tree, shapes and dtypes (fine-tuning's fresh ones); None: the
      model's own.
    sharding: where the variables go; None: the first local device.
  """
  sharding = sharding or jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  name = shipped.name_of(str(source))
  if name is not None:
    loaded = _load_shipped(name, like, sharding)
    if model_config is not None:
      check_variant(loaded.run_config, model_config.variant, loaded.step_dir)
    return loaded
  return _load_run(source, step, model_config, like, sharding)


def _load_shipped(
    name: str, like: dict[str, Any] | None, sharding: jax.sharding.Sharding
) -> TrainedModel:
  record = shipped.description(name)
  run_config = ml_collections.ConfigDict(record["run_config"])
  model = models.create_model(models.saved_model_config(run_config.model))
  stored = shipped.read_variables(name)
  like = like if like is not None else models.variable_shapes(model)
  difference = checkpointing.first_difference(like, stored)
  if difference:
    raise ModelVariantMismatchError(
        f"The pretrained model {name!r} does not fit this config's model: {difference}."
    )
  variables = jax.tree.map(
      lambda x, target: jax.device_put(jnp.asarray(x, target.dtype), sharding), stored, like
  )
  return TrainedModel(
      model=model,
      variables=variables,
      run_config=run_config,
      step_dir=shipped.weights_path(name),
      step=int(record["step"]),
  )


def _load_run(
    path: str | os.PathLike[str],
    step: str | int,
    model_config: ml_collections.ConfigDict | None,
    like: dict[str, Any] | None,
    sharding: jax.sharding.Sharding,
) -> TrainedModel:
  resolved = layout.resolve(path, step)
  run_config = layout.read_config(resolved.run)
  if model_config is not None:
    check_variant(run_config, model_config.variant, path)
  expected = "the --config" if model_config is not None else f"{resolved.run.config_path}"
  try:
    model_config = model_config or models.saved_model_config(run_config.model)
    model = models.create_model(model_config)
  except (KeyError, TypeError, ValueError) as error:
    raise layout.RunFileError(
        f"{resolved.run.config_path}: its model section is not a model this package builds "
        f"({error})"
    ) from None
  like = like if like is not None else models.variable_shapes(model)
  # "latest" falls back to older steps when the newest is unreadable, as a resumed training does;
  # a step the user named is that step or an error.
  while True:
    try:
      variables = checkpointing.load_variables(resolved.step_dir, like, sharding)
    except checkpointing.CheckpointMismatchError as error:
      raise ModelVariantMismatchError(
          f"The weights in {resolved.step_dir} do not fit the {model_config.variant!r} model "
          f"that {expected} describes: {error}"
      ) from error
    except Exception as error:  # pylint: disable=broad-except
      problem = checkpointing.describe_read_error(error)
      if not resolved.fallbacks:
        raise CheckpointUnreadableError(
            f"Checkpoint {resolved.step_dir} is unreadable ({problem}). Pick another step with "
            f"--step (steps in {resolved.run.checkpoints_dir}: {resolved.run.steps()})."
        ) from None
      logging.warning(
          "Checkpoint %s is unreadable (%s); using step %s instead.",
          resolved.step_dir,
          problem,
          resolved.fallbacks[0],
      )
      resolved = resolved.with_fallback()
      continue
    break
  logging.info("Loaded the %r model of %s.", run_config.model.variant, resolved.step_dir)
  return TrainedModel(
      model=model,
      variables=variables,
      run_config=run_config,
      step_dir=resolved.step_dir,
      step=resolved.step,
  )
