"""Orbax checkpoints of a state pytree plus a real grain iterator, on disk."""

import logging
import pathlib
import shutil

import grain.python as grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from lstm_endec_jax.runs import checkpointing
from lstm_endec_jax.runs import layout
from lstm_endec_jax.runtime import parallel
from lstm_endec_jax.training import train


def _config(**overrides):
  config = ml_collections.ConfigDict(
      dict(best_metric="auc", best_mode="max", keep_checkpoints=2, async_checkpointing=True)
  )
  config.update(overrides)
  return config


def _manager(workdir):
  return train.create_checkpoint_manager(_config(), layout.Run(workdir))


def _loader():
  sampler = grain.IndexSampler(
      50, shard_options=grain.NoSharding(), shuffle=True, seed=3, num_epochs=None
  )
  return grain.DataLoader(
      data_source=list(range(50)), sampler=sampler, operations=[grain.Batch(4)], worker_count=0
  )


def _state(value: float, mesh):
  state = {
      "params": {"w": jnp.full((4, 3), value), "b": jnp.arange(3.0)},
      "batch_stats": {"mean": jnp.full((3,), value)},
      "step": jnp.int32(value),
      "rng": jax.random.key_data(jax.random.key(7)),
  }
  return jax.device_put(state, parallel.replicated(mesh))


def _train_and_save(workdir, mesh, steps, metrics_at):
  """Saves `steps` checkpoints, each after consuming one batch."""
  manager = _manager(workdir)
  iterator = iter(_loader())
  for step in range(1, steps + 1):
    next(iterator)
    checkpointing.save(manager, step, _state(step, mesh), iterator, metrics=metrics_at.get(step))
  checkpointing.wait_until_finished(manager)
  return manager, iterator


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
  """Six steps on two devices; validation AUC at steps 2, 4 and 6."""
  workdir = tmp_path_factory.mktemp("run")
  manager, iterator = _train_and_save(
      workdir, parallel.create_mesh(2), 6, {2: {"auc": 0.7}, 4: {"auc": 0.9}, 6: {"auc": 0.8}}
  )
  manager.close()
  return workdir, [next(iterator) for _ in range(3)]


def _restore(workdir, mesh):
  manager = _manager(workdir)
  iterator = iter(_loader())
  abstract = checkpointing.abstract_like(_state(0, mesh), parallel.replicated(mesh))
  return (
      manager,
      checkpointing.restore_latest(
          manager, abstract, iterator, quarantine_dir=layout.Run(workdir).quarantine_dir
      ),
      iterator,
  )


def test_keeps_last_n_and_the_best(saved_run):
  workdir, _ = saved_run
  manager = _manager(workdir)
  assert manager.all_steps() == [4, 5, 6]
  assert manager.best_step() == 4


def test_restore_on_another_device_count_continues_the_data(saved_run):
  workdir, following_batches = saved_run
  mesh = parallel.create_mesh(1)
  _, state, iterator = _restore(workdir, mesh)
  assert int(state["step"]) == 6
  np.testing.assert_array_equal(state["params"]["w"], np.full((4, 3), 6.0))
  np.testing.assert_array_equal(state["rng"], jax.random.key_data(jax.random.key(7)))
  assert state["params"]["w"].sharding == parallel.replicated(mesh)
  for expected in following_batches:
    np.testing.assert_array_equal(next(iterator), expected)


def test_corrupt_latest_checkpoint_falls_back_to_previous(saved_run, tmp_path, caplog):
  workdir = tmp_path / "copy"
  shutil.copytree(saved_run[0], workdir)
  for path in (workdir / "checkpoints" / "6" / "state").rglob("*"):
    if path.is_file():
      path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
  mesh = parallel.create_mesh(2)
  with caplog.at_level(logging.WARNING):
    manager, state, _ = _restore(workdir, mesh)
  assert int(state["step"]) == 5
  assert "Checkpoint step 6" in caplog.text and "unreadable" in caplog.text
  assert (workdir / layout.QUARANTINE_DIR / "6").is_dir()
  # The step number is free again for the resumed run.
  checkpointing.save(manager, 6, _state(6, mesh), iter(_loader()))
  checkpointing.wait_until_finished(manager)
  assert manager.latest_step() == 6


@pytest.mark.parametrize("where", ["workdir", "checkpoints", "step"])
def test_load_variables_for_fine_tuning(saved_run, where):
  workdir = saved_run[0]
  path = {
      "workdir": workdir,
      "checkpoints": workdir / "checkpoints",
      "step": workdir / "checkpoints" / "4",
  }[where]
  mesh = parallel.create_mesh(1)
  fresh = _state(0, mesh)
  loaded = checkpointing.load_variables(
      layout.resolve(path).step_dir,
      {"params": fresh["params"], "batch_stats": fresh["batch_stats"]},
      parallel.replicated(mesh),
  )
  expected = 4.0 if where == "step" else 6.0
  np.testing.assert_array_equal(loaded["params"]["w"], np.full((4, 3), expected))
  np.testing.assert_array_equal(loaded["batch_stats"]["mean"], np.full((3,), expected))
  assert set(loaded) == {"params", "batch_stats"}


def test_load_variables_names_a_mismatching_model(saved_run):
  mesh = parallel.create_mesh(1)
  other = {"params": {"w": jnp.zeros((5, 3)), "b": jnp.zeros(3)}}
  with pytest.raises(ValueError, match=r"\['params'\]\['w'\] is \(4, 3\)"):
    checkpointing.load_variables(
        layout.resolve(saved_run[0]).step_dir, other, parallel.replicated(mesh)
    )
  with pytest.raises(FileNotFoundError, match="No checkpoint found"):
    checkpointing.load_variables(
        layout.resolve(saved_run[0] / "nothing").step_dir, other, parallel.replicated(mesh)
    )


def test_full_disk_and_unwritable_workdir_give_clear_errors(tmp_path):
  with pytest.raises(checkpointing.CheckpointWriteError, match="disk is full"):
    checkpointing.check_free_space(tmp_path, 2**62)
  blocker = tmp_path / "a_file"
  blocker.write_text("not a directory")
  with pytest.raises(layout.WorkdirError, match=f"Cannot write to {blocker}/run.*--workdir"):
    layout.prepare_directory(blocker / "run")
  assert layout.prepare_directory(tmp_path / "new" / "run") == pathlib.Path(
      tmp_path / "new" / "run"
  )
