"""What a run tells people: metrics.jsonl, TensorBoard events, a progress bar.

TensorBoard event files are written with tensorboardX, because clu's metric
writers import TensorFlow (docs/method.md section 7). Only process 0 writes.
"""

import datetime
import json
import math
import sys
import time
from typing import Any

from absl import logging
import jax
import numpy as np
import tensorboardX
import tqdm

from lstm_endec_jax.runs import layout


def _json_value(value: Any) -> Any:
  """Plain JSON numbers; NaN/Inf become null so every line stays valid JSON."""
  value = float(value)
  return value if math.isfinite(value) else None


def _parse_record(line: str) -> dict[str, Any] | None:
  """A metrics.jsonl record, or None for a line that is not one (cut short by a crash)."""
  try:
    record = json.loads(line)
  except json.JSONDecodeError:
    return None
  return record if isinstance(record, dict) and isinstance(record.get("step"), int) else None


class MetricWriter:
  """Appends scalars to `metrics.jsonl` and to TensorBoard event files."""

  def __init__(self, run: layout.Run):
    self._enabled = jax.process_index() == 0
    self._jsonl_path = run.metrics_path
    self._previous_path = run.previous_metrics_path
    self._tensorboard = (
        tensorboardX.SummaryWriter(str(run.tensorboard_dir)) if self._enabled else None
    )

  def keep_history_until(self, step: int) -> None:
    """Drops the records after `step`, where a run restarts, so that each step has one line.

    A resumed run replays the steps after its checkpoint exactly, so their records come again.
    A record cut short by a crash (a full disk, a killed process) is dropped with a warning. When
    a run restarts from scratch (every checkpoint unreadable) the old history is not this run's:
    it is moved to the run's previous-metrics file, with a warning. Rewrites are atomic.
    """
    if not self._enabled or not self._jsonl_path.exists():
      return
    lines = self._jsonl_path.read_text(errors="replace").splitlines()
    parsed = [(line, _parse_record(line)) for line in lines if line.strip()]
    records = [(line, record) for line, record in parsed if record is not None]
    torn = [line for line, record in parsed if record is None]
    if torn:
      logging.warning(
          "%s: dropping %d record(s) cut short by an earlier crash: %.80s",
          self._jsonl_path,
          len(torn),
          torn[-1],
      )
    kept = [line for line, record in records if record["step"] <= step]
    if len(kept) == len(lines):
      return
    if step == 0 and len(kept) < len(records):
      moved = self._previous_path
      with moved.open("a") as f:
        f.write("\n".join(line for line, _ in records) + "\n")
      logging.warning(
          "Starting from step 0, but %s holds an earlier run's records (no readable "
          "checkpoint was found); they are moved to %s.",
          self._jsonl_path,
          moved,
      )
    layout.write_text_atomically(self._jsonl_path, "".join(line + "\n" for line in kept))

  def write_scalars(self, step: int, split: str, scalars: dict[str, float]) -> None:
    if not self._enabled:
      return
    record = {"step": step, "split": split, "time": time.time()}
    record.update({name: _json_value(v) for name, v in scalars.items()})
    with self._jsonl_path.open("a") as f:
      f.write(json.dumps(record) + "\n")
    for name, value in scalars.items():
      self._tensorboard.add_scalar(f"{split}/{name}", float(value), step)
    self._tensorboard.flush()

  def write_image(self, step: int, tag: str, image: np.ndarray) -> None:
    """An (H, W, 3) uint8 image in TensorBoard."""
    if self._enabled:
      self._tensorboard.add_image(tag, image, step, dataformats="HWC")
      self._tensorboard.flush()

  def close(self) -> None:
    if self._enabled:
      self._tensorboard.close()


def announce(message: str) -> None:
  """One line for the user on stderr, above any progress bar (process 0 only)."""
  if jax.process_index() == 0:
    tqdm.tqdm.write(message, file=sys.stderr)


HEADLINE_METRICS = (
    ("pooled/pixel_auc", "pixel AUC (pooled)"),
    ("per_image/pixel_auc", "pixel AUC (per image)"),
    ("pooled/f1", "pixel F1@0.5 (pooled)"),
)


def headline(results: dict[str, float]) -> str:
  """The few metrics worth a console line, from a full results dict."""
  return ", ".join(
      f"{label} {results[key]:.4f}"
      for key, label in HEADLINE_METRICS
      if key in results and results[key] is not None
  )


def format_metrics(scalars: dict[str, float]) -> str:
  return ", ".join(f"{name}={value:.4g}" for name, value in scalars.items())


class Progress:
  """A tqdm bar with steps/s, images/s, loss and ETA; steady-state timing.

  `pause()` / `resume()` keep evaluation and checkpoint time out of the
  throughput numbers. The first step of a process compiles, so the bar and
  the throughput start counting after it: ETAs are for compiled steps.
  """

  def __init__(self, *, total_steps: int, start_step: int, batch_size: int):
    self._batch_size = batch_size
    self._total_steps = total_steps
    self._step = start_step
    self._bar = tqdm.tqdm(
        total=total_steps,
        initial=start_step,
        unit="step",
        dynamic_ncols=True,
        disable=None if jax.process_index() == 0 else True,
        smoothing=0.1,
    )
    self._window_steps = 0
    self._window_seconds = 0.0
    self._started = time.perf_counter()
    self._compiled = False

  def update(self) -> None:
    self._step += 1
    if not self._compiled:  # the compiling step: restart the clocks after it
      self._compiled = True
      self._bar.reset(total=self._total_steps)  # restarts tqdm's clock
      self._bar.initial = self._bar.n = self._step
      self._bar.refresh()
      self._window_steps, self._window_seconds = 0, 0.0
      self._started = time.perf_counter()
      return
    self._bar.update(1)
    self._window_steps += 1

  def pause(self) -> None:
    self._window_seconds += time.perf_counter() - self._started

  def resume(self) -> None:
    self._started = time.perf_counter()

  def throughput(self) -> dict[str, float]:
    """steps/s and images/s since the last call (blocks on the device); NaN
    right after the compiling step, when no compiled step was timed yet."""
    self.pause()
    steps_per_second = (
        self._window_steps / max(self._window_seconds, 1e-9) if self._window_steps else float("nan")
    )
    self._window_steps, self._window_seconds = 0, 0.0
    self.resume()
    return {
        "steps_per_second": steps_per_second,
        "images_per_second": steps_per_second * self._batch_size,
    }

  def eta(self, steps_per_second: float) -> str:
    """Time left at `steps_per_second`, as H:MM:SS."""
    if not math.isfinite(steps_per_second):
      return "unknown until the second step"
    seconds = (self._total_steps - self._step) / max(steps_per_second, 1e-9)
    return str(datetime.timedelta(seconds=round(seconds)))

  def show(self, loss: float, throughput: dict[str, float]) -> None:
    self._bar.set_postfix(loss=f"{loss:.4f}", img_s=f"{throughput['images_per_second']:.1f}")

  def close(self) -> None:
    self._bar.close()
