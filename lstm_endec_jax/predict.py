r"""Heat maps and masks of manipulated regions in users' images.

  python -m lstm_endec_jax.predict photo.jpg folder/ ...     # the shipped weights -> ./predictions
  python -m lstm_endec_jax.predict --checkpoint=WORKDIR --output=DIR photo.jpg

For each image (folders are walked recursively) writes `<name>_heatmap.png` (P(manipulated) in a
colour map), `<name>_mask.png` (white where P >= --threshold), `<name>_overlay.png`, and appends
one JSON line to `DIR/predictions.jsonl` (an earlier run's lines into the same DIR stay). Images
below a folder keep their relative path under DIR. A file that cannot be read gets a line with its
"error" and is skipped; the exit code is 1 if any failed or no image was found.
"""

from collections.abc import Iterable, Sequence
from concurrent import futures
import json
import os
import pathlib
import sys
import time
from typing import Any, TextIO

from absl import app
from absl import flags
import numpy as np
import tqdm

from lstm_endec_jax.data import image_io
from lstm_endec_jax.evaluation import visualize
from lstm_endec_jax.inference import localizer as localizer_lib
from lstm_endec_jax.runtime import cli
from lstm_endec_jax.runtime.errors import UserError

FLAGS = flags.FLAGS
PREDICTIONS_FILE = "predictions.jsonl"


def define_flags() -> None:
  """The command line's flags; defined only when this module is the program, so that importing it
  beside another command-line module (e.g. in tests) defines no flag twice."""
  flags.DEFINE_string(
      "checkpoint",
      None,
      "A training workdir, its checkpoints/ directory, or one "
      "step directory (default: the weights shipped with the package, "
      "docs/model_card.md).",
  )
  flags.DEFINE_string(
      "output", "predictions", "Directory for the result images and predictions.jsonl."
  )
  flags.DEFINE_string("step", "latest", "For a workdir: 'latest', 'best' or a step number.")
  flags.DEFINE_bool(
      "tile",
      False,
      "Predict at full resolution in overlapping 256x256 windows "
      "instead of resizing the image to 256x256.",
  )
  flags.DEFINE_integer("overlap", 64, "Pixels shared by neighbouring windows (--tile).")
  flags.DEFINE_float(
      "threshold",
      0.5,
      "P(manipulated) at and above which a pixel is in the mask.",
      lower_bound=0.0,
      upper_bound=1.0,
  )
  flags.DEFINE_integer("batch_size", 8, "Windows per model call (--tile).", lower_bound=1)
  flags.register_validator(
      "overlap",
      lambda overlap: 0 <= overlap < localizer_lib.IMAGE_SIZE,
      f"--overlap must be in [0, {localizer_lib.IMAGE_SIZE}).",
  )


def output_stems(relative_paths: Sequence[pathlib.Path]) -> list[pathlib.Path]:
  """Where each image's outputs go (without suffix), keeping folders and avoiding collisions.

  `a/x.jpg` -> `a/x`; when `x.jpg` and `x.png` share a folder (or an input is given twice) the
  extension, then a counter, is kept in the name so that no result overwrites another.
  """
  plain = [path.with_suffix("") for path in relative_paths]
  counts: dict[pathlib.Path, int] = {}
  for stem in plain:
    counts[stem] = counts.get(stem, 0) + 1
  stems, used = [], set()
  for path, stem in zip(relative_paths, plain):
    if counts[stem] > 1:
      stem = path.with_name(path.name.replace(".", "_"))
    candidate, number = stem, 1
    while candidate in used:
      number += 1
      candidate = stem.with_name(f"{stem.name}_{number}")
    used.add(candidate)
    stems.append(candidate)
  return stems


def write_outputs(
    stem: pathlib.Path, image: np.ndarray, probabilities: np.ndarray, threshold: float
) -> dict[str, str]:
  """Writes the heat map, mask and overlay of one image; returns their paths."""
  paths = {
      name: stem.with_name(f"{stem.name}_{name}.png") for name in ("heatmap", "mask", "overlay")
  }
  # The coloured map is computed once, and PNG encoding (zlib releases the GIL) overlaps with the
  # next output's computation: a 48-megapixel photo's outputs are 150 MB each.
  with futures.ThreadPoolExecutor(2) as pool:
    writes = [
        pool.submit(
            image_io.write_png, paths["mask"], (probabilities >= threshold).astype(np.uint8) * 255
        )
    ]
    heat = visualize.colorize_heatmap(probabilities)
    writes.append(pool.submit(image_io.write_png, paths["heatmap"], heat))
    image_io.write_png(paths["overlay"], visualize.blend(image, heat))
    for write in writes:
      write.result()
  return {name: str(path) for name, path in paths.items()}


def predict_file(
    localizer: localizer_lib.Localizer,
    path: pathlib.Path,
    stem: pathlib.Path,
    *,
    tile: bool,
    overlap: int,
    threshold: float,
) -> dict[str, Any]:
  """Predicts one image file and writes its outputs; returns its predictions.jsonl record."""
  start = time.perf_counter()
  image = image_io.read_image(path)
  read_done = time.perf_counter()
  probabilities = localizer.predict(image, tile=tile, overlap=overlap)
  predict_done = time.perf_counter()
  outputs = write_outputs(stem, image, probabilities, threshold)
  write_done = time.perf_counter()
  return {
      "image": str(path),
      "height": image.shape[0],
      "width": image.shape[1],
      # Image-level score: the map's maximum (docs/method.md section 6).
      "score": float(probabilities.max()),
      "manipulated_fraction": float(np.mean(probabilities >= threshold)),
      "threshold": threshold,
      "mode": "tile" if tile else "resize",
      **outputs,
      "seconds": {
          "read": read_done - start,
          "predict": predict_done - read_done,
          "write": write_done - predict_done,
          "total": write_done - start,
      },
  }


def predict_files(
    localizer: localizer_lib.Localizer,
    inputs: Iterable[str | os.PathLike[str]],
    output_dir: str | os.PathLike[str],
    *,
    tile: bool = False,
    overlap: int = 64,
    threshold: float = 0.5,
    progress: TextIO | None = sys.stderr,
) -> int:
  """Predicts every image in `inputs` into `output_dir`; returns how many failed."""
  output_dir = pathlib.Path(output_dir)
  output_dir.mkdir(parents=True, exist_ok=True)
  files = list(image_io.expand_inputs(inputs))
  stems = output_stems([relative for _, relative in files])
  failures = 0
  with open(output_dir / PREDICTIONS_FILE, "a") as predictions:
    for (path, _), stem in tqdm.tqdm(
        list(zip(files, stems)),
        desc="predict",
        unit="image",
        file=progress,
        disable=progress is None,
    ):
      try:
        record = predict_file(
            localizer, path, output_dir / stem, tile=tile, overlap=overlap, threshold=threshold
        )
      except image_io.ImageReadError as error:
        failures += 1
        tqdm.tqdm.write(f"Skipped {error}", file=sys.stderr)  # Above the progress bar.
        record = {"image": str(path), "error": error.problem}
      predictions.write(json.dumps(record) + "\n")
      predictions.flush()
  return failures


def main(argv: Sequence[str]) -> int:
  inputs = argv[1:]
  if not inputs:
    raise app.UsageError("Name at least one image file or folder.")
  step = cli.parse_step_flag(FLAGS.step)
  if next(iter(image_io.expand_inputs(inputs)), None) is None:
    raise UserError(
        f"no image found in {', '.join(inputs)} (image files: "
        f"{', '.join(sorted(image_io.IMAGE_EXTENSIONS))})"
    )
  cli.start_command(distributed=False)
  if FLAGS.checkpoint:
    localizer = localizer_lib.Localizer.from_checkpoint(
        FLAGS.checkpoint, step=step, batch_size=FLAGS.batch_size
    )
  else:
    localizer = localizer_lib.Localizer.from_pretrained(batch_size=FLAGS.batch_size)
  print(f"Loaded the {localizer.variant!r} model: {localizer.source}.", file=sys.stderr)
  # Compile before the first image, so that every image's timing measures prediction alone.
  localizer.predict_batch(
      np.zeros(
          (
              FLAGS.batch_size if FLAGS.tile else 1,
              localizer_lib.IMAGE_SIZE,
              localizer_lib.IMAGE_SIZE,
              3,
          ),
          np.uint8,
      )
  )
  failures = predict_files(
      localizer,
      inputs,
      FLAGS.output,
      tile=FLAGS.tile,
      overlap=FLAGS.overlap,
      threshold=FLAGS.threshold,
  )
  predictions = pathlib.Path(FLAGS.output) / PREDICTIONS_FILE
  if failures:
    print(
        f"{failures} file(s) could not be read and were skipped; see {predictions}.",
        file=sys.stderr,
    )
    return 1
  print(f"Done; results listed in {predictions}.", file=sys.stderr)
  return 0


if __name__ == "__main__":
  define_flags()
  cli.run(main)
