"""Study 3, paper section 4.2.6: whole images against patches as the network's input.

The paper feeds the network whole images "so that the network can exploit global context" and,
fed patches instead, sees localization "degrade ... as the patch misses the broader context"
(Fig. 9, qualitative only). Here a *patch* is a quarter of the image (half its side), resized to
the network's 256x256 input like any image:

  image          configs/base.py: trains on the paper's crops (320 of the 384 px images) and is
                 tested on whole images.
  image_on_patch the same runs, tested on patches: each test image is cut into 2x2 patches, each
                 patch is predicted alone and the maps are stitched back (Fig. 9's experiment).
  patch          trained on patches (`dataset.crop_size` 192: the 4 corner and centre quarters of
                 the 384 px synthetic_splice images) and tested on patches.
  patch_on_image the `patch` runs tested on whole images.

Every arm is scored against the same 256x256 test masks as `train_and_evaluate`'s eval.json. The
patch arms train like any run; only the tiled testing is done here, with the library's `Localizer`
and `metrics`. (At the `test` scale the tiny dataset's images are 128 px, so "patch" training crops
are whole images there: that scale only checks that the study runs.)

  python -m experiments.global_context --scale=cpu
"""

import pathlib

import ml_collections
import numpy as np

from experiments import common
from lstm_endec_jax.data import image_io
from lstm_endec_jax.data import input_pipeline
from lstm_endec_jax.evaluation import metrics as metrics_lib
from lstm_endec_jax.inference import localizer as localizer_lib
from lstm_endec_jax.runtime import cli

PATCH_GRID = 2  # patches per side of a test image
PATCH_CROP = 384 // PATCH_GRID  # training patches of the 384 px synthetic_splice images

STUDY = common.Study(
    name="global_context",
    title="Global context: image vs patch input (paper 4.2.6)",
    arms=(
        common.Arm("image", "base", "trained on images, tested on images"),
        common.Arm("image_on_patch", "base", "trained on images, tested on 2x2 patches"),
        common.Arm(
            "patch",
            "base",
            "trained on patches, tested on 2x2 patches",
            {"dataset.crop_size": PATCH_CROP},
        ),
        common.Arm(
            "patch_on_image",
            "base",
            "trained on patches, tested on images",
            {"dataset.crop_size": PATCH_CROP},
        ),
    ),
    claims=(("image", "patch"), ("image", "image_on_patch")),
)
TESTED_ON_PATCHES = ("image_on_patch", "patch")


def patch_windows(height: int, width: int, grid: int) -> list[tuple[slice, slice]]:
  """The grid x grid windows tiling an image (sizes differ by at most a pixel)."""
  rows = np.linspace(0, height, grid + 1).round().astype(int)
  cols = np.linspace(0, width, grid + 1).round().astype(int)
  return [
      (slice(rows[i], rows[i + 1]), slice(cols[j], cols[j + 1]))
      for i in range(grid)
      for j in range(grid)
  ]


def predict_on_patches(
    localizer: localizer_lib.Localizer, image: np.ndarray, grid: int
) -> np.ndarray:
  """P(manipulated) (H, W) of an image whose patches are each resized to the input and predicted
  alone: the network never sees more than one patch."""
  windows = patch_windows(*image.shape[:2], grid)
  size = localizer_lib.IMAGE_SIZE
  patches = np.stack([image_io.resize_image(image[window], size, size) for window in windows])
  probabilities = np.zeros(image.shape[:2], np.float32)
  for window, patch_probabilities in zip(windows, localizer.predict_batch(patches)):
    rows, cols = window
    probabilities[window] = image_io.resize_map(
        patch_probabilities, rows.stop - rows.start, cols.stop - cols.start
    )
  return probabilities


def patch_test_metrics(
    config: ml_collections.ConfigDict, workdir: pathlib.Path, grid: int = PATCH_GRID
) -> dict[str, float]:
  """Test metrics of a run's final model tested on patches of the stored (unresized) images.

  The images are those `train_and_evaluate` tests (the first `num_test_batches` batches of the
  split, in order) and the ground truth is theirs: the mask resized to the model's input size.
  """
  localizer = localizer_lib.Localizer.from_checkpoint(workdir, batch_size=grid * grid)
  source = input_pipeline.data_source(config.dataset, config.dataset.name, config.test_split)
  count = len(source)
  if config.num_test_batches >= 0:
    count = min(count, config.num_test_batches * config.eval_batch_size)
  size = config.dataset.image_size
  accumulator = metrics_lib.MetricAccumulator()
  for index in range(count):
    record = source[index]
    image = np.asarray(record["image"])
    _, mask = input_pipeline.resize_pair(image, input_pipeline.binary_mask(record), size)
    probabilities = image_io.resize_map(predict_on_patches(localizer, image, grid), size, size)
    accumulator.update(probabilities[None], mask[None], np.asarray([record["label"]]))
  return accumulator.result()


def arm_metrics(
    arm: common.Arm, config: ml_collections.ConfigDict, workdir: pathlib.Path
) -> dict[str, float]:
  if arm.name in TESTED_ON_PATCHES:
    return patch_test_metrics(config, workdir)
  return common.eval_json_metrics(arm, config, workdir)


def main(argv):
  common.main(argv, STUDY, arm_metrics)


if __name__ == "__main__":
  cli.run(main, huge_pages=True)
