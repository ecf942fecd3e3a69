"""Images/s of the JAX resampling-feature extractor against the authors' reference pipeline.

  python -m benchmarks.feature_extraction [--batch_sizes=1,16,128] [--repeats=30]

The reference is what HLED's `extract_resamp_feat.py` runs: per patch and channel scipy
`convolve2d(mode='same', boundary='symm')`, `sqrt(|.|)`, channel mean, skimage
`radon(circle=False)`, numpy `rfft`, normalisation; one patch at a time on one core. Both get the
same uint8 photographs (crops of scikit-image's sample images) in the same run, and their features
must agree (max abs difference <= --tolerance) before anything is timed.

JAX timings are steady state: compile time is reported on its own, a warm-up call is excluded,
and rates are medians over repeats with min/max. This machine is shared and its load comes in
bursts, so within each batch size the reference (one image per repeat, it works image by image),
a float32 matmul ("arithmetic peak") and every JAX method are timed in turn, repeat by repeat:
all see the same load, and their ratios are fair even when absolute numbers are not.
`peak_fraction` = achieved images/s divided by peak / (FLOPs per image of the method as
implemented); `peak_fraction_of_minimal_ops` uses the FLOPs the features need at least (sparse
Radon weights and FFTs instead of the dense GEMM). The load average is recorded.
"""

import argparse
import functools
import itertools
import math
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.signal
import skimage.data
import skimage.transform

from benchmarks import common
from lstm_endec_jax.model import features
from lstm_endec_jax.runtime import huge_pages

RESULT_PATH = common.RESULTS_DIR / "feature_extraction.json"


def reference_features(
    image: np.ndarray,
    *,
    patch_size: int = 32,
    grid_size: int = 8,
    num_angles: int = 10,
    laplacian: Sequence[Sequence[float]] = features.PAPER_LAPLACIAN,
    eps: float = 1e-16,
) -> np.ndarray:
  """HLED's per-patch numpy/scipy/skimage pipeline for one (H, W, C) image, float64."""
  image = np.asarray(image, np.float64)
  angles = np.linspace(0.0, 180.0, num_angles, endpoint=False)
  rows = []
  for patch_row in range(grid_size):
    for patch_col in range(grid_size):
      patch = image[
          patch_row * patch_size : (patch_row + 1) * patch_size,
          patch_col * patch_size : (patch_col + 1) * patch_size,
      ]
      error = np.mean(
          [
              np.sqrt(
                  np.abs(
                      scipy.signal.convolve2d(
                          patch[..., c], laplacian, mode="same", boundary="symm"
                      )
                  )
              )
              for c in range(patch.shape[-1])
          ],
          axis=0,
      )
      sinogram = skimage.transform.radon(error, angles, circle=False)  # (offsets, angles)
      magnitude = np.abs(np.fft.rfft(sinogram, axis=0)).T  # (angles, bins)
      rows.append((magnitude / (magnitude.mean(axis=0) + eps) - 1.0).ravel())
  return np.stack(rows)


def sample_images(count: int, size: int = 256) -> np.ndarray:
  """(count, size, size, 3) uint8 crops of scikit-image's bundled colour photographs."""
  photos = [
      skimage.data.astronaut(),
      skimage.data.coffee(),
      skimage.data.chelsea(),
      skimage.data.rocket(),
  ]
  rng = np.random.default_rng(0)
  crops = []
  for i in range(count):
    photo = photos[i % len(photos)]
    top = rng.integers(0, photo.shape[0] - size + 1)
    left = rng.integers(0, photo.shape[1] - size + 1)
    crops.append(photo[top : top + size, left : left + size, :3])
  return np.stack(crops)


def flops_per_image(
    method: str,
    *,
    patch_size: int = 32,
    grid_size: int = 8,
    num_angles: int = 10,
    channels: int = 3,
) -> dict[str, float]:
  """Floating-point operations per image of each stage, as implemented (sqrt counts as one).

  method "minimal" counts what the arithmetic needs at least: the non-zero weights of the
  sparse Radon map and a real FFT per angle instead of the dense folded GEMM.
  """
  pixels = (patch_size * grid_size) ** 2
  patches = grid_size**2
  bins = features.num_frequencies(patch_size)
  size = features.radon_size(patch_size)
  angles = features.radon_angles(num_angles)
  # 5 non-zero taps: 5 multiplies + 4 adds, then abs and sqrt; channel mean: adds + 1 multiply.
  counts = {"error_map": pixels * (channels * 11 + channels)}
  if method == "matmul":
    counts["mean_subtraction"] = 2 * pixels
    columns = features._radon_dft_matrix(patch_size, angles)[  # pylint: disable=protected-access
        0
    ].shape[1]
    counts["radon_dft_gemm"] = patches * 2 * patch_size**2 * columns
    counts["mean_correction"] = patches * 2 * columns
  else:
    # pylint: disable=protected-access
    if method == "gather":  # Padded tap slots, as evaluated.
      taps = features._radon_gather_table(patch_size, angles)[0].size
    else:
      taps = np.count_nonzero(features._radon_matrix(patch_size, angles))
    # pylint: enable=protected-access
    counts["radon_gather"] = patches * 2 * taps
    counts["rfft"] = patches * num_angles * 2.5 * size * math.log2(size)
  counts["magnitude_and_normalisation"] = patches * num_angles * bins * 7
  counts["total"] = sum(counts.values())
  return counts


def jax_extractor(method: str):
  return jax.jit(lambda images: features.resampling_features(images, method=method))


def reference_batch(images: np.ndarray) -> np.ndarray:
  return np.stack([reference_features(image) for image in images])


def check_agreement(images: np.ndarray, methods: Sequence[str], tolerance: float) -> dict:
  """Max abs difference of each JAX method to the reference on `images`; raises if too big."""
  expected = reference_batch(images)
  errors = {}
  for method in methods:
    got = np.asarray(jax_extractor(method)(jnp.asarray(images)))
    errors[method] = float(np.abs(got - expected).max())
    if not errors[method] <= tolerance:
      raise AssertionError(
          f"{method}: JAX features differ from the reference by {errors[method]:.3g} "
          f"> {tolerance:g}; not timing a wrong result"
      )
  return errors


def _interleaved(
    calls: dict[str, Callable[[], Any]], repeats: int, untimed: Sequence[str] = ()
) -> dict[str, common.Timing]:
  """Times every call once per repeat, in turn, so that all of them see the same load phases
  of the shared machine (its load comes in bursts that halve throughput for seconds). Calls named
  in `untimed` run once untimed right before each timed call, so that they are timed in steady
  state (warm caches and thread pool) rather than just after the others."""
  for call in calls.values():
    jax.block_until_ready(call())
  seconds = {name: [] for name in calls}
  for _ in range(repeats):
    for name, call in calls.items():
      if name in untimed:
        jax.block_until_ready(call())
      start = time.perf_counter()
      jax.block_until_ready(call())
      seconds[name].append(time.perf_counter() - start)
  return {name: common.Timing(tuple(values)) for name, values in seconds.items()}


def benchmark(
    batch_sizes: Sequence[int],
    methods: Sequence[str],
    repeats: int,
    reference_images: int,
    tolerance: float,
    peak_size: int,
) -> dict[str, Any]:
  images_all = sample_images(max(batch_sizes))
  agreement = check_agreement(images_all[: min(4, len(images_all))], methods, tolerance)
  minimal_flops = flops_per_image("minimal")["total"]
  peak_operands = [jax.random.normal(jax.random.key(i), (peak_size, peak_size)) for i in (0, 1)]
  peak_matmul = jax.jit(jnp.matmul)
  rows = []
  for batch in batch_sizes:
    images = images_all[:batch]
    device_images = jnp.asarray(images)
    compiled, compile_s = {}, {}
    for method in methods:
      compiled[method], compile_s[method] = common.compile_seconds(
          jax_extractor(method), device_images
      )
    turns = itertools.count()

    def reference_call():  # The next image(s) of the batch, round robin.
      first = next(turns) * reference_images
      return reference_batch(images[(first + np.arange(reference_images)) % batch])

    calls = {"reference": reference_call, "peak": lambda: peak_matmul(*peak_operands)}
    calls.update({method: functools.partial(compiled[method], device_images) for method in methods})
    timings = _interleaved(calls, repeats, untimed=["peak", *methods])
    reference_rate = timings["reference"].rate(reference_images)
    peak_flops = timings["peak"].rate(2.0 * peak_size**3)["median"]
    for method in methods:
      rate = timings[method].rate(batch)
      flops = flops_per_image(method)
      bound = peak_flops / flops["total"]
      rows.append(
          {
              "batch": batch,
              "method": method,
              "compile_seconds": compile_s[method],
              "jax_timing": timings[method].to_json(),
              "jax_images_per_second": rate,
              "reference_timing": timings["reference"].to_json(),
              "reference_images_per_second": reference_rate,
              "speedup": rate["median"] / reference_rate["median"],
              "arithmetic_peak_timing": timings["peak"].to_json(),
              "arithmetic_peak_flops_per_second": peak_flops,
              "flops_per_image": flops,
              "arithmetic_bound_images_per_second": bound,
              "peak_fraction": rate["median"] / bound,
              "minimal_flops_per_image": minimal_flops,
              "peak_fraction_of_minimal_ops": rate["median"] * minimal_flops / peak_flops,
          }
      )
  return {
      "agreement_max_abs_diff": agreement,
      "tolerance": tolerance,
      "peak_matmul_size": peak_size,
      "rows": rows,
  }


def table(result: dict[str, Any]) -> str:
  headers = [
      "batch",
      "method",
      "JAX img/s median (min-max)",
      "reference img/s",
      "ratio",
      "compile s",
      "MFLOP/img",
      "peak GFLOP/s",
      "peak fraction",
  ]
  rows = [
      [
          r["batch"],
          r["method"],
          common.format_rate(r["jax_images_per_second"], 0),
          common.format_rate(r["reference_images_per_second"], 1),
          f"{r['speedup']:.1f}x",
          f"{r['compile_seconds']:.2f}",
          f"{r['flops_per_image']['total'] / 1e6:.1f}",
          f"{r['arithmetic_peak_flops_per_second'] / 1e9:.0f}",
          f"{r['peak_fraction']:.2f}",
      ]
      for r in result["rows"]
  ]
  return (
      common.markdown_table(headers, rows)
      + "\nreference, peak matmul and JAX calls interleaved repeat by repeat; "
      + "peak fraction = img/s x MFLOP/img / peak. Agreement with the reference (max abs): "
      + ", ".join(f"{m} {e:.2g}" for m, e in result["agreement_max_abs_diff"].items())
  )


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--batch_sizes", default="1,16,128", help="comma-separated batch sizes")
  parser.add_argument(
      "--methods",
      default=",".join(features.RADON_METHODS),
      help="comma-separated Radon methods of the JAX extractor",
  )
  parser.add_argument(
      "--repeats",
      type=int,
      default=30,
      help="timed repeats per batch size (each: reference, peak, every method)",
  )
  parser.add_argument(
      "--reference_repeats",
      type=int,
      default=1,
      help="images the reference processes per timed repeat (it works image by "
      "image, so its images/s is the same at every batch size)",
  )
  parser.add_argument(
      "--tolerance",
      type=float,
      default=1e-4,
      help="max abs feature difference allowed before timing",
  )
  parser.add_argument(
      "--peak_size",
      type=int,
      default=2048,
      help="side of the square matmul that measures the arithmetic peak",
  )
  parser.add_argument("--output", default=str(RESULT_PATH), help="JSON result path")
  return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
  args = parse_args(sys.argv[1:] if argv is None else argv)
  result = benchmark(
      batch_sizes=[int(b) for b in args.batch_sizes.split(",")],
      methods=args.methods.split(","),
      repeats=args.repeats,
      reference_images=args.reference_repeats,
      tolerance=args.tolerance,
      peak_size=args.peak_size,
  )
  print(table(result))
  path = common.write_result(args.output, "feature_extraction", result)
  print(f"wrote {path}")


if __name__ == "__main__":
  huge_pages.relaunch_with_huge_pages()  # as the commands run
  main()
