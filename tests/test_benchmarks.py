"""The benchmark suite runs at its smallest sizes and writes what the README table is made from.

Speed itself is not tested here (benchmarks/ measures it); these runs use configs/smoke.py's tiny
widths and one or two timed calls. feature_extraction.py has its own smallest-size test in
test_features.py.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import common
from benchmarks import conv_layers
from benchmarks import cpu_settings
from benchmarks import flop_count
from benchmarks import inference
from benchmarks import predict_large
from benchmarks import run_all
from benchmarks import train_step
from lstm_endec_jax.model import models


def test_timing_rates_are_median_and_spread_over_repeats():
  timing = common.Timing((2.0, 1.0, 4.0))
  rate = timing.rate(8)
  assert rate["median"] == 4.0 and rate["min"] == 2.0 and rate["max"] == 8.0
  assert rate["min"] <= rate["q1"] <= rate["median"] <= rate["q3"] <= rate["max"]
  assert timing.to_json()["repeats"] == 3


def test_train_step_smallest_size_reports_flops_memory_and_profile(tmp_path):
  output = tmp_path / "train_step.json"
  # One device count (one process) keeps the test short; test_train checks that the step on two
  # devices equals the step on one.
  train_step.main(["--small", "--device_counts=1", f"--output={output}"])
  result = json.loads(output.read_text())
  headline = result["headline"]
  assert result["images_per_second"] == headline["images_per_second"]["median"] > 0
  assert headline["finite_loss"]
  assert [entry["num_devices"] for entry in result["scaling"]] == [1]
  flops = headline["flops_per_step"]
  # Elementwise work (BatchNorm, Adam, loss) is a large part of the tiny model's FLOPs, so the
  # count of matmul FLOPs is below XLA's total, but of the same size.
  assert 1.0 <= flops["xla_over_count"] < 3.0
  assert headline["matmul_reference"]["flops_per_second"]["median"] > 0
  assert headline["memory_bytes"]["xla_buffers"]["peak"] > 0
  share = headline["profile"]["share"]
  assert sum(share.values()) == pytest.approx(1.0)
  for part in (
      "features",
      "encoder forward",
      "encoder backward",
      "decoder forward",
      "LSTM forward",
      "optimizer and metrics",
  ):
    assert part in share, part
  assert "convolution" in headline["profile"]["seconds_per_step_by_op_kind"]
  for part in ("encoder", "decoder"):
    assert all(seconds > 0 for seconds in headline["part_seconds"][part].values()), part
  assert any(row[0] == "train step time by part, each part alone" for row in result["summary"])
  assert all(
      headline["conv_directions"][name]["flops_per_second"]["median"] > 0
      for name in ("forward", "input gradient", "weight gradient")
  )
  assert set(result["profile_groups"]) >= {"features", "encoder forward", "backward"}
  assert [row[0] for row in result["profile_table"]][:4] == [
      "features",
      "LSTM",
      "encoder",
      "decoder",
  ]
  assert result["environment"]["jax"]


def test_scaling_is_relative_to_the_fewest_devices():
  runs = {
      count: {"images_per_second": {"median": rate}, "compile_seconds": 1.0, "memory_bytes": {}}
      for count, rate in ((1, 4.0), (2, 6.0), (4, 8.0))
  }
  table = train_step.scaling_table(runs)
  assert [entry["speedup"] for entry in table] == [1.0, 1.5, 2.0]
  assert [entry["efficiency"] for entry in table] == [1.0, 0.75, 0.5]


def test_profile_attributes_unnamed_weight_gradients_to_the_backward_pass():
  hlo = """HloModule jit_train_step, entry_computation_layout={()->f32[]}

%fused (p: f32[4]) -> f32[4] {
  %p = f32[4]{0} parameter(0)
  ROOT %m = f32[4]{0} multiply(%p, %p), metadata={op_name="jit(train_step)/jvp(LSTMEnDec)/encoder/Conv_0/mul"}
}

ENTRY %main (x: f32[4]) -> f32[4] {
  %x = f32[4]{0} parameter(0)
  %forward = f32[4]{0} fusion(%x), kind=kLoop, calls=%fused
  %backward = f32[4]{0} negate(%forward), metadata={op_name="jit(train_step)/transpose(jvp(LSTMEnDec))/decoder/Conv_0/neg"}
  %weight_gradient = f32[4]{0} convolution(%forward, %backward), window={size=1}
  ROOT %sum = f32[4]{0} all-reduce(%weight_gradient), to_apply=%fused
}
"""
  parts = train_step.hlo_parts(hlo)
  assert parts["forward"] == "encoder forward"
  assert parts["backward"] == "decoder backward"
  assert parts["weight_gradient"] == "decoder backward"
  assert parts["sum"] == "gradient all-reduce"
  modules = train_step.hlo_parts(hlo, by_module=True)
  assert modules["forward"] == "encoder/Conv_0 forward"
  assert modules["weight_gradient"] == "decoder/Conv_0 backward"
  kinds = train_step.hlo_op_kinds(hlo)
  assert kinds["forward"] == "elementwise fusion"
  assert kinds["weight_gradient"] == "convolution" and kinds["sum"] == "all-reduce"


def test_profile_names_operations_outside_submodules_as_the_part_s_own():
  assert (
      train_step.part_of("jit(train_step)/jvp(LSTMEnDec)/encoder/ge", by_module=True)
      == "encoder/own ops forward"
  )
  assert (
      train_step.part_of("jit(train_step)/jvp(LSTMEnDec)/jit(_resampling_features)/dot")
      == "features"
  )
  assert train_step.part_of("jit(train_step)/transpose(jvp())/mul") == "loss backward"


def test_inference_smallest_size_times_forward_and_predict_end_to_end(tmp_path):
  output = tmp_path / "inference.json"
  inference.main(["--small", f"--output={output}"])
  result = json.loads(output.read_text())
  assert [entry["batch_size"] for entry in result["forward"]] == [1, 2]
  assert all(entry["images_per_second"]["median"] > 0 for entry in result["forward"])
  end_to_end = result["predict"]
  assert end_to_end["num_images"] == 2 and end_to_end["images_per_second"]["median"] > 0
  assert all(seconds > 0 for seconds in end_to_end["median_seconds_per_image"].values())
  assert len(result["summary"]) == 3


def test_run_all_writes_a_json_per_benchmark_and_the_summary_table(tmp_path):
  run_all.main(
      ["--small", "--benchmarks=input_pipeline,metrics_speed", f"--results_dir={tmp_path}"]
  )
  for name in ("input_pipeline", "metrics_speed"):
    result = json.loads((tmp_path / f"{name}.json").read_text())
    assert "error" not in result, result.get("error")
    assert result["run"]["seconds"] > 0
  summary = (tmp_path / "SUMMARY.md").read_text()
  assert f"jax {common.environment()['jax']}" in summary
  assert "| measure | value | spread / note |" in summary
  assert "input pipeline, 0 worker(s)" in summary and "metrics_speed" in summary


def test_summary_states_the_pipeline_lead_and_failures():
  environment = common.environment()
  run = {"load_average_before": [1.0, 1.0, 1.0]}
  results = {
      "train_step": {
          "environment": environment,
          "run": run,
          "images_per_second": 2.0,
          "summary": [["train step", "2.00 images/s", ""]],
      },
      "input_pipeline": {
          "environment": environment,
          "run": run,
          "batch_size": 16,
          "results": [
              {
                  "worker_count": 0,
                  "images_per_second": 30.0,
                  "images_per_second_min": 29.0,
                  "images_per_second_max": 31.0,
                  "first_batch_seconds": 0.5,
              },
              {
                  "worker_count": 2,
                  "images_per_second": 50.0,
                  "images_per_second_min": 45.0,
                  "images_per_second_max": 55.0,
                  "first_batch_seconds": 2.0,
              },
          ],
      },
      "inference": {"environment": environment, "run": run, "error": "exit status 1: boom"},
  }
  summary = run_all.summary_markdown(results, small=False)
  assert "| input pipeline lead over the train step | 25.0x |" in summary
  assert "| inference | failed | exit status 1: boom |" in summary


def test_flop_count_counts_an_upsampled_conv_at_its_input_resolution():
  model = models.create_model(models.model_config("paper"))
  variables = models.variable_shapes(model)
  images = jax.ShapeDtypeStruct((1, 256, 256, 3), jnp.uint8)
  parts = flop_count.forward_flops_by_part(model, variables, images)
  # 16x16 maps of 256 encoder + 64 LSTM channels -> 9 taps x 64; 64x64x64 -> 9 x 16; then the
  # classifier, a plain 3x3 conv 16 -> 2 at 256x256.
  decoder = 2 * (16 * 16 * 320 * 9 * 64 + 64 * 64 * 64 * 9 * 16 + 256 * 256 * 16 * 9 * 2)
  assert parts["decoder"] == decoder
  assert set(parts) == {"encoder", "lstm", "decoder", "features"}


def test_cpu_settings_compute_the_same_step(tmp_path):
  """The package's CPU settings (its XLA flag, huge pages) and XLA's memory-optimized scheduler
  give jaxlib's default loss: only speed and memory may differ."""
  output = tmp_path / "cpu_settings.json"
  names = ["ynnpack", "package", "memory_scheduler"]
  cpu_settings.main(["--small", f"--settings={','.join(names)}", f"--output={output}"])
  result = json.loads(output.read_text())
  settings = result["settings"]
  assert list(settings) == names and result["baseline"] == "ynnpack"
  losses = [values["loss"] for values in settings.values()]
  assert max(losses) - min(losses) < 1e-5 * abs(losses[0])
  assert settings["ynnpack"]["speedup"] == 1.0
  assert settings["package"]["glibc_tunables"] == "glibc.malloc.hugetlb=1"
  assert all(values["seconds_per_step"] > 0 for values in settings.values())
  assert all(values["peak_rss_bytes"] > 0 for values in settings.values())


@pytest.mark.parametrize("settings", ["package,package", "package,ynnpack,fast"])
def test_cpu_settings_need_distinct_known_names(settings, capsys):
  with pytest.raises(SystemExit) as exit_info:
    cpu_settings.main([f"--settings={settings}"])
  assert exit_info.value.code == 2
  assert "--settings" in capsys.readouterr().err


def test_predict_large_reports_memory_and_stage_times(tmp_path):
  output = tmp_path / "predict_large.json"
  predict_large.main(["--small", f"--output={output}"])
  result = json.loads(output.read_text())
  assert result["image"] == [900, 1200] and result["peak_rss_bytes"] > 0
  assert set(result["image_seconds"]) == {"read", "predict", "write", "total"}
  assert all(size > 0 for size in result["png_bytes"].values())


def test_photographs_carried_to_the_gpu_machine_decode_to_the_same_pixels(tmp_path):
  """benchmarks/gpu: WebP halves written here, staged there as PNG at the package's paths."""
  from benchmarks.gpu import prepare
  from benchmarks.gpu import run as gpu_run
  from tfds_builders.synthetic_splice import photos

  files = ["church.jpg", "tomato_124.png", "flowers1.png"]  # JPEG, PNG, PNG with alpha
  prepare.write_photos(tmp_path / "carry", files)
  staged = [
      gpu_run.stage_photos(tmp_path / "carry" / half, tmp_path / "root")
      for half in ("photos_a", "photos_b")
  ]
  assert sum(staged) == len(files)
  for file in files:
    original = photos.load_photo(photos.source_dir("mvtb") / file)
    restored = photos.load_photo(tmp_path / "root" / "mvtbdata" / "images" / file)
    np.testing.assert_array_equal(restored, original)


def test_winograd_convolution_equals_xla_in_every_direction():
  """F(2x2, 3x3) and F(4x4, 3x3) against `lax.conv_general_dilated`, forward and through
  autodiff (both gradients), in float32; a batch of 2 at 8x8 with 3 -> 5 channels."""
  keys = jax.random.split(jax.random.key(1), 3)
  x = jax.random.normal(keys[0], (2, 8, 8, 3))
  w = jax.random.normal(keys[1], (3, 3, 3, 5))
  dy = jax.random.normal(keys[2], (2, 8, 8, 5))
  expected_output, pullback = jax.vjp(conv_layers.convolution, x, w)
  for tile in (2, 4):
    output, winograd_pullback = jax.vjp(
        lambda x, w: conv_layers.winograd_convolution(x, w, tile), x, w
    )
    pairs = [(output, expected_output), *zip(winograd_pullback(dy), pullback(dy))]
    for got, want in pairs:
      error = float(jnp.abs(got - want).max() / jnp.abs(want).max())
      assert error <= conv_layers.TOLERANCE["float32"], (tile, error)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_shifted_dots_equal_xla_in_every_direction(dtype):
  """The nine-slice matrix products against XLA's convolution, forward, input gradient and weight
  gradient, on a non-square 6x10 image (a wrong row stride on the flattened grid shows)."""
  keys = jax.random.split(jax.random.key(2), 3)
  x = jax.random.normal(keys[0], (2, 6, 10, 3)).astype(dtype)
  w = jax.random.normal(keys[1], (3, 3, 3, 5)).astype(dtype)
  dy = jax.random.normal(keys[2], (2, 6, 10, 5))
  output, pullback = jax.vjp(conv_layers.convolution, x, w)
  expected = {"forward": output}
  expected["input_gradient"], expected["weight_gradient"] = pullback(dy.astype(output.dtype))
  for direction, rewrites in conv_layers.FORMULATIONS.items():
    got = rewrites["shifted_dots"][0](x, w, dy).astype(jnp.float32)
    want = expected[direction].astype(jnp.float32)
    assert got.shape == want.shape, direction
    error = float(jnp.abs(got - want).max() / jnp.abs(want).max())
    assert error <= conv_layers.TOLERANCE[dtype], (direction, error)


def test_conv_layers_times_every_direction_and_checks_the_rewrites(tmp_path):
  output = tmp_path / "conv_layers.json"
  conv_layers.main(["--small", "--dtypes=float32,bfloat16", f"--output={output}"])
  result = json.loads(output.read_text())
  config = common.load_config(common.REPO_ROOT / "configs" / "base.py")
  common.shrink_model(config.model)
  for dtype in ("float32", "bfloat16"):  # two distinct convolutions per encoder stage
    layers = [layer for layer in result["layers"] if layer["dtype"] == dtype]
    assert len(layers) == 2 * len(config.model.encoder_features)
  for layer in result["layers"]:
    for direction in ("forward", "input_gradient", "weight_gradient"):
      assert layer[direction]["flops_per_second"]["median"] > 0
    rewrites = [
        name
        for name, value in layer.items()
        if isinstance(value, dict) and "relative_error" in value
    ]
    assert len(rewrites) == len(conv_layers.rewrites_for(layer["dtype"]))
    tolerance = conv_layers.TOLERANCE[layer["dtype"]]
    assert all(layer[name]["relative_error"] <= tolerance for name in rewrites)
  assert set(result["totals"]) == {"float32", "bfloat16"} and "cpu_isa" in result["environment"]
