"""Inference on users' files with a checkpoint of a real (smoke) training run."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest
import tifffile

from lstm_endec_jax import predict
from lstm_endec_jax.data import image_io
from lstm_endec_jax.data import input_pipeline
from lstm_endec_jax.evaluation import visualize
from lstm_endec_jax.inference import localizer as localizer_lib
from lstm_endec_jax.model import models
from lstm_endec_jax.runs import layout
from lstm_endec_jax.runs import weights
import trained_run

RNG = np.random.default_rng(0)


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
  return trained_run.trained_workdir(tmp_path_factory)


@pytest.fixture(scope="session")
def localizer(workdir):
  return localizer_lib.Localizer.from_checkpoint(workdir, batch_size=4)


def _photo(height, width):
  """Smooth content with texture, like a photograph (not white noise)."""
  y, x = np.mgrid[:height, :width]
  base = np.stack([x * 255 // max(width, 1), y * 255 // max(height, 1), (x + y) % 256], -1)
  return np.clip(base + RNG.integers(-20, 20, base.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def user_folder(tmp_path_factory):
  """A folder of users' files: every supported kind, plus broken ones."""
  folder = tmp_path_factory.mktemp("photos")
  (folder / "sub").mkdir()
  photo = _photo(90, 120)
  Image.fromarray(photo).save(folder / "photo.jpg", quality=90)
  Image.fromarray(photo).save(folder / "photo.png")  # Same stem as photo.jpg.
  Image.fromarray(photo[..., 0]).save(folder / "sub" / "gray.png")
  Image.fromarray(np.dstack([photo, photo[..., :1]])).save(folder / "sub" / "rgba.png")
  Image.fromarray(photo).convert("P").save(folder / "sub" / "palette.gif")
  Image.fromarray(photo).save(folder / "sub" / "photo.bmp")
  tifffile.imwrite(folder / "sub" / "deep.tif", photo.astype(np.uint16) * 257, photometric="rgb")
  Image.fromarray(photo[:1, :1]).save(folder / "sub" / "one_pixel.png")
  full = (folder / "photo.jpg").read_bytes()
  (folder / "sub" / "truncated.jpg").write_bytes(full[: len(full) // 2])
  (folder / "sub" / "notes.png").write_text("not an image")
  return folder


@pytest.fixture(scope="module")
def cli_run(workdir, user_folder, tmp_path_factory):
  """One run of the command line on the folder, in a fresh process."""
  output = tmp_path_factory.mktemp("cli_output")
  cache = tmp_path_factory.mktemp("compilation_cache")
  env = {name: value for name, value in os.environ.items() if name != "JAX_COMPILATION_CACHE_DIR"}
  env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"  # the tiny model compiles in < 1 s
  result = subprocess.run(
      [
          sys.executable,
          "-m",
          "lstm_endec_jax.predict",
          f"--checkpoint={workdir}",
          f"--output={output}",
          f"--compilation_cache_dir={cache}",
          str(user_folder),
      ],
      cwd=trained_run.REPO_ROOT,
      capture_output=True,
      text=True,
      timeout=300,
      env=env,
  )
  assert any(cache.iterdir()), "the compiled model was not kept in --compilation_cache_dir"
  records = [json.loads(line) for line in (output / "predictions.jsonl").read_text().splitlines()]
  return (
      result,
      output,
      {pathlib.Path(r["image"]).relative_to(user_folder).as_posix(): r for r in records},
  )


def test_cli_processes_every_readable_file_and_reports_broken_ones(cli_run):
  result, output, records = cli_run
  assert result.returncode == 1, result.stderr  # Some files failed.
  assert set(records) == {
      "photo.jpg",
      "photo.png",
      "sub/deep.tif",
      "sub/gray.png",
      "sub/notes.png",
      "sub/one_pixel.png",
      "sub/palette.gif",
      "sub/photo.bmp",
      "sub/rgba.png",
      "sub/truncated.jpg",
  }
  assert "cannot decode" in records["sub/truncated.jpg"]["error"]
  assert "not an image" in records["sub/notes.png"]["error"]
  assert "truncated.jpg" in result.stderr and "notes.png" in result.stderr
  for name, record in records.items():
    if "error" in record:
      continue
    assert 0 <= record["manipulated_fraction"] <= 1 and 0 <= record["score"] <= 1, name
    assert record["seconds"]["total"] > 0
    for kind in ("heatmap", "mask", "overlay"):
      written = np.asarray(Image.open(record[kind]))
      assert written.shape[:2] == (record["height"], record["width"]), (name, kind)
  assert records["sub/one_pixel.png"]["height"] == 1
  # photo.jpg and photo.png keep apart; the folder tree is mirrored.
  assert {pathlib.Path(records[n]["heatmap"]).name for n in ("photo.jpg", "photo.png")} == {
      "photo_jpg_heatmap.png",
      "photo_png_heatmap.png",
  }
  assert (output / "sub" / "deep_mask.png").is_file()


def test_api_and_cli_give_the_same_map(cli_run, localizer, user_folder):
  _, _, records = cli_run
  for name in ("photo.jpg", "sub/deep.tif", "sub/one_pixel.png"):
    record = records[name]
    probabilities = localizer.predict(image_io.read_image(user_folder / name))
    assert record["score"] == pytest.approx(float(probabilities.max()), abs=1e-6)
    np.testing.assert_array_equal(
        np.asarray(Image.open(record["heatmap"])), visualize.colorize_heatmap(probabilities)
    )
    np.testing.assert_array_equal(np.asarray(Image.open(record["mask"])) > 0, probabilities >= 0.5)


def test_predict_returns_probabilities_at_the_input_resolution(localizer):
  image = _photo(123, 500)  # Tile mode: 3 windows in one batch.
  for tile in (False, True):
    probabilities = localizer.predict(image, tile=tile)
    assert probabilities.shape == (123, 500) and probabilities.dtype == np.float32
    assert 0 <= probabilities.min() and probabilities.max() <= 1


def test_tile_mode_on_one_window_equals_the_resized_prediction(localizer):
  image = _photo(256, 256)
  np.testing.assert_allclose(
      localizer.predict(image, tile=True), localizer.predict(image), atol=1e-6
  )


def test_tile_mode_sees_full_resolution(localizer):
  image = _photo(300, 400)  # 2 x 2 windows.
  tiled = localizer.predict(image, tile=True)
  windows = np.stack(
      [image[:256, :256], image[:256, -256:], image[-256:, :256], image[-256:, -256:]]
  )
  corners = localizer.predict_batch(windows)
  # Image corners are covered by one window each, so they hold that window's prediction.
  np.testing.assert_allclose(tiled[:8, :8], corners[0, :8, :8], atol=1e-5)
  np.testing.assert_allclose(tiled[:8, -8:], corners[1, :8, -8:], atol=1e-5)
  np.testing.assert_allclose(tiled[-8:, :8], corners[2, -8:, :8], atol=1e-5)
  np.testing.assert_allclose(tiled[-8:, -8:], corners[3, -8:, -8:], atol=1e-5)


def test_tile_mode_writes_full_resolution_outputs(localizer, tmp_path):
  Image.fromarray(_photo(700, 900)).save(tmp_path / "large.jpg", quality=95)
  failures = predict.predict_files(
      localizer, [tmp_path / "large.jpg"], tmp_path / "out", tile=True, progress=None
  )
  record = json.loads((tmp_path / "out" / predict.PREDICTIONS_FILE).read_text())
  assert failures == 0 and record["mode"] == "tile"
  assert np.asarray(Image.open(record["overlay"])).shape == (700, 900, 3)


def test_predict_batch_pads_without_changing_results(localizer):
  images = np.stack([_photo(256, 256) for _ in range(5)])  # One chunk of 4 and one of 1.
  together = localizer.predict_batch(images)
  assert together.shape == (5, 256, 256)
  np.testing.assert_allclose(together[4], localizer.predict_batch(images[4:])[0], atol=1e-5)
  np.testing.assert_allclose(together[1], localizer.predict_batch(images[:3])[1], atol=1e-5)


def test_wrong_inputs_are_refused_with_the_shape_expected(localizer):
  with pytest.raises(ValueError, match="uint8 RGB image"):
    localizer.predict(np.zeros((10, 10, 3), np.float32))
  with pytest.raises(ValueError, match="uint8 RGB image"):
    localizer.predict(np.zeros((10, 10), np.uint8))
  with pytest.raises(ValueError, match=r"expects \(B, 256, 256, 3\)"):
    localizer.predict_batch(np.zeros((2, 128, 128, 3), np.uint8))


def test_model_input_is_resized_like_the_training_pipeline():
  image = _photo(300, 410)
  expected, _ = input_pipeline.resize_pair(image, np.zeros(image.shape[:2], np.uint8), 256)
  np.testing.assert_array_equal(image_io.resize_image(image, 256, 256), expected)


def test_checkpoint_paths_and_steps(workdir, tmp_path):
  latest = weights.load(workdir)
  assert latest.step == trained_run.NUM_TRAIN_STEPS and latest.variant == "paper"
  first = weights.load(workdir / "checkpoints" / "1")
  assert first.step == 1
  assert not np.allclose(
      first.variables["params"]["decoder"]["classifier"]["kernel"],
      latest.variables["params"]["decoder"]["classifier"]["kernel"],
  )
  metrics = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  auc = {m["step"]: m["pooled/pixel_auc"] for m in metrics if m["split"] == "validation"}
  assert layout.resolve(workdir / "checkpoints", "best").step == max(auc, key=auc.get)
  assert layout.resolve(workdir / "checkpoints", 1).step == 1
  with pytest.raises(layout.CheckpointNotFoundError, match="has no step 7"):
    weights.load(workdir, step=7)
  with pytest.raises(layout.CheckpointNotFoundError, match="No checkpoint found at"):
    weights.load(tmp_path)
  lonely_step = tmp_path / "copied" / "checkpoints" / "2"
  shutil.copytree(workdir / "checkpoints" / "2", lonely_step)
  with pytest.raises(layout.CheckpointNotFoundError, match="config.json is missing"):
    weights.load(lonely_step)


def test_model_fields_added_after_the_run_keep_their_defaults(workdir):
  run_config = layout.read_config(layout.Run(workdir))
  del run_config.model["patch_order"]
  model_config = models.saved_model_config(run_config.model)
  assert model_config.patch_order == models.model_config("paper").patch_order
  assert model_config.encoder_features == tuple(run_config.model.encoder_features) == (4, 4, 4, 4)


def test_checkpoint_of_another_variant_or_size_is_refused(workdir):
  with pytest.raises(
      weights.ModelVariantMismatchError,
      match="holds a 'paper' model.*asks for the 'hled' variant",
  ):
    weights.load(workdir, model_config=models.model_config("hled"))
  with pytest.raises(
      weights.ModelVariantMismatchError,
      match="do not fit the 'paper' model that the --config describes",
  ):
    weights.load(workdir, model_config=models.model_config("paper"))  # Full widths.


def test_output_stems_never_collide():
  paths = [pathlib.Path(p) for p in ("a/x.jpg", "a/x.png", "b/x.jpg", "y.tif", "y.tif")]
  assert [s.as_posix() for s in predict.output_stems(paths)] == [
      "a/x_jpg",
      "a/x_png",
      "b/x",
      "y_tif",
      "y_tif_2",
  ]


def test_cli_with_no_image_to_predict_fails(workdir, tmp_path):
  """A folder without images: a warning-free error and exit 1, not "Done"."""
  empty = tmp_path / "empty"
  empty.mkdir()
  (empty / "notes.txt").write_text("no image here")
  result = subprocess.run(
      [
          sys.executable,
          "-m",
          "lstm_endec_jax.predict",
          f"--checkpoint={workdir}",
          f"--output={tmp_path / 'out'}",
          str(empty),
      ],
      cwd=trained_run.REPO_ROOT,
      capture_output=True,
      text=True,
      timeout=300,
  )
  assert result.returncode == 1
  assert f"error: no image found in {empty}" in result.stderr
  assert "Done" not in result.stderr


def test_cli_falls_back_from_a_corrupt_latest_checkpoint(workdir, user_folder, tmp_path):
  """As training does: the unreadable step is named in one line and the previous one used; asked
  for by --step, it is an error that suggests another step."""
  copy = tmp_path / "run"
  shutil.copytree(workdir, copy)
  latest = max(int(p.name) for p in (copy / "checkpoints").iterdir() if p.name.isdigit())
  for path in (copy / "checkpoints" / str(latest) / "state").rglob("*"):
    if path.is_file():
      path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
  command = [
      sys.executable,
      "-m",
      "lstm_endec_jax.predict",
      f"--checkpoint={copy}",
      f"--output={tmp_path / 'out'}",
      str(user_folder / "photo.png"),
  ]
  result = subprocess.run(
      command, cwd=trained_run.REPO_ROOT, capture_output=True, text=True, timeout=300
  )
  assert result.returncode == 0, result.stderr[-3000:]
  assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) < 12
  assert f"checkpoints/{latest} is unreadable" in result.stderr
  assert f"step {latest - 1} of" in result.stderr
  result = subprocess.run(
      command + [f"--step={latest}"],
      cwd=trained_run.REPO_ROOT,
      capture_output=True,
      text=True,
      timeout=300,
  )
  assert result.returncode == 1 and "Traceback" not in result.stderr
  assert "Pick another step with --step" in result.stderr


def test_a_second_run_into_the_same_output_keeps_the_first_runs_lines(localizer, tmp_path):
  for name in ("a.png", "b.png"):
    Image.fromarray(_photo(64, 64)).save(tmp_path / name)
    predict.predict_files(localizer, [tmp_path / name], tmp_path / "out", progress=None)
  lines = (tmp_path / "out" / predict.PREDICTIONS_FILE).read_text().splitlines()
  assert [pathlib.Path(json.loads(line)["image"]).name for line in lines] == ["a.png", "b.png"]
