"""Ctrl-C / SIGTERM turn into a polite stop request for the training loop.

The loop finishes the step it is in, saves a checkpoint and raises `Stopped`;
the command exits with the shell's code for the signal (130 for SIGINT, 143
for SIGTERM), so a scheduler or script does not mistake an unfinished run for
a finished one. A second signal restores the default behaviour, so pressing
Ctrl-C twice still kills a run that is stuck.
"""

import signal
import threading
import types

from absl import logging

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(Exception):
  """Training stopped early on a signal, after saving a checkpoint at `step`."""

  def __init__(self, signal_name: str, step: int):
    self.signal_name = signal_name
    self.step = step
    self.exit_code = 128 + int(signal.Signals[signal_name])
    super().__init__(
        f"Stopped by {signal_name} after step {step}; the checkpoint is saved. "
        "Run the same command again to resume."
    )


class StopRequest:
  """Context manager; `bool(stop)` is True once SIGINT or SIGTERM arrived."""

  def __init__(self):
    self.signal_name: str | None = None
    self._previous = {}

  def __bool__(self) -> bool:
    return self.signal_name is not None

  def _handle(self, signum: int, frame: types.FrameType | None) -> None:
    del frame
    self.signal_name = signal.Signals(signum).name
    logging.warning(
        "Received %s: saving a checkpoint after this step, then "
        "stopping (send it again to stop at once).",
        self.signal_name,
    )
    self._restore_handlers()

  def _restore_handlers(self) -> None:
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)
    self._previous = {}

  def __enter__(self) -> "StopRequest":
    # Signal handlers can only be installed from the main thread.
    if threading.current_thread() is threading.main_thread():
      self._previous = {s: signal.signal(s, self._handle) for s in _SIGNALS}
    return self

  def __exit__(self, *exc_info) -> None:
    self._restore_handlers()
