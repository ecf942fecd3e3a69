r"""Peak memory and seconds of the `predict` command on one very large photograph (default mode).

  python -m benchmarks.predict_large                  # an 8000x6000 JPEG, the shipped weights
  python -m benchmarks.predict_large --small          # 1200x900 (a test)

Runs `python -m lstm_endec_jax.predict` as its own process on a JPEG written here (smooth colour
ramps with noise, JPEG quality 90), and reports the process's peak resident memory (getrusage of
the child) and wall time, and the per-stage seconds predict writes to predictions.jsonl (read,
predict, write of the three PNGs). In the default mode the model sees the image resized to 256x256
and the heat map, mask and overlay are written at the image's own size.
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import pathlib
from collections.abc import Sequence

import numpy as np
from PIL import Image

from benchmarks import common
from lstm_endec_jax.runtime import huge_pages

FULL = {"height": 6000, "width": 8000}
SMALL = {"height": 900, "width": 1200}


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  common.add_common_arguments(parser, output=common.RESULTS_DIR / "predict_large.json")
  parser.add_argument("--height", type=int, help="image height (default 6000)")
  parser.add_argument("--width", type=int, help="image width (default 8000)")
  args = parser.parse_args(argv)
  common.fill_defaults(args, FULL, SMALL)
  return args


def write_photo(path: pathlib.Path, height: int, width: int) -> None:
  rows = np.linspace(0, 255, height, dtype=np.float32)[:, None]
  cols = np.linspace(0, 255, width, dtype=np.float32)[None, :]
  noise = np.random.default_rng(0).integers(-12, 13, (height, width), dtype=np.int16)
  channels = [rows + 0 * cols, cols + 0 * rows, (rows + cols) / 2]
  image = np.stack([np.clip(c + noise, 0, 255).astype(np.uint8) for c in channels], axis=-1)
  Image.fromarray(image).save(path, quality=90)


def main(argv: Sequence[str] | None = None) -> None:
  args = parse_args(sys.argv[1:] if argv is None else argv)
  with tempfile.TemporaryDirectory() as folder:
    folder = pathlib.Path(folder)
    photo = folder / "large.jpg"
    write_photo(photo, args.height, args.width)
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "lstm_endec_jax.predict", f"--output={folder / 'out'}", str(photo)],
        cwd=common.REPO_ROOT,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    if result.returncode:
      raise SystemExit(f"predict failed:\n{result.stderr[-3000:]}")
    record = json.loads((folder / "out" / "predictions.jsonl").read_text().splitlines()[0])
    sizes = {
        name: pathlib.Path(record[name]).stat().st_size for name in ("heatmap", "mask", "overlay")
    }
  peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
  summary = {
      "image": [args.height, args.width],
      "mode": "resize (default)",
      "peak_rss_bytes": peak,
      "process_wall_seconds": wall,
      "image_seconds": record["seconds"],
      "png_bytes": sizes,
      "environment": common.environment(),
  }
  path = common.write_result(args.output, "predict_large", summary)
  print(
      f"{args.width}x{args.height} JPEG: peak RSS {peak / 2**30:.2f} GiB, process "
      f"{wall:.1f} s, image {record['seconds']['total']:.1f} s "
      f"(read {record['seconds']['read']:.1f}, predict {record['seconds']['predict']:.1f}, "
      f"write {record['seconds']['write']:.1f}); {path}"
  )


if __name__ == "__main__":
  huge_pages.relaunch_with_huge_pages()  # as the commands run
  main()
