r"""Images/s of `Localizer.predict` on one 256x256 image, and in --tile mode on a 2048x1536 photo.

  python -m benchmarks.predict_tile                 # base.py model
  python -m benchmarks.predict_tile --small         # tiny widths, a 512x384 image (a test)

Single image: `predict(image)` on a 256x256 uint8 image (no resize needed; the forward pass at
batch 1 plus the host-side wrapping). Tile mode: `predict(image, tile=True)` on one photograph-sized
image: overlapping 256x256 windows (overlap 64) predicted `--batch_size` at a time and stitched
with blending; windows/s is reported beside images/s. The variables are a fresh initialisation:
the cost does not depend on the trained values. Compilation is excluded (reported on its own).
"""

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from benchmarks import common
from lstm_endec_jax.inference import localizer as localizer_lib
from lstm_endec_jax.inference import tiling
from lstm_endec_jax.model import models
from lstm_endec_jax.runtime import huge_pages

FULL = {"height": 1536, "width": 2048, "batch_size": 8, "warmup": 1, "repeats": 5}
SMALL = {"height": 384, "width": 512, "batch_size": 2, "warmup": 0, "repeats": 1}


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  common.add_common_arguments(parser, output=common.RESULTS_DIR / "predict_tile.json")
  parser.add_argument("--height", type=int, help="tile-mode image height (default 1536)")
  parser.add_argument("--width", type=int, help="tile-mode image width (default 2048)")
  parser.add_argument("--batch_size", type=int, help="windows per model call (default 8)")
  args = parser.parse_args(argv)
  common.fill_defaults(args, FULL, SMALL)
  return args


def _measure(call, *, warmup: int, repeats: int) -> tuple[common.Timing, float]:
  start = time.perf_counter()
  call()  # Compiles.
  first = time.perf_counter() - start
  return common.time_calls(call, warmup=warmup, repeats=repeats), first


def main(argv: Sequence[str] | None = None) -> None:
  args = parse_args(sys.argv[1:] if argv is None else argv)
  config = common.config_of(args)
  localizer = localizer_lib.Localizer(
      models.create_model(config.model),
      models.initial_variables(
          config.model, jax.random.key(0), image_size=config.dataset.image_size
      ),
      batch_size=args.batch_size,
  )
  rng = np.random.default_rng(0)
  small = rng.integers(0, 256, (256, 256, 3), np.uint8)
  large = rng.integers(0, 256, (args.height, args.width, 3), np.uint8)
  single, single_first = _measure(
      lambda: localizer.predict(small), warmup=args.warmup, repeats=args.repeats
  )
  tiled, tiled_first = _measure(
      lambda: localizer.predict(large, tile=True), warmup=args.warmup, repeats=args.repeats
  )
  windows = tiling.num_windows(args.height, args.width)
  result: dict[str, Any] = {
      "model": config.model.variant,
      "small": args.small,
      "single_256": {
          "timing": single.to_json(),
          "images_per_second": single.rate(1),
          "first_call_seconds": single_first,
      },
      "tile": {
          "height": args.height,
          "width": args.width,
          "windows": windows,
          "batch_size": args.batch_size,
          "overlap": 64,
          "timing": tiled.to_json(),
          "images_per_second": tiled.rate(1),
          "windows_per_second": tiled.rate(windows),
          "first_call_seconds": tiled_first,
      },
  }
  result["summary"] = [
      [
          "predict, one 256x256 image",
          f"{single.rate(1)['median']:.2f} images/s",
          f"min {single.rate(1)['min']:.2f}, max {single.rate(1)['max']:.2f}",
      ],
      [
          f"predict --tile, {args.width}x{args.height} ({windows} windows)",
          f"{tiled.rate(1)['median']:.3f} images/s",
          f"{tiled.median:.1f} s per image; {tiled.rate(windows)['median']:.1f} windows/s",
      ],
  ]
  path = common.write_result(args.output, "predict_tile", result)
  print(common.markdown_table(["measure", "value", "spread / note"], result["summary"]))
  print(f"wrote {path}")


if __name__ == "__main__":
  huge_pages.relaunch_with_huge_pages()  # as the commands run
  main()
