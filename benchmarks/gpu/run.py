r"""The one-shot GPU run: speed, PyTorch on the same GPU, and a training run, in one time budget.

On the lent GPU machine (`benchmarks/gpu/device.sh` installs the carried wheels, then):

  python3 -m benchmarks.gpu.run --stage=.gpu_carry/photos_a     # call 1: stage half the photos
  python3 -m benchmarks.gpu.run --output=$OUT --budget_s=480    # call 2 (device.sh)

and on a CPU, end to end with a tiny model and dataset (what the tests of this script run):

  python -m benchmarks.gpu.run --small --output=/tmp/gpu_run --budget_s=120

In the budget, in this order, each part skipped (and said so) when too little time is left:
  1. the best rate XLA reaches on the network's 3x3 convolution shapes, float32 and bfloat16;
  2. the train step at batch 16 / 64 / 256 in float32 and bfloat16: images/s, compile time, peak
     device memory, and its FLOPs as a fraction of (1)'s rate; the forward pass and the
     resampling-feature extraction, images/s;
  3. the same network in PyTorch on the same GPU, eager and `torch.compile`, bfloat16 autocast,
     against ours (`benchmarks/pytorch_comparison.py`, outputs checked before timing);
  4. `synthetic_splice/default` built there, the `paper` model trained in bfloat16 at the largest
     batch that ran, for the minutes left; its test evaluation and exported weights.
`gpu_run.json` is rewritten after every part, so a cut-off run still returns what it measured.
"""

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from absl import app
from absl import flags

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
PHOTO_ROOT = pathlib.Path("/tmp/lstm_endec_photos")  # holds a package folder `mvtbdata`
WEIGHTS_NAME = "gpu"
FINISH_RESERVE_S = 60  # evaluation, export and copying after training
# A part starts only while more than this share of the budget is left: the rest is training's.
TRAIN_STEP_SHARE, FORWARD_SHARE, PYTORCH_SHARE = 0.55, 0.5, 0.45


def define_flags() -> None:
  """The command's flags; defined only when this module is the program."""
  flags.DEFINE_string("stage", None, "Only restore this folder of WebP photos, then exit.")
  flags.DEFINE_string("output", os.environ.get("OUT", "/tmp/gpu_run"), "Result folder.")
  flags.DEFINE_integer("budget_s", 480, "Seconds for everything; the run stops itself.")
  flags.DEFINE_bool("small", False, "Tiny model, tiny dataset, batch 2: a CPU check.")
  flags.DEFINE_string("workdir", "/tmp/gpu_workdir", "Training workdir.")


def stage_photos(folder: pathlib.Path, root: pathlib.Path = PHOTO_ROOT) -> int:
  """Decodes the carried WebP photographs back to PNG files at their package paths."""
  import PIL.Image  # pylint: disable=g-import-not-at-top

  images = root / "mvtbdata" / "images"
  images.mkdir(parents=True, exist_ok=True)
  (root / "mvtbdata" / "__init__.py").touch()
  files = json.loads((folder / "manifest.json").read_text())
  for file in files:
    target = images / file
    target.parent.mkdir(parents=True, exist_ok=True)
    with PIL.Image.open(folder / (file + ".webp")) as image:
      image.convert("RGB").save(target, format="PNG")  # lossless, whatever the name says
  return len(files)


class Budget:

  def __init__(self, seconds: float):
    self.total = seconds
    self.deadline = time.monotonic() + seconds

  def left(self) -> float:
    return self.deadline - time.monotonic()


def conv_rates(batch: int, dtypes: Sequence[str], model_config) -> dict[str, Any]:
  """FLOP/s of XLA's 3x3 'SAME' convolution at the encoder's widths and resolutions."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  from benchmarks import common  # pylint: disable=g-import-not-at-top

  rates = {}
  for dtype in dtypes:
    rows = []
    side = 256
    for width in model_config.encoder_features:
      x = jnp.ones((batch, side, side, width), dtype)
      kernel = jnp.ones((3, 3, width, width), dtype)
      conv = jax.jit(
          lambda x, k: jax.lax.conv_general_dilated(
              x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
          )
      )
      flops = 2.0 * batch * side * side * 9 * width * width
      timing = common.time_calls(lambda: conv(x, kernel), warmup=2, repeats=5)
      rows.append({"shape": [batch, side, side, width, width], **timing.rate(flops)})
      side //= 2
    rates[dtype] = {"shapes": rows, "best_flops_per_second": max(r["median"] for r in rows)}
  return rates


def _config(small: bool, dtype: str, batch: int):
  from benchmarks import common  # pylint: disable=g-import-not-at-top

  config = common.load_config(REPO_ROOT / "configs" / ("smoke.py" if small else "base.py"))
  config.model.dtype = dtype
  config.batch_size = config.eval_batch_size = batch
  return config


def train_steps(small: bool, batches, dtypes, budget: Budget) -> list[dict[str, Any]]:
  """The package's parallel train step (benchmarks/train_step.py's measurement) per setting,
  while more than `TRAIN_STEP_SHARE` of the budget is left."""
  from benchmarks import train_step  # pylint: disable=g-import-not-at-top

  rows = []
  for dtype in dtypes:
    for batch in batches:
      if budget.left() < TRAIN_STEP_SHARE * budget.total:
        rows.append({"dtype": dtype, "batch_size": batch, "skipped": "budget"})
        continue
      try:
        measured = train_step.measure(
            _config(small, dtype, batch),
            argparse.Namespace(num_devices=0, warmup=2, repeats=5, detail=False),
        )
      except Exception as error:  # pylint: disable=broad-except  # e.g. out of memory
        rows.append(
            {
                "dtype": dtype,
                "batch_size": batch,
                "failed": f"{type(error).__name__}: {error}"[:400],
            }
        )
        continue
      rows.append({"dtype": dtype, **measured})
  return rows


def forward_and_features(small: bool, batch: int, dtype: str) -> dict[str, Any]:
  import jax  # pylint: disable=g-import-not-at-top

  from benchmarks import common  # pylint: disable=g-import-not-at-top
  from lstm_endec_jax.evaluation import evaluator  # pylint: disable=g-import-not-at-top
  from lstm_endec_jax.model import features, models  # pylint: disable=g-import-not-at-top
  from lstm_endec_jax.runtime import parallel  # pylint: disable=g-import-not-at-top

  config = _config(small, dtype, batch)
  mesh = parallel.create_mesh()
  variables = models.initial_variables(
      config.model, jax.random.key(0), image_size=config.dataset.image_size
  )
  images = parallel.global_batch(
      {"image": common.synthetic_batch(batch, config.dataset.image_size)["image"]}, mesh
  )["image"]
  forward, compile_s = common.compile_seconds(
      evaluator.make_parallel_probabilities(models.create_model(config.model), mesh),
      variables,
      images,
  )
  forward_timing = common.time_calls(lambda: forward(variables, images), warmup=2, repeats=5)
  extract = jax.jit(features.resampling_features)
  feature_timing = common.time_calls(lambda: extract(images), warmup=2, repeats=5)
  return {
      "dtype": dtype,
      "batch_size": batch,
      "forward_compile_seconds": compile_s,
      "forward_images_per_second": forward_timing.rate(batch),
      "features_images_per_second": feature_timing.rate(batch),
  }


def pytorch_comparison(small: bool, batch: int, dtype: str) -> dict[str, Any]:
  """Ours against PyTorch eager and compiled on the same GPU (skipped where torch is absent)."""
  try:
    import torch  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    return {"skipped": "torch is not installed"}
  if small:
    return {"skipped": "--small: the PyTorch model is the full `paper` network"}
  from benchmarks import pytorch_comparison as comparison  # pylint: disable=g-import-not-at-top

  settings = {
      "config": _config(small, dtype, batch),
      "variables": comparison.shipped_variables(),
      "warmup": 2,
      "threads": 0,
      "matmul_size": 8192,
      "torch_device": "cuda",
  }
  suffix = comparison.BFLOAT16_SUFFIX if dtype == "bfloat16" else ""
  contenders = [
      name + suffix for name in ("jax", "torch_eager_channels_last", "torch_compile_channels_last")
  ]
  return comparison.run(
      contenders, settings, rounds=5, tolerances={"float32": 0.05, "bfloat16": 0.05}
  )


def _subprocess_env() -> dict[str, str]:
  paths = [str(PHOTO_ROOT), str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]
  return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p))


def train_for_the_time_left(
    small: bool, batch: int, step_seconds: float, budget: Budget, workdir: pathlib.Path
) -> dict[str, Any]:
  """Builds the dataset there, then trains for the budget left (steps from the measured step
  time), evaluates the test split and exports the weights."""
  start = time.monotonic()
  dataset = "synthetic_splice/tiny" if small else "synthetic_splice/default"
  subprocess.run(
      [sys.executable, "-m", "lstm_endec_jax.build_dataset", f"--name={dataset}"],
      cwd=REPO_ROOT,
      env=_subprocess_env(),
      check=True,
  )
  build_s = time.monotonic() - start
  seconds = budget.left() - FINISH_RESERVE_S - 60  # the run's own compile and evaluations
  steps = max(1, int(seconds / step_seconds * 0.8))
  config = "configs/smoke.py" if small else "configs/pretrain_cpu.py"
  command = [
      sys.executable,
      "-m",
      "lstm_endec_jax.main",
      f"--config={config}",
      f"--workdir={workdir}",
      f"--config.num_train_steps={steps}",
      f"--config.batch_size={batch}",
      f"--config.eval_batch_size={batch}",
      f"--config.eval_every_steps={max(1, steps // 4)}",
      f"--config.checkpoint_every_steps={max(1, steps // 8)}",
      f"--config.warmup_steps={max(1, steps // 10)}",
  ]
  if not small:
    command += ["--config.model.dtype=bfloat16", "--config.learning_rate=1e-3"]
  log = workdir.parent / "train.log"
  with log.open("w") as output:
    try:
      completed = subprocess.run(
          command,
          cwd=REPO_ROOT,
          env=_subprocess_env(),
          stdout=output,
          stderr=subprocess.STDOUT,
          timeout=max(30, budget.left() - FINISH_RESERVE_S / 2),
      )
      returncode = completed.returncode
    except subprocess.TimeoutExpired:
      returncode = "timeout"
  export = subprocess.run(
      [
          sys.executable,
          "-m",
          "lstm_endec_jax.pretrained",
          f"--checkpoint={workdir}",
          "--step=best",
          f"--name={WEIGHTS_NAME}",
          f"--directory={workdir / 'export'}",
          f"--note=benchmarks/gpu/run.py: {' '.join(command[2:])}",
      ],
      cwd=REPO_ROOT,
      env=_subprocess_env(),
      capture_output=True,
      text=True,
  )
  return {
      "dataset": dataset,
      "build_seconds": build_s,
      "command": command[2:],
      "planned_steps": steps,
      "returncode": returncode,
      "train_seconds": time.monotonic() - start - build_s,
      "export": export.stdout.strip() or export.stderr.strip()[-500:],
  }


def _best_rate(rows: list[dict[str, Any]], dtype: str) -> dict[str, Any] | None:
  done = [r for r in rows if r.get("dtype") == dtype and "images_per_second" in r]
  return max(done, key=lambda r: r["images_per_second"]["median"]) if done else None


def collect_outputs(output: pathlib.Path, workdir: pathlib.Path) -> list[str]:
  """Copies the training's results into `output` (the device tool brings back 8 files)."""
  from lstm_endec_jax.runs import layout  # pylint: disable=g-import-not-at-top

  run = layout.Run(workdir)
  weights = workdir / "export"
  sources = [
      run.metrics_path,
      run.eval_path,
      workdir.parent / "train.log",
      weights / f"{WEIGHTS_NAME}.npz",
      weights / f"{WEIGHTS_NAME}.json",
  ]
  copied = []
  for source in sources:
    if source.exists():
      shutil.copy(source, output / source.name)
      copied.append(source.name)
  return copied


def main(argv: Sequence[str]) -> None:
  del argv
  options = flags.FLAGS
  if options.stage:
    print(f"staged {stage_photos(pathlib.Path(options.stage))} photographs in {PHOTO_ROOT}")
    return
  budget = Budget(options.budget_s)
  from benchmarks import common  # pylint: disable=g-import-not-at-top

  output = pathlib.Path(options.output)
  output.mkdir(parents=True, exist_ok=True)
  small = options.small
  dtypes = ("float32",) if small else ("float32", "bfloat16")
  batches = (2,) if small else (16, 64, 256)
  result: dict[str, Any] = {"budget_s": options.budget_s, "small": small}

  def save(part: str, value: Any) -> None:
    result[part] = value
    common.write_result(output / "gpu_run.json", "gpu_run", result)
    print(f"[{budget.left():.0f} s left] {part} done", flush=True)

  model_config = _config(small, "float32", batches[0]).model
  rates = conv_rates(batches[-1], dtypes, model_config)
  save("conv_rates", rates)
  rows = train_steps(small, batches, dtypes, budget)
  for row in rows:
    if "images_per_second" in row and row.get("xla_flops"):
      rate = row["xla_flops"] / row["step_timing"]["median_s"]
      row["fraction_of_conv_rate"] = rate / rates[row["dtype"]]["best_flops_per_second"]
  save("train_step", rows)
  best = _best_rate(rows, dtypes[-1]) or _best_rate(rows, dtypes[0])
  if best is None:
    save("stopped", "no train step ran")
    return
  if budget.left() > FORWARD_SHARE * budget.total:
    save("forward", forward_and_features(small, best["batch_size"], best["dtype"]))
  if budget.left() > PYTORCH_SHARE * budget.total:
    save("pytorch", pytorch_comparison(small, min(64, best["batch_size"]), best["dtype"]))
  workdir = pathlib.Path(options.workdir)
  step_seconds = best["step_timing"]["median_s"]
  save(
      "training",
      train_for_the_time_left(small, best["batch_size"], step_seconds, budget, workdir),
  )
  save("files", collect_outputs(output, workdir))


if __name__ == "__main__":
  define_flags()
  app.run(main)
