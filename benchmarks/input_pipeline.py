"""Images/s the grain training pipeline delivers from synthetic_splice, with augmentation.

  python -m benchmarks.input_pipeline                       # default set, 0 / 1 / 2 workers
  python -m benchmarks.input_pipeline --dataset=synthetic_splice/tiny --workers=0 \
      --batches=2 --repeats=1 --crop_size=96                # smallest size (a smoke check)

Reads, decodes (PNG), crops at a corner or the centre, resizes to 256x256, flips and batches, i.e.
everything `create_train_loader` does for the train step. Steady state only: the first batch
(worker start-up, file opening) is timed separately and `--warmup` batches are dropped; the median
over `--repeats` runs of `--batches` batches is reported with its spread. Where
benchmarks/results/train_step.json exists, the lead of the pipeline over the train step's
consumption is reported too. Builds the dataset first when it is missing (offline).
"""

import json
import statistics
import time

from absl import app
from absl import flags
import ml_collections

from benchmarks import common
from lstm_endec_jax.data import input_pipeline

RESULTS = common.RESULTS_DIR

_DATASET = flags.DEFINE_string("dataset", "synthetic_splice/default", "TFDS name to read.")
_DATA_DIR = flags.DEFINE_string("data_dir", input_pipeline.default_data_dir(), "TFDS data dir.")
_WORKERS = flags.DEFINE_list("workers", ["0", "1", "2"], "grain worker counts to measure.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 16, "Images per batch (the train step's).")
_BATCHES = flags.DEFINE_integer("batches", 20, "Batches per timed run.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed runs per worker count.")
_WARMUP = flags.DEFINE_integer("warmup", 3, "Batches dropped after the first one.")
_CROP_SIZE = flags.DEFINE_integer("crop_size", None, "Training crop side (default: the config's).")
_OUTPUT = flags.DEFINE_string("output", str(RESULTS / "input_pipeline.json"), "JSON written here.")


def pipeline_config(worker_count: int) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.dataset = input_pipeline.default_dataset_config()
  config.dataset.name = _DATASET.value
  config.dataset.data_dir = _DATA_DIR.value
  config.dataset.worker_count = worker_count
  if _CROP_SIZE.value:
    config.dataset.crop_size = _CROP_SIZE.value
  config.batch_size = _BATCH_SIZE.value
  return config


def measure(worker_count: int) -> dict:
  """Start-up time and steady-state images/s of one loader."""
  iterator = iter(input_pipeline.create_train_loader(pipeline_config(worker_count), seed=0))
  start = time.perf_counter()
  next(iterator)
  first_batch_seconds = time.perf_counter() - start
  for _ in range(_WARMUP.value):
    next(iterator)
  rates = []
  for _ in range(_REPEATS.value):
    start = time.perf_counter()
    for _ in range(_BATCHES.value):
      next(iterator)
    rates.append(_BATCHES.value * _BATCH_SIZE.value / (time.perf_counter() - start))
  return {
      "worker_count": worker_count,
      "first_batch_seconds": round(first_batch_seconds, 3),
      "images_per_second": round(statistics.median(rates), 1),
      "images_per_second_min": round(min(rates), 1),
      "images_per_second_max": round(max(rates), 1),
      "runs": [round(rate, 1) for rate in rates],
  }


def train_step_rate() -> float | None:
  """The train step's images/s from benchmarks/train_step.py's results, when it has run."""
  path = RESULTS / "train_step.json"
  if not path.is_file():
    return None
  results = json.loads(path.read_text())
  rate = results.get("images_per_second")
  return float(rate) if isinstance(rate, (int, float)) else None


def main(argv):
  del argv
  input_pipeline.ensure_dataset_built(pipeline_config(0))
  results = []
  for worker_count in (int(w) for w in _WORKERS.value):
    results.append(measure(worker_count))
    print(json.dumps(results[-1]))
  best = max(result["images_per_second"] for result in results)
  consumption = train_step_rate()
  report = {
      "dataset": _DATASET.value,
      "batch_size": _BATCH_SIZE.value,
      "crop_size": pipeline_config(0).dataset.crop_size,
      "image_size": 256,
      "batches_per_run": _BATCHES.value,
      "warmup_batches": _WARMUP.value,
      "results": results,
      "best_images_per_second": best,
      "train_step_images_per_second": consumption,
      "lead_over_train_step": round(best / consumption, 1) if consumption else None,
  }
  output = common.write_result(_OUTPUT.value, "input_pipeline", report)
  print(f"best {best} images/s; wrote {output}")


if __name__ == "__main__":
  app.run(main)
