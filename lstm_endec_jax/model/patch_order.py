"""Orders in which the grid of patch features is fed to the LSTM (docs/method.md section 3).

A patch order is an integer permutation `order` of length `grid_size**2`: time step `s` reads the
patch with row-major index `order[s]` (patch index p = grid_size*row + col). The LSTM outputs are
put back into grid order with `inverse_permutation(order)`.

The paper feeds the patches along a Hilbert curve so that consecutive time steps are spatial
neighbours; raster and column orders exist for the paper's ordering ablation.
"""

import numpy as np

PATCH_ORDERS = ("hilbert", "raster", "column")


def _check_grid_size(grid_size: int) -> None:
  if not isinstance(grid_size, (int, np.integer)) or grid_size < 1:
    raise ValueError(f"grid_size must be a positive integer, got {grid_size!r}")


def _hilbert_cells(order: int) -> np.ndarray:
  """(row, col) of every step of a Hilbert curve over a 2^order grid, shape (4^order, 2).

  Every curve starts at the top-left cell and ends at the bottom-left one. The order-k curve
  visits the quadrants top-left, top-right, bottom-right, bottom-left: the top-left quadrant
  holds the order-(k-1) curve transposed (so it ends top-right, next to the second quadrant),
  the two right quadrants hold it unchanged, and the bottom-left one holds it reflected about
  the anti-diagonal (so it starts next to the third quadrant and ends bottom-left). With this
  construction the order-3 curve is exactly HLED's (0, 1, 9, 8, ..., 57, 56).
  """
  cells = np.zeros((1, 2), dtype=np.int64)
  for k in range(order):
    size = 2**k
    rows, cols = cells[:, 0], cells[:, 1]
    top_left = np.stack([cols, rows], axis=1)
    top_right = np.stack([rows, cols + size], axis=1)
    bottom_right = np.stack([rows + size, cols + size], axis=1)
    bottom_left = np.stack([2 * size - 1 - cols, size - 1 - rows], axis=1)
    cells = np.concatenate([top_left, top_right, bottom_right, bottom_left])
  return cells


def hilbert_order(grid_size: int) -> np.ndarray:
  """Time step -> row-major patch index along the Hilbert curve (HLED orientation).

  `grid_size` must be a power of two (a Hilbert curve of order k covers a 2^k x 2^k grid).
  """
  _check_grid_size(grid_size)
  order = int(grid_size).bit_length() - 1
  if 2**order != grid_size:
    raise ValueError(f"Hilbert order needs a power-of-two grid_size, got {grid_size}")
  cells = _hilbert_cells(order)
  return cells[:, 0] * grid_size + cells[:, 1]


def raster_order(grid_size: int) -> np.ndarray:
  """Row-major order: the identity permutation."""
  _check_grid_size(grid_size)
  return np.arange(grid_size * grid_size, dtype=np.int64)


def column_order(grid_size: int) -> np.ndarray:
  """Column-major order: down the first column, then the second, ..."""
  _check_grid_size(grid_size)
  return raster_order(grid_size).reshape(grid_size, grid_size).T.reshape(-1)


def inverse_permutation(perm: np.ndarray) -> np.ndarray:
  """`inv` with `inv[perm[i]] == i`: maps time-step-ordered values back to grid order."""
  perm = np.asarray(perm)
  if perm.ndim != 1 or not np.array_equal(np.sort(perm), np.arange(perm.size)):
    raise ValueError(f"not a permutation of 0..{perm.size - 1}: {perm!r}")
  inverse = np.empty_like(perm)
  inverse[perm] = np.arange(perm.size, dtype=perm.dtype)
  return inverse


def patch_order(name: str, grid_size: int) -> np.ndarray:
  """The permutation called `name` (one of PATCH_ORDERS) for a grid_size x grid_size grid."""
  orders = {"hilbert": hilbert_order, "raster": raster_order, "column": column_order}
  if name not in orders:
    raise ValueError(f"unknown patch order {name!r}; expected one of {PATCH_ORDERS}")
  return orders[name](grid_size)
