"""The studies in experiments/ at their smallest size, and the helpers that aggregate them.

One training run serves all four scripts: `base` (architecture), `hilbert` (patch order), `image`
(global context) and `float32` (precision) are the same config, so the later studies reuse it; the
global-context study adds its patch-wise testing of that run, the precision study one bfloat16 run.
"""

import json
import pathlib

from absl import flags
from absl.testing import flagsaver
import numpy as np
import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(name="experiments")
def fixture_experiments(monkeypatch):
  """The study modules, importable as `python -m experiments.<study>` sees them."""
  monkeypatch.syspath_prepend(str(REPO_ROOT))
  from experiments import architecture, common, global_context, patch_order, precision

  return architecture, patch_order, global_context, precision, common


def test_scaled_config_keeps_arm_settings_and_takes_scale_sizes(experiments):
  _, patch_order, _, _, common = experiments
  scale = common.SCALES["cpu"]
  raster = patch_order.STUDY.arms[1]
  config = common.run_config(raster, scale, seed=2)
  assert config.model.patch_order == "raster"
  assert config.seed == 2 and config.num_train_steps == scale.num_train_steps
  assert config.model.encoder_features == (4, 8, 16, 32)  # (32, 64, 128, 256) / 8
  assert config.learning_rate == pytest.approx(1e-4 * scale.learning_rate_factor)
  hled = common.run_config(common.Arm("hled", "hled", ""), scale, seed=0)
  assert hled.model.decoder_features == (2,)  # the 2-map 1x1 decoder does not vanish
  hilbert = common.run_config(patch_order.STUDY.arms[0], scale, seed=2)
  base = common.run_config(common.Arm("base", "base", ""), scale, seed=2)
  assert common.run_dir_name(patch_order.STUDY.arms[0], hilbert) == common.run_dir_name(
      common.Arm("base", "base", ""), base
  )
  assert common.run_dir_name(raster, config) != common.run_dir_name(
      common.Arm("base", "base", ""), base
  )


def test_report_states_claims_with_paired_seed_differences(experiments, tmp_path):
  architecture, _, _, _, common = experiments
  study = architecture.STUDY
  path = common.results_path(tmp_path, study)
  rng = np.random.default_rng(0)
  for seed in range(3):
    for arm, auc in (("base", 0.8), ("endec", 0.7), ("fcn", 0.75)):
      metrics = {
          m: float(rng.uniform(0.2, 0.6))
          for m in common.HEADLINE_METRICS + common.SECONDARY_METRICS
      }
      metrics["pooled/pixel_auc"] = auc + 0.01 * seed
      common.append_jsonl(
          path,
          {
              "arm": arm,
              "seed": seed,
              "scale": "cpu",
              "metrics": metrics,
              "wall_seconds": 60.0,
              "curves": {
                  "train/loss": [[1, 0.5], [2, 0.4]],
                  "validation/pooled/pixel_auc": [[2, 0.6]],
              },
          },
      )
  report = common.write_report(study, common.SCALES["cpu"], tmp_path).read_text()
  assert "| `base` > `endec` | 0.100 ± 0.000 |" in report
  assert "3/3 | holds, every seed, mean > 2 std |" in report
  assert "| `endec` > `fcn` | -0.050 ± 0.000 |" in report
  assert "0/3 | reversed in every seed |" in report
  assert "Arms by mean pixel AUC: `base` > `fcn` > `endec`." in report
  assert (tmp_path / "architecture_cpu_bars.png").stat().st_size > 0
  assert (tmp_path / "architecture_cpu_curves.png").stat().st_size > 0


def test_patch_windows_tile_the_image(experiments):
  _, _, global_context, _, _ = experiments
  covered = np.zeros((7, 9), int)
  for window in global_context.patch_windows(7, 9, 2):
    covered[window] += 1
  assert np.all(covered == 1)


def test_every_study_runs_at_test_scale(experiments, tmp_path):
  architecture, patch_order, global_context, precision, common = experiments
  flags.FLAGS.mark_as_parsed()
  results = tmp_path / "results"
  common_flags = dict(
      scale="test",
      workdir_root=str(tmp_path / "runs"),
      results_dir=str(results),
      data_dir=str(tmp_path / "tfds"),
      compilation_cache=False,
  )
  runs = [
      (architecture, ["base"]),
      (patch_order, ["hilbert"]),
      (global_context, ["image", "image_on_patch"]),
      (precision, ["float32", "bfloat16"]),
      (architecture, ["base"]),
  ]
  for module, arms in runs:
    with flagsaver.flagsaver(arms=arms, **common_flags):
      module.main([module.__name__])

  records = {
      study: common.read_jsonl(results / f"{study}.jsonl")
      for study in ("architecture", "patch_order", "global_context", "precision")
  }
  assert [r["arm"] for r in records["architecture"]] == ["base"]  # the rerun appended nothing
  assert [r["arm"] for r in records["global_context"]] == ["image", "image_on_patch"]
  assert [r["arm"] for r in records["precision"]] == ["float32", "bfloat16"]
  bfloat16_run = records["precision"].pop()
  workdirs = {r["workdir"] for rs in records.values() for r in rs}
  assert len(workdirs) == 1  # base, hilbert, image and float32 are one run
  bfloat16_config = json.loads((pathlib.Path(bfloat16_run["workdir"]) / "config.json").read_text())
  assert bfloat16_config["model"]["dtype"] == "bfloat16"
  assert 0.0 <= bfloat16_run["metrics"]["pooled/pixel_auc"] <= 1.0
  (base,) = records["architecture"]
  eval_json = json.loads((pathlib.Path(base["workdir"]) / "eval.json").read_text())
  assert base["metrics"] == eval_json["metrics"]
  assert base["curves"]["train/loss"] and base["curves"]["validation/pooled/pixel_auc"]
  on_patches = records["global_context"][1]["metrics"]
  assert on_patches["num_images"] == eval_json["metrics"]["num_images"]
  assert 0.0 <= on_patches["pooled/pixel_auc"] <= 1.0
  assert on_patches["pooled/pixel_auc"] != eval_json["metrics"]["pooled/pixel_auc"]
  for study in records:
    assert "scale `test`" in (results / f"{study}_test.md").read_text()
    assert (results / f"{study}_test_curves.png").stat().st_size > 0
