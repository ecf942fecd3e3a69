"""A training run's working directory: every file name in it, and the paths users give for it.

`train.train_and_evaluate(config, workdir)` lays a run out as

  config.json                    the run's full config (names the model variant and its fields)
  class_weights.json             the loss weights measured when the run started
  metrics.jsonl                  one record per logged step and per evaluation
  metrics_previous_run.jsonl     an earlier run's records, when a run had to restart from scratch
  tensorboard/                   TensorBoard event files
  checkpoints/<step>/            Orbax checkpoint steps (see `checkpointing`)
  checkpoints_unreadable/<step>/ steps that failed to restore, moved aside
  <validation split>/            roc.png and samples_step_<N>.png of every validation
  eval.json, roc.png, samples_step_<N>.png    the final test evaluation
  evaluate/<dataset>_<split>_step<N>/         the evaluate command's results: eval.json, roc.png,
                                 samples.png, and robustness.{json,md,png} with --robustness
  wall_time.json                 a study's record of the run's training time (experiments/)
  run.lock                       held by the one training process that uses the workdir

and every other command (evaluate, predict, the weight export, experiments) reaches it through
this module. A user may point at a run three ways (its workdir, its `checkpoints/` folder, or one
step folder) plus a `--step`; `resolve` turns that into one `ResolvedStep`, once.

"latest" has one meaning everywhere: the largest step number in `checkpoints/` that holds a
finished checkpoint.
"""

import contextlib
import dataclasses
import json
import math
import os
import pathlib
import socket
import time
from collections.abc import Iterator, Mapping
from typing import Any

from absl import logging
import jax
import ml_collections

from lstm_endec_jax.runs import checkpointing
from lstm_endec_jax.runtime import files
from lstm_endec_jax.runtime.errors import ConfigError
from lstm_endec_jax.runtime.errors import UserError

CONFIG_FILE = "config.json"
CLASS_WEIGHTS_FILE = "class_weights.json"
METRICS_FILE = "metrics.jsonl"
PREVIOUS_METRICS_FILE = "metrics_previous_run.jsonl"
EVAL_FILE = "eval.json"
ROC_FILE = "roc.png"
SAMPLES_FILE = "samples.png"
ROBUSTNESS_JSON, ROBUSTNESS_TABLE, ROBUSTNESS_PLOT = (
    "robustness.json",
    "robustness.md",
    "robustness.png",
)
TENSORBOARD_DIR = "tensorboard"
CHECKPOINTS_DIR = "checkpoints"
QUARANTINE_DIR = "checkpoints_unreadable"
EVALUATE_DIR = "evaluate"
WALL_TIME_FILE = "wall_time.json"
LOCK_FILE = "run.lock"
# Config fields that decide the arrays a checkpoint holds: a resume with other values would not
# restore, so it is refused instead of treating the checkpoints as corrupt. Model fields that only
# change how the same arrays are used may change on resume.
STRUCTURE_FIELDS = ("model.", "dataset.image_size")
RESUMABLE_MODEL_FIELDS = ("model.dtype", "model.lstm_dropout_rate", "model.batch_norm_momentum")
STEP_CHOICES = ("latest", "best")


class WorkdirError(UserError, OSError):
  """A directory for results cannot be created or written to."""


class CheckpointNotFoundError(UserError, FileNotFoundError):
  """No checkpoint (or no run config) where the user pointed."""


class RunFileError(UserError, ValueError):
  """A file of a run that cannot be read (e.g. a config.json edited by hand)."""


@dataclasses.dataclass(frozen=True)
class Run:
  """The paths of one training run's working directory."""

  workdir: pathlib.Path

  @property
  def lock_path(self) -> pathlib.Path:
    return self.workdir / LOCK_FILE

  @property
  def config_path(self) -> pathlib.Path:
    return self.workdir / CONFIG_FILE

  @property
  def class_weights_path(self) -> pathlib.Path:
    return self.workdir / CLASS_WEIGHTS_FILE

  @property
  def metrics_path(self) -> pathlib.Path:
    return self.workdir / METRICS_FILE

  @property
  def previous_metrics_path(self) -> pathlib.Path:
    return self.workdir / PREVIOUS_METRICS_FILE

  @property
  def eval_path(self) -> pathlib.Path:
    return self.workdir / EVAL_FILE

  @property
  def wall_time_path(self) -> pathlib.Path:
    return self.workdir / WALL_TIME_FILE

  @property
  def tensorboard_dir(self) -> pathlib.Path:
    return self.workdir / TENSORBOARD_DIR

  @property
  def checkpoints_dir(self) -> pathlib.Path:
    return self.workdir / CHECKPOINTS_DIR

  @property
  def quarantine_dir(self) -> pathlib.Path:
    return self.workdir / QUARANTINE_DIR

  def split_dir(self, split: str) -> pathlib.Path:
    """Where the validation split's ROC curves and sample grids go."""
    return self.workdir / split

  def evaluate_dir(self, name: str) -> pathlib.Path:
    """The default output folder of one evaluate command run."""
    return self.workdir / EVALUATE_DIR / name

  def step_dir(self, step: int) -> pathlib.Path:
    return self.checkpoints_dir / str(step)

  def steps(self) -> list[int]:
    """Step numbers of the finished checkpoints, ascending."""
    return checkpointing.finished_steps(self.checkpoints_dir)

  def summary(self) -> str:
    """The last line of a finished run: where its results are."""
    return (
        f"Done. Test metrics: {self.eval_path}; ROC and heat maps: {self.workdir}/roc.png, "
        f"{self.workdir}/<validation split>/; checkpoints: {self.checkpoints_dir}; "
        f"curves: tensorboard --logdir {self.tensorboard_dir}"
    )


def folder_name(text: str) -> str:
  """`text` as one folder name: characters other than letters, digits, '-', '_' and '.' (a
  dataset's '/', a split's '+' or '[:100]') become '_'."""
  return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def samples_file(step: int) -> str:
  """The sample grid of an evaluation during training, named by its step."""
  return f"samples_step_{step:07d}.png"


def prepare_directory(path: str | os.PathLike[str], flag: str = "--workdir") -> pathlib.Path:
  """Creates `path` and proves it writable, failing with a clear message naming `flag`."""
  path = pathlib.Path(path).absolute()
  probe = path / f".write_test_{os.getpid()}"
  try:
    path.mkdir(parents=True, exist_ok=True)
    probe.write_text("ok")
  except OSError as error:
    raise WorkdirError(
        f"Cannot write to {path}: {error.strerror or error}. "
        f"Choose a writable {flag} (and check the disk is not full)."
    ) from error
  finally:
    with contextlib.suppress(OSError):  # e.g. a full disk left the probe empty behind
      probe.unlink()
  return path


def prepare(workdir: str | os.PathLike[str]) -> Run:
  """The run in `workdir`, created and proven writable."""
  return Run(prepare_directory(workdir))


def json_safe(value: Any) -> Any:
  """NaN and Inf (an undefined metric) become null, in nested dicts and lists too: the one policy
  of every JSON file the project writes, so that each is strict JSON."""
  if isinstance(value, float) and not math.isfinite(value):
    return None
  if isinstance(value, Mapping):
    return {key: json_safe(item) for key, item in value.items()}
  if isinstance(value, (list, tuple)):
    return [json_safe(item) for item in value]
  return value


def write_text_atomically(path: str | os.PathLike[str], text: str) -> None:
  """Replaces `path` by `text` in one rename, so a crash or a full disk leaves the old file or
  the new one, never a torn one (a temporary file is removed when the write fails)."""
  files.replace_atomically(path, lambda temporary: temporary.write_text(text))


def write_json(path: str | os.PathLike[str], value: Any) -> None:
  """Writes `value` as strict, indented JSON (process 0 only), atomically."""
  if jax.process_index() == 0:
    text = json.dumps(json_safe(value), indent=2, allow_nan=False) + "\n"
    write_text_atomically(path, text)


def _flat_fields(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
  flat = {}
  for key, value in config.items():
    if isinstance(value, Mapping):
      flat.update(_flat_fields(value, f"{prefix}{key}."))
    else:
      flat[f"{prefix}{key}"] = value
  return flat


def check_same_structure(run: Run, config: ml_collections.ConfigDict) -> None:
  """Refuses to resume `run` with a config whose model differs from the one its checkpoints
  hold, naming the fields, and changes nothing in the workdir."""
  if not run.config_path.exists():
    return
  try:
    stored = _flat_fields(read_config(run).to_dict())
  except (RunFileError, UnicodeDecodeError):
    logging.warning(
        "%s is not valid JSON; it is rewritten from this run's config.", run.config_path
    )
    return
  wanted = _flat_fields(json.loads(config.to_json_best_effort()))
  differing = sorted(
      name
      for name in set(stored) & set(wanted)  # a field older runs lack is not compared
      if name.startswith(STRUCTURE_FIELDS)
      and name not in RESUMABLE_MODEL_FIELDS
      and stored[name] != wanted[name]
  )
  if differing:
    changes = ", ".join(f"{n}: {stored[n]!r} -> {wanted[n]!r}" for n in differing)
    raise ConfigError(
        f"The workdir {run.workdir} holds checkpoints of another model ({changes}). Resume it "
        "with its own config, or give this config another --workdir; nothing was changed."
    )


def _holder(lock_path: pathlib.Path) -> dict[str, Any] | None:
  try:
    return json.loads(lock_path.read_text())
  except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
    return None


def _is_alive(holder: dict[str, Any]) -> bool:
  if holder.get("host") != socket.gethostname():
    return True  # another machine's process cannot be checked from here
  try:
    os.kill(int(holder["pid"]), 0)
  except ProcessLookupError:
    return False
  except (PermissionError, KeyError, ValueError, TypeError):
    return True
  return True


@contextlib.contextmanager
def exclusive(run: Run) -> Iterator[None]:
  """Holds the workdir for one training run: a second run on it fails in one line naming the
  holder. A lock left by a process that has died is taken over. Only process 0 of a multi-process
  run takes it, so the processes of one run still work together."""
  if jax.process_index() != 0:
    yield
    return
  record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()})
  for _ in range(2):
    try:
      handle = os.open(run.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
      holder = _holder(run.lock_path)
      if holder is not None and _is_alive(holder):
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("since", 0)))
        raise WorkdirError(
            f"The workdir {run.workdir} is in use by process {holder.get('pid')} on "
            f"{holder.get('host')} (since {since}). Wait for it to finish or use another "
            f"--workdir; if that process is gone, delete {run.lock_path}."
        ) from None
      logging.warning("Taking over %s, left by a process that is no longer running.", run.lock_path)
      run.lock_path.unlink(missing_ok=True)
      continue
    with os.fdopen(handle, "w") as f:
      f.write(record)
    break
  else:
    raise WorkdirError(f"Cannot take the lock {run.lock_path}: another run took it first.")
  try:
    yield
  finally:
    if (_holder(run.lock_path) or {}).get("pid") == os.getpid():
      run.lock_path.unlink(missing_ok=True)


def write_config(run: Run, config: ml_collections.ConfigDict) -> None:
  write_json(run.config_path, json.loads(config.to_json_best_effort()))


def read_config(run: Run) -> ml_collections.ConfigDict:
  """The run's config.json as written, which says which model its checkpoints hold."""
  try:
    fields = json.loads(run.config_path.read_text())
  except FileNotFoundError:
    raise CheckpointNotFoundError(
        f"{run.config_path} is missing: the training run writes it beside '{CHECKPOINTS_DIR}/' "
        "and it names the model variant; keep the step directory inside its workdir."
    ) from None
  except json.JSONDecodeError as error:
    raise RunFileError(f"{run.config_path} is not valid JSON: {error}") from None
  if not isinstance(fields, dict):
    raise RunFileError(f"{run.config_path} is not a config (a JSON object of fields)")
  if not isinstance(fields.get("model"), dict) or "variant" not in fields["model"]:
    raise RunFileError(
        f"{run.config_path} names no model (a 'model' section with a 'variant'): it was edited "
        "or written by another program; restore it from the run that wrote the checkpoints."
    )
  return ml_collections.ConfigDict(fields)


def parse_step(text: str) -> str | int:
  """A command line's --step: "latest", "best" or a step number."""
  if text in STEP_CHOICES:
    return text
  try:
    return int(text)
  except ValueError:
    raise ValueError(f"--step must be 'latest', 'best' or a step number, got {text!r}") from None


@dataclasses.dataclass(frozen=True)
class ResolvedStep:
  """One checkpoint step of a run, as a user's path and --step name it.

  `fallbacks` are older steps to try, newest first, when this one turns out unreadable: only for
  "latest" (a step the user named is that step or an error).
  """

  run: Run
  step: int
  fallbacks: tuple[int, ...] = ()

  @property
  def step_dir(self) -> pathlib.Path:
    return self.run.step_dir(self.step)

  def with_fallback(self) -> "ResolvedStep":
    """The next older step to try."""
    return ResolvedStep(self.run, self.fallbacks[0], self.fallbacks[1:])


def locate(path: str | os.PathLike[str]) -> tuple[Run, int | None]:
  """(the run, the step number when `path` is one step folder) of a workdir, its checkpoints
  folder, or one step folder."""
  path = pathlib.Path(path).absolute()
  if checkpointing.is_step_dir(path) and path.parent.name == CHECKPOINTS_DIR:
    return Run(path.parent.parent), int(path.name)
  if (path / CHECKPOINTS_DIR).is_dir():
    return Run(path), None
  if path.name == CHECKPOINTS_DIR and path.is_dir():
    return Run(path.parent), None
  raise CheckpointNotFoundError(
      f"No checkpoint found at {path}: expected a training workdir (holding "
      f"'{CHECKPOINTS_DIR}/'), its '{CHECKPOINTS_DIR}/' directory, or one step directory "
      f"(holding '{checkpointing.STATE}/')."
  )


def resolve(path: str | os.PathLike[str], step: str | int = "latest") -> ResolvedStep:
  """The step that `path` and `step` ("latest", "best" by the run's `best_metric`, or a number)
  name. A step folder as `path` names its own step whatever `step` says."""
  run, step_in_path = locate(path)
  if step_in_path is not None:
    return ResolvedStep(run, step_in_path)
  steps = run.steps()
  if not steps:
    raise CheckpointNotFoundError(f"{run.checkpoints_dir} holds no checkpoint step.")
  if step == "latest":
    newest_first = tuple(sorted(steps, reverse=True))
    return ResolvedStep(run, newest_first[0], newest_first[1:])
  if step == "best":
    config = read_config(run)
    best = checkpointing.best_step(run.checkpoints_dir, config.best_metric, config.best_mode)
    if best is None:
      raise CheckpointNotFoundError(
          f"No step in {run.checkpoints_dir} has the metric {config.best_metric!r} (saved at "
          f"evaluations); steps there: {steps}."
      )
    return ResolvedStep(run, best)
  if int(step) not in steps:
    raise CheckpointNotFoundError(
        f"{run.checkpoints_dir} has no step {step}; steps there: {steps}."
    )
  return ResolvedStep(run, int(step))
