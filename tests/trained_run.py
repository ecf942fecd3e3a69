"""A real training run of `configs/smoke.py`, shared by the inference and evaluation tests.

Trained once per test session with the project's own training code, so the tests read exactly the
workdir layout users get. Under pytest-xdist the workers share one run through a file lock.
"""

import fcntl
import os
import pathlib

import pytest

from configs import smoke
from lstm_endec_jax.training import train

NUM_TRAIN_STEPS = 2
REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def smoke_config(data_dir: pathlib.Path):
  config = smoke.get_config()
  config.dataset.data_dir = str(data_dir)
  config.num_train_steps = NUM_TRAIN_STEPS
  config.class_weight_batches = 1
  config.warmup_steps = 0
  config.eval_every_steps = 1  # Every step gets a validation metric, so "best" is defined.
  config.checkpoint_every_steps = 1
  config.async_checkpointing = False
  return config


def data_dir(workdir: pathlib.Path) -> pathlib.Path:
  """Where the run's dataset was built."""
  return workdir.parent / "tfds"


def shared_root(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
  """This session's temp dir, common to all xdist workers of the session."""
  base = tmp_path_factory.getbasetemp()
  return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def trained_workdir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
  """The workdir of a finished smoke run (trained on first use)."""
  root = shared_root(tmp_path_factory) / "smoke_run"
  root.mkdir(exist_ok=True)
  workdir = root / "workdir"
  with open(root / "lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not (root / "done").exists():
      train.train_and_evaluate(smoke_config(data_dir(workdir)), str(workdir))
      (root / "done").touch()
  return workdir
