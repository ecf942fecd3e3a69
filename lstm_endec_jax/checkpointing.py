"""Orbax checkpoints of the train state and the input iterator.

A checkpoint step holds two items: `state` (params, optimizer state, batch
statistics, step, rng, loss weights) and `train_iter` (grain's iterator state,
one JSON file per process), so a resumed run continues with the next unseen
batch and equals an uninterrupted one. Arrays are restored against abstract
targets carrying the *current* sharding, so a run can resume on another
device count.
"""

import errno
import os
import pathlib
import shutil
from typing import Any

from absl import logging
import grain.python as grain
import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

STATE = "state"
TRAIN_ITER = "train_iter"
CHECKPOINT_SUBDIR = "checkpoints"
QUARANTINE_SUBDIR = "checkpoints_unreadable"


class CheckpointWriteError(RuntimeError):
  """A checkpoint could not be written (full disk, unwritable directory)."""


def create_checkpoint_manager(
    workdir: str | os.PathLike[str],
    config: ml_collections.ConfigDict) -> ocp.CheckpointManager:
  """Keeps the last `keep_checkpoints` steps and the best by `best_metric`."""
  reverse = {"max": False, "min": True}[config.best_mode]
  metric = config.best_metric
  preservation = checkpoint_managers.AnyPreservationPolicy([
      checkpoint_managers.LatestN(n=config.keep_checkpoints),
      checkpoint_managers.BestN(
          get_metric_fn=lambda metrics: metrics[metric], reverse=reverse,
          n=1, keep_checkpoints_without_metrics=False),
  ])
  options = ocp.CheckpointManagerOptions(
      preservation_policy=preservation,
      best_fn=lambda metrics: metrics[metric],
      best_mode=config.best_mode,
      enable_async_checkpointing=config.async_checkpointing,
      cleanup_tmp_directories=True,
      create=True)
  return ocp.CheckpointManager(
      pathlib.Path(workdir).absolute() / CHECKPOINT_SUBDIR,
      options=options,
      item_handlers={STATE: ocp.StandardCheckpointHandler(),
                     TRAIN_ITER: grain.PyGrainCheckpointHandler()})


def _raise_write_error(error: OSError, directory: os.PathLike[str]) -> None:
  if error.errno == errno.ENOSPC:
    reason = "the disk is full"
  elif error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
    reason = "the directory is not writable"
  else:
    reason = str(error)
  raise CheckpointWriteError(
      f"Cannot write a checkpoint to {directory}: {reason} ({error}). Free "
      "space or choose another --workdir; the last complete checkpoint is "
      "kept.") from error


def check_free_space(directory: os.PathLike[str], needed_bytes: int) -> None:
  """Fails early, with a clear message, when a save cannot fit on disk."""
  free = shutil.disk_usage(directory).free
  if free < needed_bytes:
    raise CheckpointWriteError(
        f"Cannot write a checkpoint to {directory}: the disk is full "
        f"({free / 2**20:.1f} MiB free, about {needed_bytes / 2**20:.1f} MiB "
        "needed). Free space or choose another --workdir.")


def tree_nbytes(tree: Any) -> int:
  return sum(x.nbytes for x in jax.tree.leaves(tree))


def save(manager: ocp.CheckpointManager, step: int, state: Any,
         train_iter: Any, *, metrics: dict[str, float] | None = None) -> None:
  """Starts an (async) save of `state` and the iterator at `step`.

  The caller decides when to save; `metrics` (validation results) rank the
  step for keeping the best one.
  """
  check_free_space(manager.directory, 2 * tree_nbytes(state))
  try:
    manager.save(
        step,
        args=ocp.args.Composite(**{
            STATE: ocp.args.StandardSave(state),
            TRAIN_ITER: grain.PyGrainCheckpointSave(train_iter)}),
        metrics=metrics, force=True)
  except OSError as error:
    _raise_write_error(error, manager.directory)


def wait_until_finished(manager: ocp.CheckpointManager) -> None:
  """Waits for async saves; turns disk errors into a clear message."""
  try:
    manager.wait_until_finished()
  except OSError as error:
    _raise_write_error(error, manager.directory)


def abstract_like(tree: Any, sharding: jax.sharding.Sharding) -> Any:
  """Shape/dtype targets for restoring `tree` with `sharding` on every leaf."""
  return jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=sharding),
      tree)


def _quarantine(manager: ocp.CheckpointManager, step: int) -> None:
  """Moves an unreadable step aside so that later saves can reuse its step."""
  if jax.process_index() == 0:
    source = pathlib.Path(manager.directory) / str(step)
    target = pathlib.Path(manager.directory).parent / QUARANTINE_SUBDIR
    target.mkdir(exist_ok=True)
    shutil.move(source, target / str(step))
  manager.reload()


def restore_latest(manager: ocp.CheckpointManager, abstract_state: Any,
                   train_iter: Any) -> Any | None:
  """The newest readable checkpoint's state (restoring `train_iter` in place).

  An unreadable step (e.g. cut short by a crash during a synchronous write,
  or damaged on disk) is reported, moved to `checkpoints_unreadable/`, and
  the previous step is tried. Returns None when there is no checkpoint.
  """
  for step in sorted(manager.all_steps(), reverse=True):
    try:
      restored = manager.restore(
          step,
          args=ocp.args.Composite(**{
              STATE: ocp.args.StandardRestore(abstract_state),
              TRAIN_ITER: grain.PyGrainCheckpointRestore(train_iter)}))
    except Exception as error:  # pylint: disable=broad-except
      logging.warning(
          "Checkpoint step %d in %s is unreadable (%s: %s); moving it to %s "
          "and falling back to the previous checkpoint.", step,
          manager.directory, type(error).__name__, error, QUARANTINE_SUBDIR)
      _quarantine(manager, step)
      continue
    logging.info("Restored checkpoint step %d from %s.", step,
                 manager.directory)
    return restored[STATE]
  return None


class CheckpointNotFoundError(FileNotFoundError):
  """No checkpoint (or no run config) where the user pointed."""


class CheckpointMismatchError(ValueError):
  """A readable checkpoint whose arrays do not fit the model asked for."""


def locate(path: str | os.PathLike[str]
           ) -> tuple[pathlib.Path | None, pathlib.Path]:
  """(step directory or None, checkpoints directory) of a workdir, its
  checkpoints directory, or one step directory.

  The one place that knows a run's layout: fine-tuning and inference both
  resolve the paths users give them here.
  """
  path = pathlib.Path(path)
  if (path / STATE).is_dir():
    return path, path.parent
  if (path / CHECKPOINT_SUBDIR).is_dir():
    return None, path / CHECKPOINT_SUBDIR
  if path.name == CHECKPOINT_SUBDIR and path.is_dir():
    return None, path
  raise CheckpointNotFoundError(
      f"No checkpoint found at {path}: expected a training workdir (holding "
      f"'{CHECKPOINT_SUBDIR}/'), its '{CHECKPOINT_SUBDIR}/' directory, or one "
      f"step directory (holding '{STATE}/').")


def resolve_step_dir(path: str | os.PathLike[str]) -> pathlib.Path:
  """The `state` item of `path`: a step, or the latest step of a run."""
  step_dir, checkpoints = locate(path)
  if step_dir is None:
    steps = [p for p in checkpoints.iterdir()
             if p.name.isdigit() and (p / STATE).is_dir()]
    if not steps:
      raise CheckpointNotFoundError(f"{checkpoints} holds no checkpoint step.")
    step_dir = max(steps, key=lambda p: int(p.name))
  return step_dir / STATE


def read_state(path: str | os.PathLike[str],
               sharding: jax.sharding.Sharding) -> dict[str, Any]:
  """The saved train state at `path` as a dict of arrays placed with `sharding`.

  `path` is a workdir (its latest step), its checkpoint dir, or a step dir.
  """
  state_dir = resolve_step_dir(path)
  checkpointer = ocp.StandardCheckpointer()
  saved = checkpointer.metadata(state_dir).item_metadata.tree
  return checkpointer.restore(state_dir, abstract_like(saved, sharding))


def load_variables(path: str | os.PathLike[str], like: dict[str, Any],
                   sharding: jax.sharding.Sharding) -> dict[str, Any]:
  """Restores `params` and `batch_stats` of another run for fine-tuning.

  `like` holds this run's freshly initialised variables; the checkpoint must
  have the same tree and shapes (i.e. the same model variant), else the error
  names what differs.
  """
  state_dir = resolve_step_dir(path)
  saved = ocp.StandardCheckpointer().metadata(state_dir).item_metadata.tree
  names = tuple(like)
  missing = [name for name in names if name not in saved]
  if missing:
    raise CheckpointMismatchError(f"Checkpoint {state_dir} has no {missing}.")
  expected = jax.tree.map(_describe, {name: like[name] for name in names})
  found = jax.tree.map(_describe, {name: saved[name] for name in names})
  if expected != found:
    raise CheckpointMismatchError(
        f"Checkpoint {state_dir} does not fit this model (a different model "
        f"variant or size?): {_first_difference(expected, found)}.")
  # The whole saved tree is restored (optimizer state included, a few MB)
  # and only the wanted parts are kept.
  restored = read_state(state_dir.parent, sharding)
  logging.info("Initialised %s from %s.", ", ".join(names), state_dir)
  return {name: restored[name] for name in names}


def _describe(x: Any) -> str:
  return f"{tuple(x.shape)} {np.dtype(x.dtype).name}"


def _first_difference(expected: Any, found: Any) -> str:
  flat_expected = dict(jax.tree_util.tree_flatten_with_path(expected)[0])
  flat_found = dict(jax.tree_util.tree_flatten_with_path(found)[0])
  for key in sorted(set(flat_expected) | set(flat_found), key=str):
    want, got = flat_expected.get(key), flat_found.get(key)
    if want != got:
      return (f"{jax.tree_util.keystr(key)} is {got} in the checkpoint, "
              f"{want} in this model")
  return "tree structures differ"
