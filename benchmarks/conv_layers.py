r"""Every encoder convolution of the train step, alone: forward, input and weight gradient rates.

  python -m benchmarks.conv_layers                      # base.py widths, batch 16, float32
  python -m benchmarks.conv_layers --dtypes=float32,bfloat16
  python -m benchmarks.conv_layers --small              # tiny widths and batch (a test)

The encoder's 3x3 convolutions are most of the step's arithmetic. Each layer shape is jitted alone
in its three directions (all do the same FLOPs), and its rate is compared with a large matmul of
the same dtype measured in the same run, on the CPU whose model and bfloat16 units (AMX,
AVX512-BF16) the result records. It also times rewrites of the weight gradient as matrix products
(`FORMULATIONS`), each checked against `lax.conv_general_dilated`'s gradient before it is timed:
where XLA's CPU weight-gradient convolution is slow, these are the obvious alternatives, and this
says whether they win.
"""

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from benchmarks import common
from lstm_endec_jax.runtime import huge_pages

FULL = {"batch_size": 16, "warmup": 1, "repeats": 3, "matmul_size": 4096}
SMALL = {"batch_size": 2, "warmup": 0, "repeats": 1, "matmul_size": 256}
# Relative tolerance of a rewritten float32 weight gradient against XLA's.
TOLERANCE = 1e-4


def layer_shapes(image_size: int, widths: Sequence[int]) -> list[tuple[int, int, int, int]]:
  """(spatial size, in, out, how many per step) of each distinct encoder conv: per stage the
  width-setting conv once and the residual unit's conv twice."""
  shapes, channels, size = [], 3, image_size
  for width in widths:
    shapes.append((size, channels, width, 1))
    shapes.append((size, width, width, 2))
    channels, size = width, size // 2
  return shapes


def convolution(x: jax.Array, w: jax.Array) -> jax.Array:
  return jax.lax.conv_general_dilated(
      x,
      w,
      (1, 1),
      "SAME",
      dimension_numbers=("NHWC", "HWIO", "NHWC"),
      preferred_element_type=jnp.float32,
  )


def _padded_windows(x: jax.Array) -> list[jax.Array]:
  """The nine shifted (B, H, W, C) windows a 3x3 SAME convolution reads, in HW kernel order."""
  height, width = x.shape[1:3]
  padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  return [padded[:, i : i + height, j : j + width] for i in range(3) for j in range(3)]


def weight_gradient_per_tap(x: jax.Array, dy: jax.Array) -> jax.Array:
  """dW[i, j] = window(i, j)^T dy: nine (C x BHW) @ (BHW x D) matmuls."""
  taps = [jnp.einsum("bhwc,bhwd->cd", window, dy) for window in _padded_windows(x)]
  return jnp.stack(taps).reshape(3, 3, x.shape[-1], dy.shape[-1])


def weight_gradient_im2col(x: jax.Array, dy: jax.Array) -> jax.Array:
  """dW = patches^T dy, one (9C x BHW) @ (BHW x D) matmul over the im2col matrix."""
  patches = jnp.concatenate(_padded_windows(x), axis=-1)
  return jnp.einsum("bhwk,bhwd->kd", patches, dy).reshape(3, 3, x.shape[-1], dy.shape[-1])


FORMULATIONS: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
    "per_tap_matmuls": weight_gradient_per_tap,
    "im2col_matmul": weight_gradient_im2col,
}


def _timed(function, arguments, args) -> dict[str, Any]:
  compiled = jax.jit(function).lower(*arguments).compile()
  return common.time_calls(lambda: compiled(*arguments), warmup=args.warmup, repeats=args.repeats)


def measure_layer(size: int, c_in: int, c_out: int, dtype: str, args) -> dict[str, Any]:
  keys = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(keys[0], (args.batch_size, size, size, c_in)).astype(dtype)
  w = jax.random.normal(keys[1], (3, 3, c_in, c_out)).astype(dtype)
  dy = jax.random.normal(keys[2], (args.batch_size, size, size, c_out), jnp.float32)
  flops = 2.0 * args.batch_size * size * size * 9 * c_in * c_out
  directions = {
      "forward": (convolution, (x, w)),
      "input_gradient": (
          lambda x, w, dy: jax.vjp(lambda x: convolution(x, w), x)[1](dy)[0],
          (x, w, dy),
      ),
      "weight_gradient": (
          lambda x, w, dy: jax.vjp(lambda w: convolution(x, w), w)[1](dy)[0],
          (x, w, dy),
      ),
  }
  result = {"shape": [args.batch_size, size, size, c_in, c_out], "dtype": dtype, "flops": flops}
  for name, (function, arguments) in directions.items():
    timing = _timed(function, arguments, args)
    result[name] = {"timing": timing.to_json(), "flops_per_second": timing.rate(flops)}
  if dtype == "float32":
    reference = jax.jit(directions["weight_gradient"][0])(x, w, dy)
    for name, function in FORMULATIONS.items():
      error = float(jnp.abs(jax.jit(function)(x, dy) - reference).max() / jnp.abs(reference).max())
      if error > TOLERANCE:
        raise AssertionError(f"{name} differs from XLA's weight gradient by {error:.1e} relative")
      timing = _timed(function, (x, dy), args)
      result[f"weight_gradient_{name}"] = {
          "timing": timing.to_json(),
          "flops_per_second": timing.rate(flops),
          "relative_error": error,
      }
  return result


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  common.add_common_arguments(parser, output=common.RESULTS_DIR / "conv_layers.json")
  parser.add_argument("--batch_size", type=int, help="batch (default 16)")
  parser.add_argument("--matmul_size", type=int, help="side of the reference matmul")
  parser.add_argument("--dtypes", default="float32", help="comma-separated: float32, bfloat16")
  args = parser.parse_args(argv)
  args.dtypes = args.dtypes.split(",")
  if set(args.dtypes) - {"float32", "bfloat16"}:
    parser.error(f"--dtypes: float32 and/or bfloat16, got {args.dtypes}")
  common.fill_defaults(args, FULL, SMALL)
  return args


def main(argv: Sequence[str] | None = None) -> None:
  args = parse_args(sys.argv[1:] if argv is None else argv)
  config = common.load_config(args.config)
  if args.small:
    common.shrink_model(config.model)
  size = 32 if args.small else config.dataset.image_size
  shapes = layer_shapes(size, config.model.encoder_features)
  result = {"environment": common.environment(), "matmul": {}, "layers": [], "totals": {}}
  for dtype in args.dtypes:
    matmul = common.matmul_flops_per_second(args.matmul_size, dtype=dtype)
    result["matmul"][dtype] = matmul
    peak = matmul["flops_per_second"]["median"]
    totals = {}
    for size_, c_in, c_out, count in shapes:
      layer = measure_layer(size_, c_in, c_out, dtype, args)
      result["layers"].append(layer)
      row = [f"{size_}x{size_} {c_in}->{c_out}"]
      for name, values in layer.items():
        if isinstance(values, dict) and "timing" in values:
          seconds = values["timing"]["median_s"] * count
          totals[name] = totals.get(name, 0.0) + seconds
          rate = values["flops_per_second"]["median"]
          row.append(f"{name} {rate / 1e9:.0f} GFLOP/s ({rate / peak:.0%})")
      print(f"{dtype} " + " | ".join(row), flush=True)
    result["totals"][dtype] = totals
    print(
        f"{dtype}: seconds per step by direction {({k: round(v, 3) for k, v in totals.items()})}; "
        f"matmul {peak / 1e9:.0f} GFLOP/s"
    )
  print(f"wrote {common.write_result(args.output, 'conv_layers', result)}")


if __name__ == "__main__":
  huge_pages.relaunch_with_huge_pages()  # as the commands run
  main()
