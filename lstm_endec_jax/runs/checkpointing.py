"""Orbax checkpoints of the train state and the input iterator.

A checkpoint step holds two items: `state` (params, optimizer state, batch
statistics, step, rng, loss weights) and `train_iter` (grain's iterator state,
one JSON file per process), so a resumed run continues with the next unseen
batch and equals an uninterrupted one. Arrays are restored against abstract
targets carrying the *current* sharding, so a run can resume on another
device count.

This module is Orbax only: it is given directories (a run's checkpoints folder,
one step folder) that `runs` has resolved from what the user typed.
"""

import contextlib
import json
import os
import pathlib
import re
import shutil
from collections.abc import Iterator
from typing import Any

from absl import logging
import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

from lstm_endec_jax.runtime import files
from lstm_endec_jax.runtime.errors import UserError

STATE = "state"
TRAIN_ITER = "train_iter"
METRICS_FILE = pathlib.Path("metrics") / "metrics"  # where Orbax keeps a step's saved metrics


class CheckpointWriteError(UserError, RuntimeError):
  """A checkpoint could not be written (full disk, unwritable directory)."""


def create_checkpoint_manager(
    directory: os.PathLike[str], *, keep: int, best_metric: str, best_mode: str, asynchronous: bool
) -> ocp.CheckpointManager:
  """Keeps the last `keep` steps and the best by `best_metric` in `directory`."""
  reverse = {"max": False, "min": True}[best_mode]
  preservation = checkpoint_managers.AnyPreservationPolicy(
      [
          checkpoint_managers.LatestN(n=keep),
          checkpoint_managers.BestN(
              get_metric_fn=lambda metrics: metrics[best_metric],
              reverse=reverse,
              n=1,
              keep_checkpoints_without_metrics=False,
          ),
      ]
  )
  options = ocp.CheckpointManagerOptions(
      preservation_policy=preservation,
      best_fn=lambda metrics: metrics[best_metric],
      best_mode=best_mode,
      enable_async_checkpointing=asynchronous,
      cleanup_tmp_directories=True,
      create=True,
  )
  return ocp.CheckpointManager(
      pathlib.Path(directory).absolute(),
      options=options,
      item_handlers={
          STATE: ocp.StandardCheckpointHandler(),
          TRAIN_ITER: _grain().PyGrainCheckpointHandler(),
      },
  )


def _grain():
  """grain, imported by the training side only (saving and restoring the input iterator), so
  that loading weights for inference does not bring in the data stack."""
  import grain.python as grain  # pylint: disable=g-import-not-at-top

  return grain


def is_step_dir(path: pathlib.Path) -> bool:
  """A finished checkpoint step: a folder named by its step number holding the state item
  (Orbax writes a step under a temporary name and renames it when complete)."""
  return path.name.isdigit() and (path / STATE).is_dir()


def finished_steps(directory: pathlib.Path) -> list[int]:
  """Step numbers of the finished checkpoints in `directory`, ascending (one listing; no Orbax
  manager is opened)."""
  if not directory.is_dir():
    return []
  return sorted(int(p.name) for p in directory.iterdir() if is_step_dir(p))


def saved_metrics(step_dir: pathlib.Path) -> dict[str, Any] | None:
  """The metrics saved with a step; None when it has none or its file is unreadable (reported,
  naming the file)."""
  path = step_dir / METRICS_FILE
  if not path.exists():
    return None
  try:
    metrics = json.loads(path.read_text())
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
    logging.warning("Checkpoint metrics file %s is unreadable (%s).", path, error)
    return None
  return metrics if isinstance(metrics, dict) else None


def best_step(directory: pathlib.Path, metric: str, mode: str) -> int | None:
  """The step whose saved metrics rank best by `metric` ("max" or "min"); None if none has it.
  Read from the step folders, so one damaged metrics file costs only its own step."""
  scored = []
  for step in finished_steps(directory):
    value = (saved_metrics(directory / str(step)) or {}).get(metric)
    if isinstance(value, (int, float)) and np.isfinite(value):
      scored.append((value if mode == "max" else -value, step))
  return max(scored)[1] if scored else None


def _move_aside(step_dir: pathlib.Path, quarantine_dir: pathlib.Path) -> None:
  """Moves one step folder into `quarantine_dir`, so a later save can reuse its step number."""
  quarantine_dir.mkdir(exist_ok=True)
  shutil.move(step_dir, quarantine_dir / step_dir.name)


def set_aside_damaged_metrics(directory: pathlib.Path, quarantine_dir: pathlib.Path) -> None:
  """Moves to `quarantine_dir` every step whose metrics file exists but is not JSON: Orbax reads
  them all when a manager opens, and one such file would stop the run from resuming at all."""
  if jax.process_index() != 0:
    return
  for step in finished_steps(directory):
    path = directory / str(step) / METRICS_FILE
    if path.exists() and saved_metrics(directory / str(step)) is None:
      logging.warning(
          "Checkpoint step %d has a damaged metrics file %s; moving the step to %s.",
          step,
          path,
          quarantine_dir,
      )
      _move_aside(directory / str(step), quarantine_dir)


@contextlib.contextmanager
def _write_errors_reported(directory: os.PathLike[str]) -> Iterator[None]:
  """Turns a failed checkpoint write (an OSError, or TensorStore's error that quotes one, raised
  by a save or by the wait for a save running in the background) into one
  `CheckpointWriteError`; any other error passes unchanged."""
  try:
    yield
  except Exception as error:  # pylint: disable=broad-except
    reason = files.write_failure(error)
    if reason is None:
      raise
    quoted_files = re.findall(r'"([^"]+)"', str(error))  # TensorStore names the file it wrote
    where = getattr(error, "filename", None) or (quoted_files[-1] if quoted_files else None)
    raise CheckpointWriteError(
        f"Cannot write a checkpoint to {directory}: {reason}"
        + (f" (writing {where})" if where else "")
        + ". Free space or choose another --workdir, then run the same command again; the last "
        "complete checkpoint is kept."
    ) from None


def check_free_space(directory: os.PathLike[str], needed_bytes: int) -> None:
  """Fails early, with a clear message, when a save cannot fit on disk."""
  free = shutil.disk_usage(directory).free
  if free < needed_bytes:
    raise CheckpointWriteError(
        f"Cannot write a checkpoint to {directory}: the disk is full "
        f"({free / 2**20:.1f} MiB free, about {needed_bytes / 2**20:.1f} MiB needed). Free space "
        "or choose another --workdir, then run the same command again; the last complete "
        "checkpoint is kept."
    )


def tree_nbytes(tree: Any) -> int:
  return sum(x.nbytes for x in jax.tree.leaves(tree))


def save(
    manager: ocp.CheckpointManager,
    step: int,
    state: Any,
    train_iter: Any,
    *,
    metrics: dict[str, float] | None = None,
) -> None:
  """Starts an (async) save of `state` and the iterator at `step`.

  The caller decides when to save; `metrics` (validation results) rank the
  step for keeping the best one.
  """
  check_free_space(manager.directory, 2 * tree_nbytes(state))
  with _write_errors_reported(manager.directory):
    manager.save(
        step,
        args=ocp.args.Composite(
            **{
                STATE: ocp.args.StandardSave(state),
                TRAIN_ITER: _grain().PyGrainCheckpointSave(train_iter),
            }
        ),
        metrics=metrics,
        force=True,
    )


def wait_until_finished(manager: ocp.CheckpointManager) -> None:
  """Waits for async saves; a failed one is a `CheckpointWriteError`."""
  with _write_errors_reported(manager.directory):
    manager.wait_until_finished()


def close(manager: ocp.CheckpointManager, *, failing: bool = False) -> None:
  """Waits for async saves and closes `manager`.

  `failing`: the run is already stopping on an error, the one to report; a save that failed in
  the background as well is then only logged (at INFO: `--verbosity=0` shows it).
  """
  try:
    with _write_errors_reported(manager.directory):
      manager.close()
  except Exception as error:  # pylint: disable=broad-except
    if not failing:
      raise
    logging.info("%s", error)


def abstract_like(tree: Any, sharding: jax.sharding.Sharding) -> Any:
  """Shape/dtype targets for restoring `tree` with `sharding` on every leaf."""
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=sharding), tree)


def _quarantine(manager: ocp.CheckpointManager, step: int, quarantine_dir: pathlib.Path) -> None:
  """Moves an unreadable step aside so that later saves can reuse its step."""
  if jax.process_index() == 0:
    _move_aside(pathlib.Path(manager.directory) / str(step), quarantine_dir)
  manager.reload()


def describe_read_error(error: BaseException) -> str:
  """One line for a failed checkpoint read, naming the file where the error says it.

  Orbax wraps TensorStore's error (which names the file and what is wrong with it) in one that
  prints TensorStore's whole spec; the innermost cause is the line a user needs.
  """
  while error.__cause__ is not None:
    error = error.__cause__
  text = str(error).strip()
  return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


def restore_latest(
    manager: ocp.CheckpointManager,
    abstract_state: Any,
    train_iter: Any,
    *,
    quarantine_dir: pathlib.Path,
) -> Any | None:
  """The newest readable checkpoint's state (restoring `train_iter` in place).

  An unreadable step (e.g. cut short by a crash during a synchronous write,
  or damaged on disk) is reported, moved to `quarantine_dir`, and the previous
  step is tried. Returns None when there is no checkpoint.
  """
  for step in sorted(manager.all_steps(), reverse=True):
    try:
      restored = manager.restore(
          step,
          args=ocp.args.Composite(
              **{
                  STATE: ocp.args.StandardRestore(abstract_state),
                  TRAIN_ITER: _grain().PyGrainCheckpointRestore(train_iter),
              }
          ),
      )
    except Exception as error:  # pylint: disable=broad-except
      logging.warning(
          "Checkpoint step %d in %s is unreadable (%s); moving it to %s "
          "and falling back to the previous checkpoint.",
          step,
          manager.directory,
          describe_read_error(error),
          quarantine_dir,
      )
      _quarantine(manager, step, quarantine_dir)
      continue
    logging.info("Restored checkpoint step %d from %s.", step, manager.directory)
    return restored[STATE]
  return None


class CheckpointMismatchError(UserError, ValueError):
  """A readable checkpoint whose arrays do not fit the model asked for."""


def read_state(step_dir: pathlib.Path, sharding: jax.sharding.Sharding) -> dict[str, Any]:
  """The saved train state of one step as a dict of arrays placed with `sharding`."""
  checkpointer = ocp.StandardCheckpointer()
  state_dir = pathlib.Path(step_dir).absolute() / STATE
  saved = checkpointer.metadata(state_dir).item_metadata.tree
  return checkpointer.restore(state_dir, abstract_like(saved, sharding))


def load_variables(
    step_dir: pathlib.Path, like: dict[str, Any], sharding: jax.sharding.Sharding
) -> dict[str, Any]:
  """Restores `params` and `batch_stats` of one step (fine-tuning, inference).

  `like` holds freshly initialised variables; the checkpoint must have the same
  tree and shapes (i.e. the same model variant), else the error names what
  differs.
  """
  state_dir = pathlib.Path(step_dir).absolute() / STATE
  saved = ocp.StandardCheckpointer().metadata(state_dir).item_metadata.tree
  names = tuple(like)
  missing = [name for name in names if name not in saved]
  if missing:
    raise CheckpointMismatchError(f"Checkpoint {state_dir} has no {missing}.")
  difference = first_difference({name: like[name] for name in names}, saved)
  if difference:
    raise CheckpointMismatchError(
        f"Checkpoint {state_dir} does not fit this model (a different model "
        f"variant or size?): {difference}."
    )
  # The whole saved tree is restored (optimizer state included, a few MB)
  # and only the wanted parts are kept.
  restored = read_state(step_dir, sharding)
  logging.info("Initialised %s from %s.", ", ".join(names), state_dir)
  return {name: restored[name] for name in names}


def _describe(x: Any) -> str:
  return f"{tuple(x.shape)} {np.dtype(x.dtype).name}"


def first_difference(like: Any, found: Any) -> str | None:
  """The first array whose shape or dtype differs between the variables a model wants (`like`)
  and those found in stored weights (only `like`'s top-level entries are compared); None when
  they fit."""
  expected = jax.tree.map(_describe, like)
  found = jax.tree.map(_describe, {name: found[name] for name in like if name in found})
  if expected == found:
    return None
  flat_expected = dict(jax.tree_util.tree_flatten_with_path(expected)[0])
  flat_found = dict(jax.tree_util.tree_flatten_with_path(found)[0])
  for key in sorted(set(flat_expected) | set(flat_found), key=str):
    want, got = flat_expected.get(key), flat_found.get(key)
    if want != got:
      return f"{jax.tree_util.keystr(key)} is {got} in the stored weights, {want} in this model"
  return "tree structures differ"
