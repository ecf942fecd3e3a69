"""End-to-end training runs of configs/smoke.py, in process and as real CLI runs.

The CLI runs share a persistent XLA compilation cache per test, so only the
first run of a chain compiles the train and eval steps.
"""

import json
import logging
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from configs import smoke
from lstm_endec_jax.data import input_pipeline
from lstm_endec_jax.model import models
from lstm_endec_jax.runs import checkpointing
from lstm_endec_jax.runs import layout
from lstm_endec_jax.runs import reporting
from lstm_endec_jax.runtime import parallel
from lstm_endec_jax.training import optimizers
from lstm_endec_jax.training import train

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> pathlib.Path:
  """The tiny synthetic_splice dataset, built once for this module."""
  path = tmp_path_factory.mktemp("tfds")
  config = smoke.get_config()
  config.dataset.data_dir = str(path)
  input_pipeline.ensure_dataset_built(config)
  return path


@pytest.fixture(scope="module")
def small_model(data_dir):
  """An LSTM-free model on 64 x 64 images, its state and compiled steps.

  Quick to compile; the steps are compiled once and reused by the tests (a
  fresh copy of the state keeps the jit cache key).
  """
  config = smoke.get_config()
  config.model = models.model_config("endec")
  config.model.encoder_features = (4, 4, 4, 4)
  config.model.decoder_features = (4, 4, 4, 4)
  config.dataset.data_dir = str(data_dir)
  config.dataset.image_size = 64
  rng = jax.random.key(0)
  learning_rate_fn = optimizers.create_learning_rate_schedule(config)
  state = train.create_train_state(
      config,
      models.initial_variables(config.model, rng, image_size=config.dataset.image_size),
      rng,
      np.array([0.3, 0.7]),
      learning_rate_fn,
  )
  steps = {
      n: train.make_parallel_train_step(config, parallel.create_mesh(n), learning_rate_fn)
      for n in (1, 2)
  }
  return state, steps


def _on_mesh(state, mesh):
  return jax.device_put(jax.tree.map(np.array, state), parallel.replicated(mesh))


def _batch(seed=0, size=4, image_size=64):
  rng = np.random.default_rng(seed)
  masks = np.zeros((size, image_size, image_size), np.uint8)
  masks[:, 16:40, 24:50] = 1
  return {
      "image": rng.integers(0, 256, (size, image_size, image_size, 3), np.uint8),
      "mask": masks,
      "label": np.ones(size, np.int32),
  }


def test_one_and_two_devices_take_the_same_step(small_model):
  state, steps = small_model
  results = []
  for num_devices in (1, 2):
    mesh = parallel.create_mesh(num_devices)
    new_state, metrics = steps[num_devices](
        _on_mesh(state, mesh), parallel.global_batch(_batch(), mesh)
    )
    results.append(jax.device_get((new_state, metrics)))
  (state1, metrics1), (state2, metrics2) = results
  # BatchNorm statistics over the global batch and pmean-ed gradients make
  # the 2-device step the 1-device step.
  for name in ("loss", "grad_norm", "pixel_accuracy"):
    np.testing.assert_allclose(metrics1[name], metrics2[name], rtol=2e-5)
  jax.tree.map(
      lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
      state1.batch_stats,
      state2.batch_stats,
  )
  assert int(state1.step) == int(state2.step) == 1
  assert metrics1["is_finite"] and metrics2["is_finite"]


def test_non_finite_loss_skips_the_update_and_is_reported(small_model, caplog):
  state, steps = small_model
  mesh = parallel.create_mesh(2)
  poisoned = _on_mesh(state.replace(class_weights=np.array([np.nan, 1.0], np.float32)), mesh)
  before = jax.device_get(poisoned)
  after, metrics = steps[2](poisoned, parallel.global_batch(_batch(), mesh))
  after, metrics = jax.device_get((after, metrics))
  assert not metrics["is_finite"]
  assert int(after.step) == 1
  for name in ("params", "opt_state", "batch_stats"):
    jax.tree.map(np.testing.assert_array_equal, getattr(after, name), getattr(before, name))
  with caplog.at_level(logging.WARNING):
    summary = train._summarize_train_metrics([metrics], first_step=0)  # pylint: disable=protected-access
  assert "Step 1: non-finite loss" in caplog.text
  assert summary["skipped_steps"] == 1


def test_batch_that_does_not_split_over_devices_is_a_clear_error():
  with pytest.raises(
      ValueError,
      match=r"batch size \(3\) must be a positive " r"multiple of the number of devices \(2",
  ):
    parallel.check_batch_size(3, parallel.create_mesh(2), "batch size")


def test_warmup_then_cosine_schedule():
  config = smoke.get_config()
  config.update(dict(learning_rate=1.0, warmup_steps=10, num_train_steps=110, schedule="cosine"))
  schedule = optimizers.create_learning_rate_schedule(config)
  np.testing.assert_allclose(
      [schedule(0), schedule(5), schedule(10), schedule(60), schedule(110)],
      [0.0, 0.5, 1.0, 0.5, 0.0],
      atol=1e-6,
  )


# ----------------------------------------------------------------------------
# Real runs of `python -m lstm_endec_jax.main`.


def _env(cache_dir):
  env = dict(os.environ)
  env.update(
      JAX_COMPILATION_CACHE_DIR=str(cache_dir),
      JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
      JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="-1",
      # Single-threaded Eigen kernels: multi-threaded CPU reductions are not
      # guaranteed to sum in the same order in two processes, and the resume
      # test compares parameters bit for bit (it failed once by 1 ulp under
      # heavy machine load).
      XLA_FLAGS="--xla_force_host_platform_device_count=2 --xla_cpu_multi_thread_eigen=false",
  )
  return env


def _command(workdir, data_dir, *overrides):
  return [
      sys.executable,
      "-m",
      "lstm_endec_jax.main",
      "--config=configs/smoke.py",
      f"--workdir={workdir}",
      f"--config.dataset.data_dir={data_dir}",
      *overrides,
  ]


def _run(workdir, data_dir, cache_dir, *overrides):
  result = subprocess.run(
      _command(workdir, data_dir, *overrides),
      cwd=REPO_ROOT,
      env=_env(cache_dir),
      capture_output=True,
      text=True,
      timeout=300,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  return result


def _final_state(workdir, step):
  return checkpointing.read_state(
      pathlib.Path(workdir) / "checkpoints" / str(step),
      parallel.replicated(parallel.create_mesh(2)),
  )


def _eval_json(workdir):
  return json.loads((pathlib.Path(workdir) / "eval.json").read_text())


def _check_outputs(workdir, num_steps):
  workdir = pathlib.Path(workdir)
  records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert {r["split"] for r in records} == {"train", "validation", "test"}
  assert max(r["step"] for r in records if r["split"] == "train") == num_steps
  assert list((workdir / "tensorboard").glob("events.out.tfevents.*"))
  assert (workdir / "roc.png").stat().st_size > 0
  assert list((workdir / "validation").glob("samples_step_*.png"))
  evaluation = _eval_json(workdir)
  assert evaluation["step"] == num_steps and evaluation["split"] == "test"
  assert 0.0 <= evaluation["metrics"]["pooled/pixel_auc"] <= 1.0
  weights = json.loads((workdir / "class_weights.json").read_text())
  # Inverse class frequency normalised to sum to one: w = (f1, f0).
  np.testing.assert_allclose(weights["weights"], weights["frequencies"][::-1], rtol=1e-6)
  assert weights["frequencies"][1] < weights["frequencies"][0]


def _signal_after_first_checkpoint(workdir, data_dir, cache_dir, signum, *overrides):
  """Starts a run, sends `signum` once its first checkpoint is final.

  Returns the exit code and the log.
  """
  log_path = pathlib.Path(f"{workdir}.log")
  with log_path.open("w") as log:
    process = subprocess.Popen(
        _command(workdir, data_dir, *overrides),
        cwd=REPO_ROOT,
        env=_env(cache_dir),
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    checkpoints = pathlib.Path(workdir) / "checkpoints"
    deadline = time.monotonic() + 240
    while not (checkpoints / "2").is_dir():
      assert process.poll() is None, "the run ended before the signal"
      assert time.monotonic() < deadline, "no checkpoint appeared"
      time.sleep(0.02)
    process.send_signal(signum)
    returncode = process.wait(timeout=240)
  return returncode, log_path.read_text()


def test_killed_run_resumes_to_the_uninterrupted_result(data_dir, tmp_path):
  cache_dir = tmp_path / "xla_cache"
  uninterrupted = tmp_path / "uninterrupted"
  _run(uninterrupted, data_dir, cache_dir)
  _check_outputs(uninterrupted, num_steps=6)

  killed = tmp_path / "killed"
  returncode, _ = _signal_after_first_checkpoint(killed, data_dir, cache_dir, signal.SIGKILL)
  assert returncode == -signal.SIGKILL
  assert not (killed / "eval.json").exists()
  log = _run(killed, data_dir, cache_dir).stderr
  assert "Resuming from step" in log
  # A quiet console: the resume line, one line per evaluation, the last line.
  assert len(log.splitlines()) <= 8, log
  assert log.splitlines()[-1].startswith("Done. Test metrics: ")
  # The replayed steps are not recorded twice: one line per (split, step).
  records = [json.loads(line) for line in (killed / "metrics.jsonl").read_text().splitlines()]
  keys = [(r["split"], r["step"]) for r in records]
  assert len(keys) == len(set(keys)), keys
  expected_keys = [
      (r["split"], r["step"])
      for r in map(json.loads, (uninterrupted / "metrics.jsonl").read_text().splitlines())
  ]
  assert sorted(keys) == sorted(expected_keys)

  expected, resumed = _final_state(uninterrupted, 6), _final_state(killed, 6)
  for name in ("params", "opt_state", "batch_stats", "rng", "class_weights"):
    jax.tree.map(np.testing.assert_array_equal, resumed[name], expected[name])
  assert _eval_json(killed)["metrics"] == _eval_json(uninterrupted)["metrics"]

  # Restoring the finished run and evaluating again gives the same metrics.
  restored = tmp_path / "restored"
  shutil.copytree(uninterrupted, restored)
  (restored / "eval.json").unlink()
  _run(restored, data_dir, cache_dir)
  assert _eval_json(restored)["metrics"] == _eval_json(uninterrupted)["metrics"]


def test_one_device_run_and_fine_tuning_from_it(data_dir, tmp_path):
  cache_dir = tmp_path / "xla_cache"
  base = tmp_path / "base"
  _run(base, data_dir, cache_dir, "--config.num_devices=1")
  _check_outputs(base, num_steps=6)

  # Fine-tune with a zero learning rate: the first step keeps the base
  # weights, and the optimizer starts from scratch.
  finetuned = tmp_path / "finetuned"
  _run(
      finetuned,
      data_dir,
      cache_dir,
      "--config.num_devices=1",
      f"--config.init_from={base}",
      "--config.num_train_steps=1",
      "--config.learning_rate=0",
      "--config.warmup_steps=0",
  )
  source, tuned = _final_state(base, 6), _final_state(finetuned, 1)
  jax.tree.map(np.testing.assert_array_equal, tuned["params"], source["params"])
  assert int(tuned["step"]) == 1
  adam_counts = [int(x) for x in jax.tree.leaves(tuned["opt_state"]) if np.ndim(x) == 0]
  assert adam_counts and all(count == 1 for count in adam_counts)

  # Ctrl-C / SIGTERM: the step in flight finishes, a checkpoint is saved and
  # the run exits with the shell's code for the signal (128 + 15), without
  # the final evaluation, saying how to resume.
  interrupted = tmp_path / "interrupted"
  returncode, log = _signal_after_first_checkpoint(
      interrupted, data_dir, cache_dir, signal.SIGTERM, "--config.num_devices=1"
  )
  assert returncode == 128 + signal.SIGTERM, log[-3000:]
  assert "Run the same command again to resume." in log
  stopped_at = int(log.split("Stopped by SIGTERM after step ")[1].split(";")[0])
  assert stopped_at < 6
  assert (interrupted / "checkpoints" / str(stopped_at)).is_dir()
  assert not (interrupted / "eval.json").exists()


def test_unwritable_workdir_is_a_clear_error(tmp_path):
  blocker = tmp_path / "a_file"
  blocker.write_text("not a directory")
  result = subprocess.run(
      _command(blocker / "run", tmp_path),
      cwd=REPO_ROOT,
      env=_env(tmp_path / "xla_cache"),
      capture_output=True,
      text=True,
      timeout=120,
  )
  assert result.returncode == 1
  assert f"error: Cannot write to {blocker}/run" in result.stderr and "--workdir" in result.stderr


@pytest.mark.parametrize("override", ["--config.learning_rate=1e30", "--config.adam_eps=nan"])
def test_a_diverging_run_stops_in_one_line_and_saves_nothing_non_finite(
    data_dir, tmp_path, override
):
  """lr=1e30: a finite but huge first update, then non-finite losses; eps=NaN:
  finite loss and gradients but a NaN update. Neither reaches a checkpoint,
  and the run stops with one line naming the likely cause."""
  workdir = tmp_path / "run"
  result = subprocess.run(
      _command(
          workdir,
          data_dir,
          override,
          "--config.num_devices=1",
          "--config.max_consecutive_skipped_steps=2",
          "--config.checkpoint_every_steps=1",
      ),
      cwd=REPO_ROOT,
      env=_env(tmp_path / "xla_cache"),
      capture_output=True,
      text=True,
      timeout=300,
  )
  assert result.returncode == 1, result.stderr[-3000:]
  assert "Traceback" not in result.stderr
  errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
  assert len(errors) == 1 and "not finite" in errors[0]
  assert "config.learning_rate" in errors[0]
  steps = [int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()]
  assert steps, "the first step's checkpoint is missing"
  for step in steps:
    state = _final_state(workdir, step)
    for name in ("params", "opt_state", "batch_stats"):
      assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state[name])), (
          step,
          name,
      )
  assert not (workdir / "eval.json").exists()


def test_metric_history_keeps_one_line_per_step_when_a_run_restarts(tmp_path):
  writer = reporting.MetricWriter(layout.Run(tmp_path))
  for step in (2, 4, 6):
    writer.write_scalars(step, "train", {"loss": 1.0 / step})
  writer.keep_history_until(4)  # resumed from the step-4 checkpoint
  steps = [
      json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
  ]
  assert steps == [2, 4]
  writer.keep_history_until(0)  # no readable checkpoint: a new run
  assert (tmp_path / "metrics.jsonl").read_text() == ""
  moved = (tmp_path / "metrics_previous_run.jsonl").read_text().splitlines()
  assert [json.loads(line)["step"] for line in moved] == [2, 4]
  writer.close()


def test_progress_times_compiled_steps_only():
  """The first step compiles: throughput and ETA start counting after it."""
  progress = reporting.Progress(total_steps=20, start_step=0, batch_size=4)
  time.sleep(0.5)  # a slow first (compiling) step
  progress.update()
  first = progress.throughput()
  assert np.isnan(first["steps_per_second"])
  assert progress.eta(first["steps_per_second"]) == "unknown until the second step"
  for _ in range(4):
    time.sleep(0.02)
    progress.update()
  rate = progress.throughput()["steps_per_second"]
  assert rate > 10  # 0.02 s a step; with the 0.5 s compile counted it would be below 8.5
  progress.close()
