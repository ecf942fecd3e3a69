r"""Every encoder convolution of the train step, alone: forward, input and weight gradient rates.

  python -m benchmarks.conv_layers                      # base.py widths, batch 16, float32
  python -m benchmarks.conv_layers --dtypes=float32,bfloat16
  python -m benchmarks.conv_layers --small              # tiny widths and batch (a test)

The encoder's 3x3 convolutions are most of the step's arithmetic. Each layer shape is jitted alone
in its three directions (all do the same FLOPs), and its rate is compared with a large matmul of
the same dtype measured in the same run, on the CPU whose model and bfloat16 units (AMX,
AVX512-BF16) the result records. It also times rewrites (`FORMULATIONS`), each checked against
`lax.conv_general_dilated` in the same direction before it is timed: the weight gradient as matrix
products (where XLA's CPU weight-gradient convolution is slow), Winograd's F(2x2, 3x3) and
F(4x4, 3x3) for the forward convolution and the input gradient (fewer multiplies, more memory
traffic), and every direction as nine matrix products over shifted slices of one flattened array
("shifted dots", float32 and bfloat16: in bfloat16 they are XLA's dot with a float32 result, the
only XLA operation found to reach the CPU's bfloat16 units). Rates count the direct
convolution's FLOPs, so fewer multiplies show as a higher rate.
"""

import argparse
import functools
import sys
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from benchmarks import common
from lstm_endec_jax.runtime import huge_pages

FULL = {"batch_size": 16, "warmup": 1, "repeats": 3, "matmul_size": 4096}
SMALL = {"batch_size": 2, "warmup": 0, "repeats": 1, "matmul_size": 256}
# Largest difference of a rewrite from XLA's result in the same dtype, relative to the result's
# largest magnitude. float32: Winograd F(4x4, 3x3) rounds to about 1e-5. bfloat16: XLA returns
# the gradients in bfloat16 (half a unit in the last place is 2e-3 of the value; the rewrites
# keep float32), measured 3e-3.
TOLERANCE = {"float32": 1e-4, "bfloat16": 1e-2}


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


def weight_gradient_per_tap(x: jax.Array, w: jax.Array, dy: jax.Array) -> jax.Array:
  """dW[i, j] = window(i, j)^T dy: nine (C x BHW) @ (BHW x D) matmuls."""
  del w
  taps = [jnp.einsum("bhwc,bhwd->cd", window, dy) for window in _padded_windows(x)]
  return jnp.stack(taps).reshape(3, 3, x.shape[-1], dy.shape[-1])


def weight_gradient_im2col(x: jax.Array, w: jax.Array, dy: jax.Array) -> jax.Array:
  """dW = patches^T dy, one (9C x BHW) @ (BHW x D) matmul over the im2col matrix."""
  del w
  patches = jnp.concatenate(_padded_windows(x), axis=-1)
  return jnp.einsum("bhwk,bhwd->kd", patches, dy).reshape(3, 3, x.shape[-1], dy.shape[-1])


# Winograd's minimal filtering F(m x m, 3 x 3) (Lavin and Gray, "Fast Algorithms for Convolutional
# Neural Networks", CVPR 2016, whose transform matrices these are): output tiles of m x m from
# (m + 2)^2 products per channel pair instead of 9 m^2, 2.25x fewer for m = 2 and 4x for m = 4.
WINOGRAD = {
    2: {
        "BT": ((1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1)),
        "G": ((1, 0, 0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0, 0, 1)),
        "AT": ((1, 1, 1, 0), (0, 1, -1, -1)),
    },
    4: {
        "BT": (
            (4, 0, -5, 0, 1, 0),
            (0, -4, -4, 1, 1, 0),
            (0, 4, -4, -1, 1, 0),
            (0, -2, -1, 2, 1, 0),
            (0, 2, -1, -2, 1, 0),
            (0, 4, 0, -5, 0, 1),
        ),
        "G": (
            (1 / 4, 0, 0),
            (-1 / 6, -1 / 6, -1 / 6),
            (-1 / 6, 1 / 6, -1 / 6),
            (1 / 24, 1 / 12, 1 / 6),
            (1 / 24, -1 / 12, 1 / 6),
            (0, 0, 1),
        ),
        "AT": ((1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0), (0, 1, 1, 4, 4, 0), (0, 1, -1, 8, -8, 1)),
    },
}


def _combine(matrix: Sequence[Sequence[float]], items: Sequence[jax.Array]) -> list[jax.Array]:
  """`matrix @ items` with the coefficients known in Python: sums of scaled arrays that XLA
  fuses into one elementwise pass, instead of a dot with a contraction of 4 or 6."""
  rows = []
  for coefficients in matrix:
    terms = [c * item for c, item in zip(coefficients, items) if c != 0]
    rows.append(functools.reduce(jnp.add, terms))
  return rows


def winograd_convolution(x: jax.Array, w: jax.Array, tile: int) -> jax.Array:
  """`convolution(x, w)` (3x3, SAME, stride 1) by Winograd F(tile x tile, 3 x 3); the height and
  width must be multiples of `tile`."""
  matrices = WINOGRAD[tile]
  span = tile + 2
  batch, height, width, channels = x.shape
  padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  rows = _combine(matrices["BT"], [padded[:, r : r + height : tile] for r in range(span)])
  tiles = []  # the input transform B^T d B, one (B, H/tile, W/tile, C) array per tile position
  for row in rows:
    tiles += _combine(matrices["BT"], [row[:, :, s : s + width : tile] for s in range(span)])
  g = jnp.asarray(matrices["G"], w.dtype)
  kernel = jnp.einsum("ai,ijcd,bj->abcd", g, w, g).reshape(span * span, channels, -1)
  products = jnp.einsum(
      "knc,kcd->knd",
      jnp.stack(tiles).reshape(span * span, -1, channels),
      kernel,
      preferred_element_type=jnp.float32,
  ).reshape(span, span, batch, height // tile, width // tile, -1)
  rows = _combine(matrices["AT"], list(products))  # A^T M A, rows then columns
  output = [jnp.stack(_combine(matrices["AT"], list(row)), axis=3) for row in rows]
  return jnp.stack(output, axis=2).reshape(batch, height, width, -1)


def _flat_padded_grid(x: jax.Array) -> jax.Array:
  """x zero-padded by one pixel (two extra rows below, so every tap's slice fits) and flattened
  to (B, positions, C): on this grid, the tap (i, j) of output position p reads p + i*(W+2) + j."""
  batch, height, width, channels = x.shape
  padded = jnp.pad(x, ((0, 0), (1, 2), (1, 1), (0, 0)))
  return padded.reshape(batch, (height + 3) * (width + 2), channels)


def _tap_products(x: jax.Array, spec: str, operands: Sequence[jax.Array]) -> list[jax.Array]:
  """`einsum(spec, slice, operand)` in float32 for each 3x3 tap, in HW kernel order: the slice is
  the tap's window of x on the flattened padded grid, (B, H * (W + 2), C)."""
  _, height, width, _ = x.shape
  grid = _flat_padded_grid(x)
  positions = height * (width + 2)
  offsets = [i * (width + 2) + j for i in range(3) for j in range(3)]
  return [
      jnp.einsum(
          spec, grid[:, offset : offset + positions], operand, preferred_element_type=jnp.float32
      )
      for offset, operand in zip(offsets, operands, strict=True)
  ]


def shifted_dots_convolution(x: jax.Array, w: jax.Array) -> jax.Array:
  """`convolution(x, w)` as nine matrix products (positions x C) @ (C x D), each over a contiguous
  slice of the flattened padded image, accumulated in float32.

  No im2col matrix is built: every tap's input is a slice of one array. The outputs are computed
  on the padded grid's width (W + 2) and the two extra columns dropped. In bfloat16 each product
  is XLA's bfloat16 dot with float32 accumulation, which reaches the CPU's bfloat16 units
  (AVX512-BF16, AMX) where XLA's bfloat16 convolution does not.
  """
  batch, height, width, _ = x.shape
  products = _tap_products(x, "bpc,cd->bpd", list(w.reshape(9, w.shape[2], w.shape[3])))
  output = functools.reduce(jnp.add, products)
  return output.reshape(batch, height, width + 2, -1)[:, :, :width]


def shifted_dots_weight_gradient(x: jax.Array, w: jax.Array, dy: jax.Array) -> jax.Array:
  """dW[i, j] = slice(i, j)^T dy: nine (C x positions) @ (positions x D) products over the same
  contiguous slices, with dy placed on the padded grid (zeros in its two extra columns)."""
  batch, height, width, _ = x.shape
  dy_grid = jnp.pad(dy.astype(x.dtype), ((0, 0), (0, 0), (0, 2), (0, 0)))
  dy_grid = dy_grid.reshape(batch, height * (width + 2), -1)
  return jnp.stack(_tap_products(x, "bpc,bpd->cd", [dy_grid] * 9)).reshape(w.shape)


def _flipped(w: jax.Array) -> jax.Array:
  """The kernel whose SAME convolution of dy is the input gradient: rotated, in and out swapped."""
  return jnp.flip(w, (0, 1)).swapaxes(2, 3)


# Rewrites of one direction, each a function of (x, w, dy) and the dtypes it is timed in, checked
# against XLA's result for that direction before it is timed. Winograd's transforms would lose
# bfloat16's few mantissa bits, so it runs in float32 only.
FLOAT32 = ("float32",)
BOTH = ("float32", "bfloat16")
FORMULATIONS: dict[str, dict[str, tuple[Callable[..., jax.Array], tuple[str, ...]]]] = {
    "forward": {
        "winograd_f2x2": (lambda x, w, dy: winograd_convolution(x, w, 2), FLOAT32),
        "winograd_f4x4": (lambda x, w, dy: winograd_convolution(x, w, 4), FLOAT32),
        "shifted_dots": (lambda x, w, dy: shifted_dots_convolution(x, w), BOTH),
    },
    "input_gradient": {
        "winograd_f4x4": (lambda x, w, dy: winograd_convolution(dy, _flipped(w), 4), FLOAT32),
        "shifted_dots": (
            lambda x, w, dy: shifted_dots_convolution(dy.astype(w.dtype), _flipped(w)),
            BOTH,
        ),
    },
    "weight_gradient": {
        "per_tap_matmuls": (weight_gradient_per_tap, FLOAT32),
        "im2col_matmul": (weight_gradient_im2col, FLOAT32),
        "shifted_dots": (shifted_dots_weight_gradient, BOTH),
    },
}


def rewrites_for(dtype: str) -> list[tuple[str, str, Callable[..., jax.Array]]]:
  """(direction, name, function) of every rewrite timed in `dtype`."""
  return [
      (direction, name, function)
      for direction, rewrites in FORMULATIONS.items()
      for name, (function, dtypes) in rewrites.items()
      if dtype in dtypes
  ]


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
      "forward": (lambda x, w, dy: convolution(x, w), (x, w, dy)),
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
  for direction, name, function in rewrites_for(dtype):
    reference = jax.jit(directions[direction][0])(x, w, dy)
    error = float(jnp.abs(jax.jit(function)(x, w, dy) - reference).max())
    error /= float(jnp.abs(reference).max())
    if error > TOLERANCE[dtype]:
      raise AssertionError(f"{direction} {name} differs from XLA's by {error:.1e} relative")
    timing = _timed(function, (x, w, dy), args)
    result[f"{direction}_{name}"] = {
        "timing": timing.to_json(),
        "flops_per_second": timing.rate(flops),  # direct-convolution FLOPs, as XLA's
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
  config = common.config_of(args)
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
