"""Evaluation of a real (smoke) training run's checkpoint, clean and under distortions."""

import json
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

from lstm_endec_jax import evaluate
from lstm_endec_jax.data import distortions
from lstm_endec_jax.runs import layout
import trained_run


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
  return trained_run.trained_workdir(tmp_path_factory)


def levels_span(table, name):
  levels = table["distortions"][name]["levels"]
  return levels[0], levels[-1]


@pytest.fixture(scope="module")
def evaluation(workdir, tmp_path_factory):
  """The checkpoint evaluated on the whole test split, clean and under every distortion."""
  output_dir = tmp_path_factory.mktemp("evaluation")
  config = trained_run.smoke_config(trained_run.data_dir(workdir))
  return (
      evaluate.evaluate_checkpoint(config, workdir, output_dir=output_dir, robustness=True),
      output_dir,
  )


def test_evaluation_reproduces_the_training_runs_test_metrics(workdir, evaluation):
  metrics, output_dir = evaluation
  written = json.loads((output_dir / "eval.json").read_text())
  from_training = json.loads((workdir / "eval.json").read_text())
  assert written["step"] == from_training["step"] == trained_run.NUM_TRAIN_STEPS
  assert written["split"] == "test" and written["variant"] == "paper"
  assert written["metrics"]["num_images"] == 8
  for name, value in from_training["metrics"].items():
    assert metrics[name] == pytest.approx(value, rel=1e-6, nan_ok=True), name
  assert np.asarray(Image.open(output_dir / "roc.png")).ndim == 3
  assert (output_dir / "samples.png").is_file()


def test_robustness_table_covers_every_level_in_order(evaluation):
  clean, output_dir = evaluation
  table = json.loads((output_dir / "robustness.json").read_text())
  assert table["clean"]["pooled/pixel_auc"] == pytest.approx(clean["pooled/pixel_auc"])
  assert list(table["distortions"]) == ["jpeg", "blur", "noise"]
  for name, levels in distortions.ROBUSTNESS_LEVELS.items():
    entry = table["distortions"][name]
    assert entry["levels"] == levels and len(entry["metrics"]) == len(levels)
    assert all(set(m) == set(clean) for m in entry["metrics"])
    strengths = np.array(levels) * (-1 if name == "jpeg" else 1)  # JPEG: lower quality = stronger.
    assert np.all(np.diff(strengths) > 0), name
  assert levels_span(table, "jpeg") == (100, 50) and levels_span(table, "blur") == (3, 23)
  markdown = (output_dir / "robustness.md").read_text().splitlines()
  assert len(markdown) == 2 + 1 + sum(map(len, distortions.ROBUSTNESS_LEVELS.values()))
  assert all(line.count("|") == len(evaluate.TABLE_METRICS) + 3 for line in markdown)
  plot = np.asarray(Image.open(output_dir / "robustness.png"))
  assert plot.shape[1] > plot.shape[0]  # One panel per distortion, side by side.
  # A distortion changes what the model sees: not every level can give the clean metrics.
  aucs = [m["pooled/pixel_auc"] for e in table["distortions"].values() for m in e["metrics"]]
  assert any(a != pytest.approx(clean["pooled/pixel_auc"], abs=1e-9) for a in aucs)


def test_distorted_batches_do_not_depend_on_the_batch_size():
  images = np.random.default_rng(0).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
  as_one = next(evaluate.distorted([{"image": images}], "noise", 7, seed=3))["image"]
  in_two = [
      b["image"]
      for b in evaluate.distorted(
          [{"image": images[:2]}, {"image": images[2:]}], "noise", 7, seed=3
      )
  ]
  np.testing.assert_array_equal(as_one, np.concatenate(in_two))
  assert not np.array_equal(as_one, images)


def test_table_rows_and_nan_as_null(tmp_path):
  clean = {"a": 0.5, "b": float("nan")}
  results = {"blur": {3: {"a": 0.4, "b": 0.1}, 7: {"a": 0.3, "b": 0.2}}}
  assert evaluate.robustness_table(results, clean, metrics=("a", "b")).splitlines() == [
      "| distortion | strength | a | b |",
      "|---|---|---|---|",
      "| none | - | 0.5000 | nan |",
      "| blur (Gaussian blur kernel size) | 3 | 0.4000 | 0.1000 |",
      "| blur (Gaussian blur kernel size) | 7 | 0.3000 | 0.2000 |",
  ]
  layout.write_json(tmp_path / "x.json", {"clean": clean})
  assert json.loads((tmp_path / "x.json").read_text()) == {"clean": {"a": 0.5, "b": None}}


def test_cli_refuses_a_checkpoint_of_another_variant(workdir):
  result = subprocess.run(
      [
          sys.executable,
          "-m",
          "lstm_endec_jax.evaluate",
          "--config=configs/hled.py",
          f"--checkpoint={workdir}",
      ],
      cwd=trained_run.REPO_ROOT,
      capture_output=True,
      text=True,
      timeout=300,
  )
  assert result.returncode != 0
  assert "holds a 'paper' model, but the config asks for the 'hled' variant" in result.stderr


def test_training_and_the_evaluate_command_write_one_eval_json_schema(workdir, tmp_path):
  """Same keys from `main` (training's final evaluation) and from `evaluate`; strict JSON."""
  from_training = json.loads((workdir / "eval.json").read_text())
  config = trained_run.smoke_config(trained_run.data_dir(workdir))
  config.num_test_batches = 1
  evaluate.evaluate_checkpoint(config, workdir, output_dir=tmp_path)
  from_command = json.loads((tmp_path / "eval.json").read_text(), parse_constant=pytest.fail)
  assert (
      set(from_training)
      == set(from_command)
      == {"checkpoint", "step", "variant", "dataset", "split", "max_batches", "metrics"}
  )
  assert set(from_training["metrics"]) == set(from_command["metrics"])
  assert from_training["dataset"] == from_command["dataset"] == "synthetic_splice/tiny"
