"""What every command-line program of the project does the same way: a quiet console by default,
and a failure reported as one `error:` line with a non-zero exit code (`run`).
"""

import functools
import logging as std_logging
import os
import pathlib
import sys
from collections.abc import Callable, Sequence

from absl import app
from absl import flags
from absl import logging
import jax

from lstm_endec_jax.runtime import errors
from lstm_endec_jax.runtime import files
from lstm_endec_jax.runtime import huge_pages as huge_pages_lib
from lstm_endec_jax.runtime import xla_flags
from lstm_endec_jax.training import interrupts

# Libraries whose INFO lines (one per checkpoint file, dataset read, ...) would break the
# progress bar; their warnings still show.
CHATTY_LOGGERS = ("orbax", "absl", "tensorflow_datasets", "grain", "jax")


# Library warnings that say nothing to a user of this project: Orbax's for every checkpoint saved
# between evaluations (only evaluated steps carry the metric that ranks the best one) and for
# every checkpoint it reads (read-only manager; a per-item metadata file it does not write),
# grain's suggestion to install OpenCV (Pillow decodes our PNGs), and the warning for a metric
# that is undefined on an evaluation (an AUC over one class: NaN, as metrics.jsonl says), from
# tensorboardX.
HARMLESS_WARNINGS = (
    "Requested `tracked_metric`; did not provide metrics",
    "Given directory is read only",
    "Metadata file does not exist",
    "OpenCV is not installed",
    "NaN or Inf found in input tensor",
)


# Compiled XLA programs are kept here across runs, so that the second run of a config (a resumed
# training, another evaluation, the next predict) does not compile again.
DEFAULT_COMPILATION_CACHE = (
    pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache")
    / "lstm_endec_jax"
    / "xla"
)
_COMPILATION_CACHE_DIR = flags.DEFINE_string(
    "compilation_cache_dir",
    str(DEFAULT_COMPILATION_CACHE),
    "Where compiled XLA programs are kept between runs ('' turns the cache off; "
    "JAX_COMPILATION_CACHE_DIR, when set, wins).",
)


def use_compilation_cache() -> pathlib.Path | None:
  """Turns on JAX's persistent compilation cache in `--compilation_cache_dir`; returns it.

  A user's own JAX_COMPILATION_CACHE_DIR is left as it is. JAX caches programs that took at least
  `jax_persistent_cache_min_compile_time_secs` (1 s by default) to compile.
  """
  if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
    return pathlib.Path(os.environ["JAX_COMPILATION_CACHE_DIR"])
  if not _COMPILATION_CACHE_DIR.value:
    return None
  jax.config.update("jax_compilation_cache_dir", _COMPILATION_CACHE_DIR.value)
  return pathlib.Path(_COMPILATION_CACHE_DIR.value)


class _DropHarmless(std_logging.Filter):

  def filter(self, record: std_logging.LogRecord) -> bool:
    message = record.getMessage()
    if "orbax" in record.pathname and record.exc_info:
      # Orbax's own report, with its traceback, of a save that failed in a background thread:
      # the same error is raised again in the main thread, where `run` reports it in one line.
      return False
    if record.name == "asyncio" and "orbax" in message:
      # The other reads of a checkpoint restore abandoned at its first failure, which
      # `checkpointing` reports in one line.
      return False
    return not message.startswith(HARMLESS_WARNINGS)


def _drop_abandoned_restore_noise(unraisable) -> None:
  """A checkpoint restore that fails (reported in one line by `checkpointing`) abandons its other
  reads: Python then prints, for each, the error of its Orbax coroutine and TensorStore's
  "Event loop is closed" for the loop Orbax has closed by then. Other unraisable errors print."""
  value, where = unraisable.exc_value, unraisable.object
  closed_loop = isinstance(value, RuntimeError) and str(value) == "Event loop is closed"
  orbax_coroutine = "orbax" in getattr(getattr(where, "cr_code", None), "co_filename", "")
  if not (closed_loop or orbax_coroutine):
    sys.__unraisablehook__(unraisable)


def quiet_libraries() -> None:
  """Warnings and errors only, unless the user asked for more with absl's `--verbosity`/`-v`."""
  if flags.FLAGS["verbosity"].present:
    return
  logging.set_verbosity(logging.WARNING)
  logging.get_absl_handler().addFilter(_DropHarmless())
  sys.unraisablehook = _drop_abandoned_restore_noise
  for name in CHATTY_LOGGERS:
    std_logging.getLogger(name).setLevel(std_logging.WARNING)


def start_command(*, distributed: bool = True) -> None:
  """What every model command does first: a quiet console, the compilation cache, and joining a
  multi-host job when a launcher started one (`distributed`)."""
  quiet_libraries()
  use_compilation_cache()
  if distributed:
    from lstm_endec_jax.runtime import parallel  # pylint: disable=g-import-not-at-top

    parallel.maybe_initialize_distributed()


def parse_step_flag(text: str) -> str | int:
  """`--step` ("latest", "best" or a number), or a usage error naming the flag."""
  from lstm_endec_jax.runs import layout  # pylint: disable=g-import-not-at-top

  try:
    return layout.parse_step(text)
  except ValueError as error:
    raise app.UsageError(str(error)) from error


def exit_with(message: str, code: int = 1) -> None:
  """Ends the program with one `error:` line on stderr and exit status `code`."""
  print(f"error: {message}", file=sys.stderr)
  sys.exit(code)


def describe_os_error(error: OSError) -> str:
  """One line for a failed file operation, naming the file."""
  where = error.filename or "a file"
  reason = files.write_failure(error)
  if reason:
    return (
        f"Cannot write {where}: {reason} ({error.strerror}). Free space or choose a writable "
        "place, then run the same command again."
    )
  if error.strerror and error.filename:
    return f"{error.filename}: {error.strerror}"
  return str(error)


def _guarded(main: Callable[[list[str]], int | None], argv: list[str]) -> int | None:
  try:
    return main(argv)
  except app.UsageError as error:
    exit_with(str(error), 2)
  except interrupts.Stopped as stopped:
    if jax.process_index() == 0:
      print(str(stopped), file=sys.stderr)
    sys.exit(stopped.exit_code)
  except errors.UserError as error:
    exit_with(str(error), error.exit_code)
  except OSError as error:
    exit_with(describe_os_error(error), 1)


def run(main: Callable[[list[str]], int | None], *, huge_pages: bool = False) -> None:
  """`app.run(main)` for every command: the package's XLA settings (`xla_flags`), then the one
  map from failures to exit codes (`errors`).

  `huge_pages`: for the commands that run long XLA computations, start again once with huge
  pages for XLA's buffers (`huge_pages`), before anything else.
  """
  xla_flags.apply_defaults()
  if huge_pages:
    huge_pages_lib.relaunch_with_huge_pages()
  app.run(functools.partial(_guarded, main))


def check_config_file_flag(argv: Sequence[str], flag: str = "config") -> None:
  """Fails in one line when `--config` names a file that does not exist.

  ml_collections loads the file while absl parses the flags, and a missing file becomes two
  tracebacks; this runs before that.
  """
  for index, arg in enumerate(argv[1:], start=1):
    if arg.startswith(f"--{flag}="):
      value = arg.split("=", 1)[1]
    elif arg == f"--{flag}" and index + 1 < len(argv):
      value = argv[index + 1]
    else:
      continue
    path = pathlib.Path(value.split(":", 1)[0])  # ml_collections: "file.py:argument"
    if not path.is_file():
      exit_with(f"--{flag}={value}: no such config file {path} (the configs are in configs/)", 2)
