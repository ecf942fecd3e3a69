r"""Images/s of inference: the jitted forward pass at batch 1, 16 and 64, and `predict` end to end.

  python -m benchmarks.inference                    # base.py model
  python -m benchmarks.inference --small            # tiny widths, batch 1 and 2, 2 images (a test)

Forward: `Localizer.predict_batch` on 256x256 uint8 images (host to device, model, softmax, device
to host); batch sizes that are powers of two run unpadded. End to end:
`predict.predict_files` over a folder of JPEG and PNG photographs of several sizes (scikit-image's
samples), i.e. decoding, resizing to 256x256, the forward pass at batch 1, resizing the map back
and writing the heat-map, mask and overlay PNGs plus predictions.jsonl. The variables are a fresh
initialisation: the cost does not depend on the trained values.

Steady state only: the first call of each shape (compilation) is reported on its own, `--warmup`
more calls or passes are dropped, and the median over `--repeats` is reported with its spread.
"""

import argparse
import json
import pathlib
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
import PIL.Image
import skimage.data

from benchmarks import common
from lstm_endec_jax import predict
from lstm_endec_jax.inference import localizer as localizer_lib
from lstm_endec_jax.model import models
from lstm_endec_jax.runtime import huge_pages

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")  # 512x512, 400x600, 300x451, 427x640
FULL = {"batch_sizes": "1,16,64", "num_images": 16, "warmup": 1, "repeats": 3}
SMALL = {"batch_sizes": "1,2", "num_images": 2, "warmup": 1, "repeats": 2}


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  common.add_common_arguments(parser, output=common.RESULTS_DIR / "inference.json")
  parser.add_argument(
      "--batch_sizes", help=f"forward-pass batch sizes (default {FULL['batch_sizes']})"
  )
  parser.add_argument("--num_images", type=int, help="images in the predict folder (default 16)")
  args = parser.parse_args(argv)
  common.fill_defaults(args, FULL, SMALL)
  return args


def write_photo_folder(folder: pathlib.Path, count: int) -> list[str]:
  """`count` photographs, alternately JPEG (quality 90) and PNG; returns their file names."""
  names = []
  for index in range(count):
    photo = PHOTOS[index % len(PHOTOS)]
    suffix = ".jpg" if index % 2 == 0 else ".png"
    name = f"{index:03d}_{photo}{suffix}"
    PIL.Image.fromarray(getattr(skimage.data, photo)()).save(folder / name, quality=90)
    names.append(name)
  return names


def time_first_call(call) -> float:
  start = time.perf_counter()
  jax.block_until_ready(call())
  return time.perf_counter() - start


def measure_forward(
    localizer: localizer_lib.Localizer, batch_size: int, *, warmup: int, repeats: int
) -> dict[str, Any]:
  """Steady-state images/s of `Localizer.predict_batch` on one batch of `batch_size` images."""
  images = np.random.default_rng(0).integers(
      0, 256, (batch_size, localizer_lib.IMAGE_SIZE, localizer_lib.IMAGE_SIZE, 3), np.uint8
  )
  first = time_first_call(lambda: localizer.predict_batch(images))
  timing = common.time_calls(
      lambda: localizer.predict_batch(images), warmup=warmup, repeats=repeats
  )
  return {
      "batch_size": batch_size,
      "timing": timing.to_json(),
      "images_per_second": timing.rate(batch_size),
      "first_call_seconds": first,
      "compile_seconds": first - timing.median,
  }


def measure_predict(
    localizer: localizer_lib.Localizer, num_images: int, *, warmup: int, repeats: int
) -> dict[str, Any]:
  """Images/s of `predict.predict_files` over a folder, and its per-image stage times."""
  with tempfile.TemporaryDirectory() as scratch:
    folder, output = pathlib.Path(scratch) / "images", pathlib.Path(scratch) / "predictions"
    folder.mkdir()
    names = write_photo_folder(folder, num_images)

    def run_pass():
      failures = predict.predict_files(localizer, [folder], output, progress=None)
      if failures:
        raise RuntimeError(f"predict failed on {failures} of the benchmark images in {folder}")

    first = time_first_call(run_pass)
    timing = common.time_calls(run_pass, warmup=warmup, repeats=repeats)
    records = [
        json.loads(line) for line in (output / predict.PREDICTIONS_FILE).read_text().splitlines()
    ]
  stages = {
      stage: statistics.median(record["seconds"][stage] for record in records)
      for stage in ("read", "predict", "write", "total")
  }
  return {
      "num_images": num_images,
      "files": names,
      "timing": timing.to_json(),
      "images_per_second": timing.rate(num_images),
      "first_pass_seconds": first,
      "median_seconds_per_image": stages,
  }


def summary_rows(forward: list[dict[str, Any]], end_to_end: dict[str, Any]) -> list[list[str]]:
  rows = [
      [
          f"forward pass, batch {entry['batch_size']}",
          f"{entry['images_per_second']['median']:.2f} images/s",
          f"min {entry['images_per_second']['min']:.2f}, max "
          f"{entry['images_per_second']['max']:.2f}; compile {entry['compile_seconds']:.1f} s",
      ]
      for entry in forward
  ]
  stages = end_to_end["median_seconds_per_image"]
  rate = end_to_end["images_per_second"]
  rows.append(
      [
          f"predict end to end, {end_to_end['num_images']} JPEG/PNG photos",
          f"{rate['median']:.2f} images/s",
          f"min {rate['min']:.2f}, max {rate['max']:.2f}; per image: read "
          f"{1e3 * stages['read']:.0f} ms, resize+forward {1e3 * stages['predict']:.0f} ms,"
          f" PNG writing {1e3 * stages['write']:.0f} ms",
      ]
  )
  return rows


def main(argv: Sequence[str] | None = None) -> None:
  args = parse_args(sys.argv[1:] if argv is None else argv)
  config = common.config_of(args)
  batch_sizes = [int(size) for size in args.batch_sizes.split(",")]
  # One Localizer for every batch size: predict_batch runs a batch of a power of two as it is,
  # and predict() (one image, batch 1) reuses the batch-1 executable.
  localizer = localizer_lib.Localizer(
      models.create_model(config.model),
      models.initial_variables(
          config.model, jax.random.key(config.seed), image_size=config.dataset.image_size
      ),
      batch_size=max(batch_sizes),
  )
  forward = []
  for batch_size in batch_sizes:
    forward.append(measure_forward(localizer, batch_size, warmup=args.warmup, repeats=args.repeats))
    print(
        f"forward batch {batch_size}: "
        f"{common.format_rate(forward[-1]['images_per_second'], 2)} images/s",
        flush=True,
    )
  end_to_end = measure_predict(localizer, args.num_images, warmup=args.warmup, repeats=args.repeats)
  result = {
      "model": config.model.variant,
      "model_config": config.model.to_dict(),
      "small": args.small,
      "forward": forward,
      "predict": end_to_end,
      "summary": summary_rows(forward, end_to_end),
  }
  path = common.write_result(args.output, "inference", result)
  print(common.markdown_table(["measure", "value", "spread / note"], result["summary"]))
  print(f"wrote {path}")


if __name__ == "__main__":
  huge_pages.relaunch_with_huge_pages()  # as the commands run
  main()
