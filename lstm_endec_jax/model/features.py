"""Resampling features of image patches (paper 3.1.1, HLED `Radon/extract_resamp_feat.py`).

The method in numbers: docs/method.md section 2.

Per patch: 3x3 Laplacian per colour channel with a symmetric boundary at the patch border,
`sqrt(|.|)`, mean over channels, Radon transform with scikit-image's `radon(circle=False)` geometry,
`rfft` over the offsets, and the magnitude normalised by its mean over the angles. The features
run on device inside the jitted train step, so everything here is jit/vmap/shard_map safe.

The Radon transform is a fixed sparse linear map of the patch (bilinear samples along rotated
rows, summed). Its indices and weights are computed once in numpy (`_radon_matrix`) and used in
two equivalent ways (`RADON_METHODS`):

* "gather": the sparse map itself. For every (angle, offset) output the bilinear taps of its 46
  sample points are pre-summed per patch pixel (~45 distinct pixels per output, at most 95 for
  the default geometry, ~21k weights per patch), then evaluated as a jitted gather-and-sum over
  all patches of the batch, followed by `jnp.fft.rfft`. It follows the Radon definition directly
  and is the reference path.
* "matmul" (default): the Radon map and the 46-point real DFT are both linear, so they are folded
  into one dense (patch_size**2, 2 * angles * bins) = (1024, 480) matrix, and Radon + rfft of a
  batch is a single GEMM (B*64, 1024) x (1024, 480). It does ~8x more arithmetic than the
  sparse map (65.6 vs 8.5 MFLOP per image), but XLA's CPU GEMM runs at a large fraction of the
  FMA peak while the gather is bound by loads, so on CPU the GEMM path is the faster one
  (benchmarks/feature_extraction.py measures both; the numbers are in benchmarks/results/).

Precision of the folded GEMM: XLA:CPU's GEMM accumulates each output over all 1024 products, and
the small high-frequency magnitudes sit ~1e-4 below the DC level, so in float32 the plain GEMM
misses the HLED vectors by ~2e-4. Removing the patch mean before the GEMM (and adding its exact
contribution `mean * column_sums` after) makes the rounding scale with the deviations instead and
brings the error to ~3e-5. `Precision.HIGHEST` keeps GPUs from rounding the GEMM to TF32.

Speed on CPU: XLA:CPU writes every intermediate of a big batch to fresh memory, so the batch is
processed in chunks of a few images (`lax.map`) whose intermediates stay in cache, which is
several times faster at large batches (benchmarks/feature_extraction.py). The Laplacian is written as masked slices of one padded
array (no per-shift padding, no reductions) so that XLA fuses it with `sqrt`, the channel mean
and the patch transpose into a single loop.

Inputs other than (B, 256, 256, 3) RGB (the documented contract of `resampling_features`):
* (B, H, W) and (B, H, W, 1) are grayscale: the Laplacian runs on the single channel, which
  equals treating the image as RGB with three equal channels.
* (B, H, W, 4) is RGBA: the alpha channel is dropped (the features describe colour content;
  compositing onto a background is the caller's choice).
* Spatial sizes other than patch_size*grid_size raise ValueError; resizing is the caller's job.
* A single image needs a leading batch axis (`images[None]`), so that under `vmap` a rank-3
  argument is always a grayscale batch, never ambiguous.
"""

import functools
import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

# HLED / paper defaults (docs/method.md section 2).
PAPER_LAPLACIAN = ((0.0, 1.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0))
RADON_METHODS = ("matmul", "gather")
# Images per sequential step on CPU (see the module docstring), the fastest chunk sizes in
# benchmarks/feature_extraction.py; other backends take the whole batch at once.
CPU_CHUNK_SIZES = {"matmul": 4, "gather": 1}

Kernel = Sequence[Sequence[float]]


def radon_angles(num_angles: int) -> tuple[float, ...]:
  """Projection angles in degrees: `linspace(0, 180, num_angles, endpoint=False)` as in HLED."""
  return tuple(float(a) for a in np.linspace(0.0, 180.0, num_angles, endpoint=False))


def radon_size(patch_size: int) -> int:
  """Number of Radon offsets: side of the zero-padded patch, ceil(patch_size * sqrt(2))."""
  return patch_size + int(math.ceil(math.sqrt(2) * patch_size - patch_size))


def num_frequencies(patch_size: int) -> int:
  """Number of rfft bins over the Radon offsets."""
  return radon_size(patch_size) // 2 + 1


@functools.lru_cache(maxsize=16)
def _radon_matrix(patch_size: int, angles_deg: tuple[float, ...]) -> np.ndarray:
  """Dense float64 Radon map, shape (num_angles, radon_size, patch_size**2).

  scikit-image's `radon(circle=False)`: the patch is zero-padded to N x N (pad split as
  `(P + pad) // 2 - P // 2` before), centre c = N // 2; at angle t, offset j and summed row r the
  sample point is x = cos*j + sin*r - c*(cos + sin - 1), y = -sin*j + cos*r - c*(cos - sin - 1)
  (x = column), read bilinearly with zeros outside the patch.
  """
  size = radon_size(patch_size)
  centre = size // 2
  pad_before = size // 2 - patch_size // 2
  offsets, rows = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
  matrix = np.zeros((len(angles_deg), size * patch_size * patch_size))
  for t, angle in enumerate(np.deg2rad(angles_deg)):
    cos, sin = np.cos(angle), np.sin(angle)
    x = cos * offsets + sin * rows - centre * (cos + sin - 1) - pad_before
    y = -sin * offsets + cos * rows - centre * (cos - sin - 1) - pad_before
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    for dy, dx, weight in (
        (0, 0, (1 - fy) * (1 - fx)),
        (0, 1, (1 - fy) * fx),
        (1, 0, fy * (1 - fx)),
        (1, 1, fy * fx),
    ):
      col, row = (x0 + dx).astype(np.int64), (y0 + dy).astype(np.int64)
      inside = (row >= 0) & (row < patch_size) & (col >= 0) & (col < patch_size)
      flat = (offsets * patch_size + row) * patch_size + col
      matrix[t] += np.bincount(flat[inside], weights=weight[inside], minlength=matrix.shape[1])
  return matrix.reshape(len(angles_deg), size, patch_size * patch_size)


@functools.lru_cache(maxsize=16)
def _radon_gather_table(
    patch_size: int, angles_deg: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray]:
  """Sparse Radon map as (indices, weights), each (num_angles * radon_size, max_taps).

  Row o lists the patch pixels that output o reads and their summed bilinear weights; rows are
  padded with (pixel 0, weight 0) to the longest row.
  """
  matrix = _radon_matrix(patch_size, angles_deg).reshape(-1, patch_size * patch_size)
  nonzero = matrix != 0
  max_taps = int(nonzero.sum(axis=1).max())
  # A stable argsort of "is zero" lists each row's nonzero pixels first, in increasing order.
  indices = np.argsort(~nonzero, axis=1, kind="stable")[:, :max_taps]
  weights = np.take_along_axis(matrix, indices, axis=1)
  return indices.astype(np.int32), weights.astype(np.float32)


@functools.lru_cache(maxsize=16)
def _radon_dft_matrix(
    patch_size: int, angles_deg: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray]:
  """Radon followed by the real DFT over offsets, folded in float64.

  Returns the float32 matrix (patch_size**2, 2 * angles * bins), columns [real parts,
  angle-major | imaginary parts, angle-major], and its float32 column sums (the spectrum of a
  constant patch of ones).
  """
  radon = _radon_matrix(patch_size, angles_deg)
  size = radon.shape[1]
  phase = 2 * np.pi * np.outer(np.arange(size), np.arange(num_frequencies(patch_size))) / size
  real = np.einsum("tjp,jk->ptk", radon, np.cos(phase))
  imag = np.einsum("tjp,jk->ptk", radon, -np.sin(phase))
  folded = np.concatenate(
      [real.reshape(radon.shape[2], -1), imag.reshape(radon.shape[2], -1)], axis=1
  )
  return folded.astype(np.float32), folded.sum(axis=0).astype(np.float32)


def _check_method(method: str) -> None:
  if method not in RADON_METHODS:
    raise ValueError(f"unknown Radon method {method!r}; expected one of {RADON_METHODS}")


def _gather_radon(flat_patches: jax.Array, patch_size: int, angles: tuple[float, ...]):
  """(M, P*P) -> (M, angles, N) by gather-and-sum over the pre-summed sparse taps.

  Pixel-major layout: one tap slot at a time gathers whole rows of M patch values (contiguous
  loads) for all outputs and accumulates them; gathering single values is far slower on CPU.
  """
  indices, weights = _radon_gather_table(patch_size, angles)
  indices, weights = jnp.asarray(indices), jnp.asarray(weights)
  pixels = flat_patches.T  # (P*P, M)

  def add_tap(slot, radon):
    return radon + weights[:, slot, None] * jnp.take(pixels, indices[:, slot], axis=0)

  radon = jax.lax.fori_loop(
      0, indices.shape[1], add_tap, jnp.zeros((indices.shape[0], pixels.shape[1]), jnp.float32)
  )
  return radon.T.reshape(flat_patches.shape[0], len(angles), radon_size(patch_size))


def radon_transform(
    patches: jax.Array,
    angles_deg: Sequence[float] | None = None,
    *,
    method: str = "gather",
) -> jax.Array:
  """Radon transform of square patches, (..., P, P) -> (..., num_angles, ceil(P*sqrt(2))).

  Equals `skimage.transform.radon(patch, angles_deg, circle=False).T` (float32 arithmetic).
  `angles_deg` defaults to `radon_angles(10)`. `method="matmul"` uses the dense Radon matrix.
  """
  _check_method(method)
  patches = jnp.asarray(patches, jnp.float32)
  if patches.ndim < 2 or patches.shape[-1] != patches.shape[-2]:
    raise ValueError(f"expected square patches (..., P, P), got shape {patches.shape}")
  patch_size = patches.shape[-1]
  angles = radon_angles(10) if angles_deg is None else tuple(float(a) for a in angles_deg)
  batch_shape = patches.shape[:-2]
  flat = patches.reshape(-1, patch_size * patch_size)
  if method == "gather":
    radon = _gather_radon(flat, patch_size, angles)
  else:
    matrix = _radon_matrix(patch_size, angles).astype(np.float32)
    radon = jnp.einsum("mp,tjp->mtj", flat, jnp.asarray(matrix), precision="highest")
  return radon.reshape(*batch_shape, len(angles), radon_size(patch_size))


def _as_color_batch(images: jax.Array, image_size: int) -> jax.Array:
  """Validates the input layout; returns (B, H, W, C), C in {1, 3}, in the input dtype."""
  shape = images.shape
  if len(shape) not in (3, 4) or (len(shape) == 4 and shape[-1] not in (1, 3, 4)):
    raise ValueError(
        "expected images of shape (B, H, W), (B, H, W, 1), (B, H, W, 3) or (B, H, W, 4), "
        f"got shape {shape}"
    )
  if shape[1:3] != (image_size, image_size):
    expected = (shape[0], image_size, image_size, *shape[3:])
    raise ValueError(
        f"expected images of shape {expected} (patch_size * grid_size = {image_size}; "
        f"resize before extracting features), got shape {shape}"
    )
  if len(shape) == 3:  # (B, H, W) grayscale.
    return images[..., None]
  if shape[-1] == 4:  # RGBA: drop alpha.
    return images[..., :3]
  return images


def _patch_error_maps(images: jax.Array, patch_size: int, grid_size: int, kernel: Kernel):
  """(B, H, W, C) pixels -> (B * grid**2, P*P) float32: sqrt(|Laplacian|), channel mean.

  Each patch is filtered on its own, as `convolve2d(..., mode='same', boundary='symm')` on the
  patch: at the patch border the 3x3 kernel reads the edge pixel again, i.e. the neighbour index
  is clamped to the patch along each axis. All taps are slices of one zero-padded image with
  that clamp applied by `where` on the patch-border rows and columns.
  """
  batch, height, width, channels = images.shape
  padded = jnp.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0))).astype(jnp.float32)
  position = np.arange(height) % patch_size
  crosses = {  # (axis, step) -> does a step of +-1 leave the patch here?
      (1, -1): (position == 0)[:, None, None],
      (1, 1): (position == patch_size - 1)[:, None, None],
      (2, -1): (position == 0)[:, None],
      (2, 1): (position == patch_size - 1)[:, None],
  }

  def tap(dy: int, dx: int) -> jax.Array:  # pixel (i + dy, j + dx), unclamped.
    return padded[:, 1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width]

  filtered = None
  for a, row in enumerate(kernel):
    for b, weight in enumerate(row):
      if not weight:
        continue
      dy, dx = 1 - a, 1 - b  # Convolution flips the kernel: tap (a, b) reads (i+1-a, j+1-b).
      value = tap(dy, dx)
      if dy and dx:
        value = jnp.where(
            crosses[(1, dy)],
            jnp.where(crosses[(2, dx)], tap(0, 0), tap(0, dx)),
            jnp.where(crosses[(2, dx)], tap(dy, 0), value),
        )
      elif dy:
        value = jnp.where(crosses[(1, dy)], tap(0, 0), value)
      elif dx:
        value = jnp.where(crosses[(2, dx)], tap(0, 0), value)
      filtered = weight * value if filtered is None else filtered + weight * value
  if filtered is None:
    filtered = jnp.zeros((batch, height, width, channels), jnp.float32)
  error = jnp.sqrt(jnp.abs(filtered))
  # An explicit sum (not a reduction) keeps XLA:CPU from splitting the fusion.
  error = sum(error[..., c] for c in range(channels)) * (1.0 / channels)
  error = error.reshape(batch, grid_size, patch_size, grid_size, patch_size)
  return error.transpose(0, 1, 3, 2, 4).reshape(-1, patch_size * patch_size)


def _spectrum_magnitude(error, patch_size, angles, method):
  """(M, P*P) error maps -> |rfft(radon)|, (M, angles, bins)."""
  if method == "gather":
    return jnp.abs(jnp.fft.rfft(_gather_radon(error, patch_size, angles), axis=-1))
  folded, column_sums = _radon_dft_matrix(patch_size, angles)
  mean = error.mean(axis=1, keepdims=True)
  spectrum = jnp.dot(error - mean, jnp.asarray(folded), precision=jax.lax.Precision.HIGHEST)
  spectrum = spectrum + mean * jnp.asarray(column_sums)
  spectrum = spectrum.reshape(-1, 2, len(angles), num_frequencies(patch_size))
  return jnp.sqrt(spectrum[:, 0] ** 2 + spectrum[:, 1] ** 2)


def _map_in_chunks(fn: Callable[[jax.Array], jax.Array], images: jax.Array, chunk_size: int):
  """fn over the batch, `chunk_size` images per sequential step (the remainder last)."""
  batch = images.shape[0]
  if batch <= chunk_size:
    return fn(images)
  whole = batch - batch % chunk_size
  chunks = images[:whole].reshape(whole // chunk_size, chunk_size, *images.shape[1:])
  out = jax.lax.map(fn, chunks)
  out = out.reshape(whole, *out.shape[2:])
  if whole < batch:
    out = jnp.concatenate([out, fn(images[whole:])])
  return out


@functools.partial(
    jax.jit,
    static_argnames=(
        "patch_size",
        "grid_size",
        "angles",
        "kernel",
        "eps",
        "method",
        "chunk_size",
    ),
)
def _resampling_features(images, *, patch_size, grid_size, angles, kernel, eps, method, chunk_size):
  images = _as_color_batch(images, patch_size * grid_size)

  def features_of(chunk):
    error = _patch_error_maps(chunk, patch_size, grid_size, kernel)
    magnitude = _spectrum_magnitude(error, patch_size, angles, method)
    features = magnitude / (magnitude.mean(axis=1, keepdims=True) + eps) - 1.0
    return features.reshape(chunk.shape[0], grid_size * grid_size, -1)

  if chunk_size is None:
    return features_of(images)
  return _map_in_chunks(features_of, images, chunk_size)


def resampling_features(
    images: jax.Array,
    *,
    patch_size: int = 32,
    grid_size: int = 8,
    num_angles: int = 10,
    laplacian: Kernel = PAPER_LAPLACIAN,
    eps: float = 1e-16,
    method: str = "matmul",
    chunk_size: int | None = -1,
) -> jax.Array:
  """Resampling features, (B, H, W[, C]) pixels -> (B, grid**2, num_angles * bins) float32.

  H = W = patch_size * grid_size (256 by default) and bins = ceil(patch_size*sqrt(2))//2 + 1
  (24), so the default output is (B, 64, 240): patches in row-major grid order, per patch the
  features angle-major (index = angle * bins + frequency). Pixel values may be uint8 or float
  on any scale: the features are invariant to a global intensity scale. Grayscale and RGBA
  inputs are documented in the module docstring. Constant images give -1 everywhere (zero
  spectrum, normalised with `eps`), never NaN.

  `feature[t, k] = |F[t, k]| / (mean_t' |F[t', k]| + eps) - 1` with F the rfft of the Radon
  transform at angle t (HLED's normalisation; the paper does not state one).

  `method` picks the Radon evaluation (`RADON_METHODS`, see the module docstring).
  `chunk_size` images are processed per sequential step; -1 (default) means
  CPU_CHUNK_SIZES[method] on the CPU backend and the whole batch elsewhere, None the whole batch.
  """
  _check_method(method)
  kernel_array = np.asarray(laplacian, dtype=np.float64)
  if kernel_array.shape != (3, 3):
    raise ValueError(f"laplacian must be a 3x3 kernel, got shape {kernel_array.shape}")
  if chunk_size == -1:
    chunk_size = CPU_CHUNK_SIZES[method] if jax.default_backend() == "cpu" else None
  if chunk_size is not None and chunk_size < 1:
    raise ValueError(f"chunk_size must be positive, -1 or None, got {chunk_size}")
  return _resampling_features(
      jnp.asarray(images),
      patch_size=patch_size,
      grid_size=grid_size,
      angles=radon_angles(num_angles),
      kernel=tuple(map(tuple, kernel_array.tolist())),
      eps=float(eps),
      method=method,
      chunk_size=chunk_size,
  )
