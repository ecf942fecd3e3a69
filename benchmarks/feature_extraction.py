"""Images/s of the JAX resampling-feature extractor against the authors' reference pipeline.

  python -m benchmarks.feature_extraction [--batch_sizes=1,16,128] [--repeats=20] [--rounds=3]

The reference is what HLED's `extract_resamp_feat.py` runs: per patch and channel scipy
`convolve2d(mode='same', boundary='symm')`, `sqrt(|.|)`, channel mean, skimage
`radon(circle=False)`, numpy `rfft`, normalisation; one patch at a time on one core. Both get the
same uint8 photographs (crops of scikit-image's sample images) in the same run, and their features
must agree (max abs difference <= --tolerance) before anything is timed.

JAX timings are steady state (compile time reported on its own, one warm-up call excluded,
median over repeats with min/max). The whole measurement runs --rounds times and each row
reports the median over rounds (ratios included), which tames the noise of a shared machine.
"Arithmetic peak" is the FLOP/s of a large float32 matmul measured right before each JAX timing
on the same devices (its fastest repeat); `peak_fraction` = achieved images/s divided by
peak / (FLOPs per image of the method as implemented), and `peak_fraction_of_minimal_ops` uses
the FLOPs the features need at least (sparse Radon weights and FFTs instead of the dense GEMM).
The load average is recorded: numbers from a busy machine are noisy.
"""
import argparse
import math
import statistics
import sys
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.signal
import skimage.data
import skimage.transform

from benchmarks import common
from lstm_endec_jax import features

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
      patch = image[patch_row * patch_size:(patch_row + 1) * patch_size,
                    patch_col * patch_size:(patch_col + 1) * patch_size]
      error = np.mean([
          np.sqrt(np.abs(scipy.signal.convolve2d(
              patch[..., c], laplacian, mode="same", boundary="symm")))
          for c in range(patch.shape[-1])
      ], axis=0)
      sinogram = skimage.transform.radon(error, angles, circle=False)  # (offsets, angles)
      magnitude = np.abs(np.fft.rfft(sinogram, axis=0)).T  # (angles, bins)
      rows.append((magnitude / (magnitude.mean(axis=0) + eps) - 1.0).ravel())
  return np.stack(rows)


def sample_images(count: int, size: int = 256) -> np.ndarray:
  """(count, size, size, 3) uint8 crops of scikit-image's bundled colour photographs."""
  photos = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(),
            skimage.data.rocket()]
  rng = np.random.default_rng(0)
  crops = []
  for i in range(count):
    photo = photos[i % len(photos)]
    top = rng.integers(0, photo.shape[0] - size + 1)
    left = rng.integers(0, photo.shape[1] - size + 1)
    crops.append(photo[top:top + size, left:left + size, :3])
  return np.stack(crops)


def flops_per_image(method: str, *, patch_size: int = 32, grid_size: int = 8,
                    num_angles: int = 10, channels: int = 3) -> dict[str, float]:
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
    counts["radon_dft_gemm"] = patches * 2 * patch_size**2 * 2 * num_angles * bins
    counts["mean_correction"] = patches * 2 * 2 * num_angles * bins
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
          f"> {tolerance:g}; not timing a wrong result")
  return errors


def _measure_round(batch_sizes, methods, compiled, images_all, repeats, reference_repeats,
                   peak_size, minimal_flops) -> list[dict[str, Any]]:
  """One pass over every batch size: reference, then each JAX method next to a peak matmul."""
  rows = []
  for batch in batch_sizes:
    images = images_all[:batch]
    reference = common.time_calls(lambda images=images: reference_batch(images), warmup=0,
                                  repeats=reference_repeats)
    reference_rate = reference.rate(batch)
    device_images = jnp.asarray(images)
    for method in methods:
      # The machine is shared: measure the peak next to each timing, under the same load.
      peak = common.matmul_flops_per_second(peak_size, repeats=10)
      peak_flops = peak["flops_per_second"]["max"]  # Fastest repeat: least disturbed.
      executable = compiled[batch, method]
      timing = common.time_calls(lambda executable=executable: executable(device_images),
                                 warmup=1, repeats=repeats)
      rate = timing.rate(batch)
      flops = flops_per_image(method)
      bound = peak_flops / flops["total"]
      rows.append({
          "batch": batch, "method": method,
          "jax_timing": timing.to_json(), "jax_images_per_second": rate,
          "reference_timing": reference.to_json(),
          "reference_images_per_second": reference_rate,
          "speedup": rate["median"] / reference_rate["median"],
          "arithmetic_peak_flops_per_second": peak_flops,
          "flops_per_image": flops, "arithmetic_bound_images_per_second": bound,
          "peak_fraction": rate["median"] / bound,
          "minimal_flops_per_image": minimal_flops,
          "peak_fraction_of_minimal_ops": rate["median"] * minimal_flops / peak_flops,
      })
  return rows


def _median_over_rounds(rounds: list[dict[str, Any]]) -> dict[str, Any]:
  """One row from the same (batch, method) row of every round: medians of the rounds' medians
  and ratios, the extremes of their min/max, the last round's constants."""
  def combine(key):
    rates = [r[key] for r in rounds]
    return {"median": statistics.median(rate["median"] for rate in rates),
            "min": min(rate["min"] for rate in rates),
            "max": max(rate["max"] for rate in rates)}
  row = {key: value for key, value in rounds[-1].items() if not key.endswith("timing")}
  row["jax_images_per_second"] = combine("jax_images_per_second")
  row["reference_images_per_second"] = combine("reference_images_per_second")
  for key in ("speedup", "arithmetic_peak_flops_per_second", "arithmetic_bound_images_per_second",
              "peak_fraction", "peak_fraction_of_minimal_ops"):
    row[key] = statistics.median(r[key] for r in rounds)
  row["rounds"] = rounds
  return row


def benchmark(batch_sizes: Sequence[int], methods: Sequence[str], repeats: int,
              reference_repeats: int, tolerance: float, peak_size: int,
              rounds: int) -> dict[str, Any]:
  images_all = sample_images(max(batch_sizes))
  agreement = check_agreement(images_all[:min(4, len(images_all))], methods, tolerance)
  minimal_flops = flops_per_image("minimal")["total"]
  compiled, compile_s = {}, {}
  for batch in batch_sizes:
    for method in methods:
      compiled[batch, method], compile_s[batch, method] = common.compile_seconds(
          jax_extractor(method), jnp.asarray(images_all[:batch]))
  per_round = [
      _measure_round(batch_sizes, methods, compiled, images_all, repeats, reference_repeats,
                     peak_size, minimal_flops)
      for _ in range(rounds)
  ]
  rows = []
  for same_rows in zip(*per_round):
    row = _median_over_rounds(list(same_rows))
    rows.append({"compile_seconds": compile_s[row["batch"], row["method"]], **row})
  return {"agreement_max_abs_diff": agreement, "tolerance": tolerance, "rounds": rounds,
          "rows": rows}


def table(result: dict[str, Any]) -> str:
  headers = ["batch", "method", "JAX img/s median (min-max)", "reference img/s", "ratio",
             "compile s", "MFLOP/img", "peak GFLOP/s", "peak fraction"]
  rows = [[r["batch"], r["method"], common.format_rate(r["jax_images_per_second"], 0),
           common.format_rate(r["reference_images_per_second"], 1), f"{r['speedup']:.1f}x",
           f"{r['compile_seconds']:.2f}", f"{r['flops_per_image']['total'] / 1e6:.1f}",
           f"{r['arithmetic_peak_flops_per_second'] / 1e9:.0f}", f"{r['peak_fraction']:.2f}"]
          for r in result["rows"]]
  return (common.markdown_table(headers, rows)
          + f"\nmedians over {result['rounds']} rounds (min-max: extremes over all repeats); "
          + "peak: f32 square matmul measured next to each row; peak fraction = img/s x "
          + "MFLOP/img / peak. Agreement with the reference (max abs): "
          + ", ".join(f"{m} {e:.2g}" for m, e in result["agreement_max_abs_diff"].items()))


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--batch_sizes", default="1,16,128",
                      help="comma-separated batch sizes")
  parser.add_argument("--methods", default=",".join(features.RADON_METHODS),
                      help="comma-separated Radon methods of the JAX extractor")
  parser.add_argument("--repeats", type=int, default=20, help="timed JAX calls per batch")
  parser.add_argument("--reference_repeats", type=int, default=3,
                      help="timed reference passes over each batch")
  parser.add_argument("--tolerance", type=float, default=1e-4,
                      help="max abs feature difference allowed before timing")
  parser.add_argument("--rounds", type=int, default=3,
                      help="full passes over all batch sizes; rows report medians over rounds")
  parser.add_argument("--peak_size", type=int, default=2048,
                      help="side of the square matmul that measures the arithmetic peak")
  parser.add_argument("--output", default=str(RESULT_PATH), help="JSON result path")
  return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
  args = parse_args(sys.argv[1:] if argv is None else argv)
  result = benchmark(
      batch_sizes=[int(b) for b in args.batch_sizes.split(",")],
      methods=args.methods.split(","),
      repeats=args.repeats,
      reference_repeats=args.reference_repeats,
      tolerance=args.tolerance,
      peak_size=args.peak_size,
      rounds=args.rounds,
  )
  print(table(result))
  path = common.write_result(args.output, "feature_extraction", result)
  print(f"wrote {path}")


if __name__ == "__main__":
  main()
