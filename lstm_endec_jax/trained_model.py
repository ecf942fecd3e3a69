"""A trained model from a training run's directory, for inference and evaluation.

`train.train_and_evaluate` leaves in its workdir `config.json` (the run's full config, which names
the model variant and its fields) and Orbax checkpoints `checkpoints/<step>/state/`. Loading reads
both: JSON and array files only, no pickle, so opening a checkpoint never runs code from it.
"""
import dataclasses
import json
import os
import pathlib
from typing import Any

from absl import logging
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import orbax.checkpoint as ocp

from lstm_endec_jax import checkpointing
from lstm_endec_jax import models

CONFIG_FILE = "config.json"
IMAGE_SIZE = 256


CheckpointNotFoundError = checkpointing.CheckpointNotFoundError


class CheckpointUnreadableError(CheckpointNotFoundError):
  """The checkpoint the user asked for exists but cannot be read."""


class ModelVariantMismatchError(ValueError):
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


def read_run_config(workdir: pathlib.Path) -> ml_collections.ConfigDict:
  """The training run's config, which says which model the checkpoint holds."""
  path = workdir / CONFIG_FILE
  try:
    return ml_collections.ConfigDict(json.loads(path.read_text()))
  except FileNotFoundError:
    raise CheckpointNotFoundError(
        f"{path} is missing: the training run writes it beside "
        f"'{checkpointing.CHECKPOINT_SUBDIR}/' and it names the model variant; keep the step "
        "directory inside its workdir.") from None
  except json.JSONDecodeError as error:
    raise ValueError(f"{path} is not valid JSON: {error}") from error


def parse_step(text: str) -> str | int:
  """A command line's --step: "latest", "best" or a step number."""
  if text in ("latest", "best"):
    return text
  try:
    return int(text)
  except ValueError:
    raise ValueError(f"--step must be 'latest', 'best' or a step number, got {text!r}") from None


def select_step(checkpoints: pathlib.Path, run_config: ml_collections.ConfigDict,
                step: str | int) -> int:
  """The latest step, the best one by the run's `best_metric`, or a given step number."""
  manager = ocp.CheckpointManager(
      checkpoints.absolute(), options=ocp.CheckpointManagerOptions(
          read_only=True, create=False, save_interval_steps=0,
          best_fn=lambda metrics: metrics[run_config.best_metric],
          best_mode=run_config.best_mode))
  steps = manager.all_steps()
  if not steps:
    raise CheckpointNotFoundError(f"{checkpoints} holds no checkpoint step.")
  if step == "latest":
    return manager.latest_step()
  if step == "best":
    best = manager.best_step()
    if best is None:
      raise CheckpointNotFoundError(
          f"No step in {checkpoints} has the metric {run_config.best_metric!r} (saved at "
          f"evaluations); steps there: {steps}.")
    return best
  if int(step) not in steps:
    raise CheckpointNotFoundError(f"{checkpoints} has no step {step}; steps there: {steps}.")
  return int(step)


def saved_model_config(run_config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The run's model section over its variant's defaults (fields added since the run keep them)."""
  model_config = models.model_config(run_config.model.variant)
  model_config.update(run_config.model.to_dict())
  return model_config


def check_variant(run_config: ml_collections.ConfigDict, expected: str, where: os.PathLike[str]
                  ) -> None:
  found = run_config.model.variant
  if found != expected:
    raise ModelVariantMismatchError(
        f"Checkpoint {where} holds a {found!r} model, but the config asks for the {expected!r} "
        f"variant. Use a checkpoint trained with the {expected!r} config, or a config of the "
        f"{found!r} variant.")


def load(path: str | os.PathLike[str], *, step: str | int = "latest",
         model_config: ml_collections.ConfigDict | None = None) -> TrainedModel:
  """Loads params and batch statistics of a run for inference.

  Args:
    path: a training workdir, its `checkpoints/` directory, or one step directory.
    step: for a workdir, "latest", "best" (by the run's `best_metric`) or a step number.
    model_config: the model the caller expects (e.g. evaluate's `--config`); a checkpoint of
      another variant is refused, naming both. None: the model the run trained.
  """
  path = pathlib.Path(path)
  step_dir, checkpoints = checkpointing.locate(path)
  workdir = checkpoints.parent
  run_config = read_run_config(workdir)
  if model_config is not None:
    check_variant(run_config, model_config.variant, path)
  # "latest" falls back to older steps when the newest is unreadable, as a resumed training does;
  # a step the user named is that step or an error.
  if step_dir is not None:
    candidates = [step_dir]
  elif step == "latest":
    candidates = [checkpoints / str(s) for s in sorted(
        _step_numbers(checkpoints), reverse=True)]
  else:
    candidates = [checkpoints / str(select_step(checkpoints, run_config, step))]
  expected = "the --config" if model_config is not None else f"{workdir / CONFIG_FILE}"
  model_config = model_config or saved_model_config(run_config)
  model = models.create_model(model_config)
  shapes = jax.eval_shape(lambda: model.init(
      jax.random.key(0), jnp.zeros((1, IMAGE_SIZE, IMAGE_SIZE, 3), jnp.uint8), train=False))
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  for index, step_dir in enumerate(candidates):
    try:
      variables = checkpointing.load_variables(step_dir, dict(shapes), device)
    except checkpointing.CheckpointMismatchError as error:
      raise ModelVariantMismatchError(
          f"The weights in {step_dir} do not fit the {model_config.variant!r} model that "
          f"{expected} describes: {error}") from error
    except Exception as error:  # pylint: disable=broad-except
      problem = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
      if index + 1 == len(candidates):
        raise CheckpointUnreadableError(
            f"Checkpoint {step_dir} is unreadable ({problem}). Pick another step with --step "
            f"(steps in {checkpoints}: {sorted(_step_numbers(checkpoints))})."
        ) from None
      logging.warning("Checkpoint %s is unreadable (%s); using step %s instead.", step_dir,
                      problem, candidates[index + 1].name)
      continue
    break
  logging.info("Loaded the %r model of %s.", run_config.model.variant, step_dir)
  return TrainedModel(model=model, variables=variables, run_config=run_config, step_dir=step_dir,
                      step=int(step_dir.name))


def _step_numbers(checkpoints: pathlib.Path) -> list[int]:
  """The step folders of a checkpoints directory (one listing; no Orbax manager opened)."""
  steps = [int(p.name) for p in checkpoints.iterdir() if p.name.isdigit()]
  if not steps:
    raise CheckpointNotFoundError(f"{checkpoints} holds no checkpoint step.")
  return steps
