"""The weights shipped with the package (lstm_endec_jax/runs/shipped_weights/, docs/model_card.md)."""

import os
import subprocess
import sys

import jax
import numpy as np
from PIL import Image
import pytest

from lstm_endec_jax.inference import localizer as localizer_lib
from lstm_endec_jax.model import models
from lstm_endec_jax.runs import layout
from lstm_endec_jax.runs import shipped as shipped_lib
from lstm_endec_jax.runs import weights
import trained_run


@pytest.fixture(scope="module")
def shipped():
  return weights.load("pretrained:base")


def test_the_package_ships_the_base_model_as_plain_arrays():
  assert "base" in shipped_lib.available()
  path = shipped_lib.WEIGHTS_DIR / "base.npz"
  assert path.stat().st_size <= 12 * 2**20
  with np.load(path, allow_pickle=False) as arrays:  # no pickle: loading runs no code
    assert all(arrays[key].dtype.kind == "f" for key in arrays)
  record = shipped_lib.description("base")
  assert record["run_config"]["model"]["variant"] == "paper"


def test_a_fixed_input_gives_the_recorded_output(shipped):
  """Fails when a change of the model code silently changes what the shipped weights compute."""
  recorded = np.asarray(shipped_lib.description("base")["reference_output"])
  computed = np.asarray(shipped_lib.reference_output(shipped.model, shipped.variables))
  np.testing.assert_allclose(computed, recorded, rtol=0, atol=1e-4)
  assert recorded.std() > 0  # a map, not a constant


def test_localizer_from_pretrained_maps_any_image(shipped):
  localizer = localizer_lib.Localizer.from_pretrained()
  assert localizer.variant == "paper" and "base" in localizer.source
  image = np.random.default_rng(0).integers(0, 256, (100, 140, 3), dtype=np.uint8)
  probabilities = localizer.predict(image)
  assert probabilities.shape == (100, 140)
  assert np.isfinite(probabilities).all() and 0 <= probabilities.min() <= probabilities.max() <= 1


def test_usable_as_init_from_for_the_paper_model_only(shipped):
  like = dict(
      jax.eval_shape(
          lambda: models.create_model(models.model_config("paper")).init(
              jax.random.key(0), np.zeros((1, 256, 256, 3), np.uint8), train=False
          )
      )
  )
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  variables = weights.load("pretrained:base", like=like, sharding=device).variables
  jax.tree.map(np.testing.assert_array_equal, variables, shipped.variables)
  smaller = trained_run.smoke_config(trained_run.REPO_ROOT).model
  tiny_like = dict(
      jax.eval_shape(
          lambda: models.create_model(smaller).init(
              jax.random.key(0), np.zeros((1, 256, 256, 3), np.uint8), train=False
          )
      )
  )
  with pytest.raises(ValueError, match="does not fit this config's model"):
    weights.load("pretrained:base", like=tiny_like, sharding=device)


def test_unknown_name_is_a_clear_error():
  with pytest.raises(layout.CheckpointNotFoundError, match="ships \\['base'"):
    weights.load("pretrained:large")


def test_predict_without_a_checkpoint_uses_the_shipped_weights(tmp_path):
  """The README's first command on a fresh install: no checkpoint, no training, no --output."""
  Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 80, 3), dtype=np.uint8)).save(
      tmp_path / "photo.jpg"
  )
  result = subprocess.run(
      [sys.executable, "-m", "lstm_endec_jax.predict", "photo.jpg"],
      cwd=tmp_path,
      capture_output=True,
      text=True,
      timeout=300,
      env={**os.environ, "PYTHONPATH": str(trained_run.REPO_ROOT)},
  )
  assert result.returncode == 0, result.stderr[-3000:]
  assert "shipped 'base' weights" in result.stderr
  for suffix in ("heatmap", "mask", "overlay"):
    assert (tmp_path / "predictions" / f"photo_{suffix}.png").stat().st_size > 0
