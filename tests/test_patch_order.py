"""Tests for the patch orders (docs/method.md section 3)."""

import numpy as np
import pytest

from lstm_endec_jax.model import patch_order

# HLED `Codes/hilbert.py` order for the 8x8 grid, as given in docs/method.md section 3.
HLED_ORDER_3_START = [0, 1, 9, 8, 16, 24, 25, 17, 18, 26, 27, 19, 11, 10, 2, 3, 4, 12]
HLED_ORDER_3_END = [57, 56]


def test_hilbert_order_3_is_hleds():
  order = patch_order.hilbert_order(8)
  assert order[: len(HLED_ORDER_3_START)].tolist() == HLED_ORDER_3_START
  assert order[-len(HLED_ORDER_3_END) :].tolist() == HLED_ORDER_3_END


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_hilbert_is_a_bijection_of_neighbours(k):
  grid_size = 2**k
  order = patch_order.hilbert_order(grid_size)
  assert order.shape == (grid_size**2,)
  np.testing.assert_array_equal(np.sort(order), np.arange(grid_size**2))
  rows, cols = np.divmod(order, grid_size)
  steps = np.abs(np.diff(rows)) + np.abs(np.diff(cols))
  np.testing.assert_array_equal(steps, 1)
  # Every order starts at the top-left patch and ends at the bottom-left one.
  assert order[0] == 0
  assert order[-1] == (grid_size - 1) * grid_size


@pytest.mark.parametrize("name", patch_order.PATCH_ORDERS)
@pytest.mark.parametrize("k", [1, 3, 5])
def test_inverse_undoes_the_order(name, k):
  grid_size = 2**k
  order = patch_order.patch_order(name, grid_size)
  inverse = patch_order.inverse_permutation(order)
  grid_values = np.random.default_rng(k).normal(size=(grid_size**2, 3))
  sequence = grid_values[order]
  np.testing.assert_array_equal(sequence[inverse], grid_values)
  np.testing.assert_array_equal(order[inverse], np.arange(grid_size**2))


def test_raster_and_column_orders():
  np.testing.assert_array_equal(patch_order.patch_order("raster", 3), np.arange(9))
  np.testing.assert_array_equal(patch_order.patch_order("column", 3), [0, 3, 6, 1, 4, 7, 2, 5, 8])


@pytest.mark.parametrize("grid_size", [0, 3, 6, -2])
def test_hilbert_rejects_non_power_of_two_grids(grid_size):
  with pytest.raises(ValueError, match="grid_size"):
    patch_order.hilbert_order(grid_size)


def test_unknown_order_name_is_rejected():
  with pytest.raises(ValueError, match="zigzag"):
    patch_order.patch_order("zigzag", 8)


@pytest.mark.parametrize("perm", [[0, 0, 1], [1, 2, 3], [[0, 1], [1, 0]]])
def test_inverse_rejects_non_permutations(perm):
  with pytest.raises(ValueError, match="not a permutation"):
    patch_order.inverse_permutation(np.array(perm))
