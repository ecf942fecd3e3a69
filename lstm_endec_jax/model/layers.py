"""Building blocks of LSTM-EnDec and its baselines (paper section 3, docs/method.md section 4).

Every network in `models.py` is assembled from these blocks; the presets only change their
arguments. Modules take the convolution and normalisation constructors as fields (`conv`, `norm`),
as in the flax ImageNet example, so that dtype, BatchNorm mode and the cross-device axis name are
decided once, in the top-level module.
"""

from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lstm_endec_jax.model import patch_order

ModuleDef = Any

UPSAMPLING_KINDS = ("bilinear", "bilinear_deconv")
PROJECTION_KINDS = ("shared", "per_position")


def _check_upsampling_kind(kind: str) -> None:
  if kind not in UPSAMPLING_KINDS:
    raise ValueError(f"unknown upsampling kind {kind!r}; expected one of {UPSAMPLING_KINDS}")


def _moved(x: jax.Array, offset: int, axis: int, clamp: bool) -> jax.Array:
  """x[m + offset] along `axis`; beyond either end the end value (`clamp`) or zero."""
  if offset == 0:
    return x
  n = x.shape[axis]
  if offset > 0:
    body = jax.lax.slice_in_dim(x, offset, n, axis=axis)
    end = jax.lax.slice_in_dim(x, n - 1, n, axis=axis)
  else:
    body = jax.lax.slice_in_dim(x, 0, n + offset, axis=axis)
    end = jax.lax.slice_in_dim(x, 0, 1, axis=axis)
  fill = jnp.repeat(end if clamp else jnp.zeros_like(end), abs(offset), axis=axis)
  parts = [body, fill] if offset > 0 else [fill, body]
  return jnp.concatenate(parts, axis=axis)


def _upsample_and_sum_shifts(
    taps: Sequence[jax.Array], offsets: Sequence[int], factor: int, axis: int, kind: str
) -> jax.Array:
  """sum_j U(taps[j])[p + offsets[j]] along `axis`, zero where p + offsets[j] leaves U's range.

  U is x`factor` bilinear upsampling with half-pixel centres: output p = factor*m + r lies at input
  coordinate m + (2r + 1 - factor) / (2 factor), so it blends input m with one neighbour by a
  fixed weight per phase r. Beyond the ends the neighbour is the end value ("bilinear", as
  `jax.image.resize`) or zero ("bilinear_deconv", HLED's transposed convolution with
  `conv2d_transpose` padding 'SAME'). Each phase is an elementwise sum of shifted inputs, and the
  phases are interleaved once at the end: no dense resize matrix, and a gradient of slices.
  """
  clamp = kind == "bilinear"
  n = taps[0].shape[axis]
  positions_shape = [1] * taps[0].ndim
  positions_shape[axis] = n
  positions = np.arange(n).reshape(positions_shape)
  moved = {}  # (tap, shift) -> the shifted tap, made once though several phases read it

  def shifted(index: int, shift: int) -> jax.Array:
    if (index, shift) not in moved:
      moved[index, shift] = _moved(taps[index], shift, axis, clamp)
    return moved[index, shift]

  phases = []
  for phase in range(factor):
    total = 0
    for index, offset in enumerate(offsets):
      # Output p + offset is phase `source_phase` of input cell m + cell_offset.
      cell_offset, source_phase = divmod(phase + offset, factor)
      position = (2 * source_phase + 1 - factor) / (2 * factor)
      term = shifted(index, cell_offset)
      if position:
        neighbour = shifted(index, cell_offset + (1 if position > 0 else -1))
        term = (1 - abs(position)) * term + abs(position) * neighbour
      if cell_offset:  # the shifted output lies beyond the upsampled map: zero, as a conv pads
        inside = (positions + cell_offset >= 0) & (positions + cell_offset < n)
        term = term * jnp.asarray(inside, term.dtype)
      total = total + term
    phases.append(total)
  interleaved = jnp.stack(phases, axis=axis + 1)
  shape = list(taps[0].shape)
  shape[axis] *= factor
  return interleaved.reshape(shape)


def upsample(x: jax.Array, factor: int, kind: str) -> jax.Array:
  """Parameter-free spatial upsampling of NHWC maps by an integer factor.

  The paper's decoder upsamples "with no learnable parameters" without naming the interpolation:
  `bilinear` is plain bilinear resizing (edge-clamped, equal to `jax.image.resize`);
  `bilinear_deconv` is HLED's fixed bilinear transposed convolution (zero beyond the border, so
  border pixels are darker). Both are separable: one pass per spatial axis.
  """
  _check_upsampling_kind(kind)
  if factor == 1:
    return x
  for axis in (1, 2):
    x = _upsample_and_sum_shifts([x], [0], factor, axis, kind)
  return x


def upsampled_conv(x: jax.Array, kernel: jax.Array, factor: int, kind: str) -> jax.Array:
  """conv(upsample(x), kernel) with 'SAME' zero padding, computed at the input's resolution.

  Both maps are linear and the upsampling treats every channel alike, so each kernel tap's channel
  mixing can come first, on the small maps: one (in -> taps*out) matrix product at the low
  resolution, then per axis an upsampling that adds the taps' shifted copies. For the paper's
  decoder (x4, 3x3) that is about a tenth of the arithmetic of convolving the upsampled maps, with
  the same values up to float rounding.
  """
  _check_upsampling_kind(kind)
  kernel_height, kernel_width = kernel.shape[:2]
  # Flax's 'SAME': a k-tap kernel reads inputs p - (k - 1) // 2 ... p + k // 2.
  row_offsets = [i - (kernel_height - 1) // 2 for i in range(kernel_height)]
  column_offsets = [j - (kernel_width - 1) // 2 for j in range(kernel_width)]
  per_tap = jnp.einsum("bhwc,ijcd->bhwijd", x, kernel)
  columns = [per_tap[:, :, :, :, j] for j in range(kernel_width)]
  x = _upsample_and_sum_shifts(columns, column_offsets, factor, 2, kind)
  rows = [x[:, :, :, i] for i in range(kernel_height)]
  return _upsample_and_sum_shifts(rows, row_offsets, factor, 1, kind)


class Conv(nn.Module):
  """A stride-1 'SAME' convolution with `nn.Conv`'s parameters (names, shapes, initialisers: the
  same checkpoints), whose bias is added in float32.

  `nn.Conv` adds the bias in the compute dtype, so in bfloat16 the bias's gradient is a bfloat16
  sum over every pixel of the batch, and XLA keeps that sum in bfloat16: on the CPU, 4x256x256
  gradients of 1.0 summed to 16,384 instead of 262,144, so the biases (the classifier's among them)
  barely trained. Adding in float32 makes the sum float32. In float32 the values are `nn.Conv`'s.
  """

  features: int
  kernel_size: tuple[int, int]
  use_bias: bool = True
  dtype: Any = None
  param_dtype: Any = jnp.float32
  kernel_init: Callable[..., jax.Array] = nn.initializers.lecun_normal()
  bias_init: Callable[..., jax.Array] = nn.initializers.zeros_init()

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel_shape = (*self.kernel_size, x.shape[-1], self.features)
    kernel = self.param("kernel", self.kernel_init, kernel_shape, self.param_dtype)
    x, kernel = nn.dtypes.promote_dtype(x, kernel, dtype=self.dtype)
    y = self.linear_map(x, kernel)
    if not self.use_bias:
      return y
    bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype)
    return (y.astype(jnp.float32) + bias.astype(jnp.float32)).astype(y.dtype)

  def linear_map(self, x: jax.Array, kernel: jax.Array) -> jax.Array:
    return jax.lax.conv_general_dilated(
        x, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


class UpsampledConv(Conv):
  """A fixed upsampling by `factor`, then the convolution, computed as `upsampled_conv` (by
  `factor` 1, the plain convolution).

  `Conv`'s parameters, so checkpoints are the same as for `Conv(upsample(x))`.
  """

  factor: int = 1
  kind: str = UPSAMPLING_KINDS[0]

  def linear_map(self, x: jax.Array, kernel: jax.Array) -> jax.Array:
    if self.factor == 1:
      return super().linear_map(x, kernel)
    return upsampled_conv(x, kernel, self.factor, self.kind)


def max_pool_2x2(x: jax.Array) -> jax.Array:
  """2x2 max-pooling with stride 2 (VALID: an odd last row or column is dropped).

  The elementwise maximum of the four strided sub-grids: XLA's CPU backend compiles the gradient
  of `nn.max_pool` to a slow select-and-scatter, and this form's gradient is a few elementwise
  selects (faster: compare the pooling's share of benchmarks/train_step.py's profile). The values are
  the same; the gradient differs only where a window holds tied maxima (shared among them here),
  and after the ReLU that precedes every pooling in this network those are zeros, whose gradient
  the ReLU discards anyway.
  """
  height, width = x.shape[1] - x.shape[1] % 2, x.shape[2] - x.shape[2] % 2
  x = x[:, :height, :width]
  return jnp.maximum(
      jnp.maximum(x[:, 0::2, 0::2], x[:, 0::2, 1::2]),
      jnp.maximum(x[:, 1::2, 0::2], x[:, 1::2, 1::2]),
  )


class ResidualUnit(nn.Module):
  """Pre-activation residual unit with a parameter-free identity shortcut.

  [BN, ReLU, conv3x3, BN, ReLU, conv3x3] + x: the paper's "two convolutions with shortcut
  connection" (He et al. [37]) in HLED's `resUnit` arrangement. The first conv has no bias (a BN
  follows it); the second keeps one.
  """

  conv: ModuleDef
  norm: ModuleDef

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    features = x.shape[-1]
    y = nn.relu(self.norm()(x))
    y = self.conv(features, (3, 3), use_bias=False)(y)
    y = nn.relu(self.norm()(y))
    y = self.conv(features, (3, 3))(y)
    return x + y


class Encoder(nn.Module):
  """The paper's encoder: per stage conv3x3+BN+ReLU (sets the width), a residual unit, ReLU,
  2x2 max-pool. Returns every stage's pooled maps, finest first (FCN uses the skips).

  The paper's shortcut is parameter free, so the width change needs the leading conv; HLED has it.
  """

  features: Sequence[int]
  conv: ModuleDef
  norm: ModuleDef

  @nn.compact
  def __call__(self, x: jax.Array) -> list[jax.Array]:
    stage_outputs = []
    for width in self.features:
      x = self.conv(width, (3, 3), use_bias=False)(x)
      x = nn.relu(self.norm()(x))
      x = nn.relu(ResidualUnit(self.conv, self.norm)(x))
      x = max_pool_2x2(x)
      stage_outputs.append(x)
    return stage_outputs


class PerPositionDense(nn.Module):
  """A separate (in -> features) matrix for each of the T positions, with one shared bias.

  HLED's LSTM projection: `matmul(out[64, B, 64], W[64, 64, 32]) + b[32]`.
  """

  features: int
  use_bias: bool = True
  dtype: Any = None
  param_dtype: Any = jnp.float32
  kernel_init: Callable[..., jax.Array] = nn.initializers.lecun_normal(batch_axis=(0,))

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    positions, in_features = x.shape[-2:]
    kernel = self.param(
        "kernel", self.kernel_init, (positions, in_features, self.features), self.param_dtype
    )
    x, kernel = nn.dtypes.promote_dtype(x, kernel, dtype=self.dtype)
    y = jnp.einsum("...ti,tio->...to", x, kernel)
    if self.use_bias:
      bias = self.param("bias", nn.initializers.zeros, (self.features,), self.param_dtype)
      y = y + jnp.asarray(bias, y.dtype)
    return y


def _zero_lstm_state(x: jax.Array, hidden_size: int) -> tuple[jax.Array, jax.Array]:
  """Zero (c, h) for a (B, T, D) input, built from `x` so that under shard_map it varies over the
  same mesh axes as the data, as a scan carry must (a fresh `jnp.zeros` would not)."""
  zeros = jnp.broadcast_to(jnp.zeros_like(x[:, 0, :1]), (x.shape[0], hidden_size))
  return zeros, zeros


class LSTMBranch(nn.Module):
  """Resampling features of the patch grid -> 8x8xNf LSTM maps (paper 3.1.2-3.1.3).

  Input (B, T, D) per-patch features in row-major grid order. The patches are fed in
  `patch_order_name` order through `num_layers` stacked LSTMs (scanned with `nn.RNN`), the outputs
  are put back in grid order with the inverse permutation, projected to `num_maps` maps (eq. 1)
  and reshaped to (B, g, g, num_maps): map (r, c) belongs to patch (r, c).
  """

  hidden_size: int
  num_layers: int
  num_maps: int
  patch_order_name: str
  projection: str
  dropout_rate: float
  norm: ModuleDef | None
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, patch_features: jax.Array, *, train: bool) -> jax.Array:
    batch, num_patches, _ = patch_features.shape
    grid_size = int(round(np.sqrt(num_patches)))
    if grid_size * grid_size != num_patches:
      raise ValueError(f"expected a square grid of patches, got {num_patches}")
    order = patch_order.patch_order(self.patch_order_name, grid_size)
    x = patch_features.astype(self.dtype)[:, order]
    for _ in range(self.num_layers):
      cell = nn.OptimizedLSTMCell(self.hidden_size, dtype=self.dtype)
      x = nn.RNN(cell)(x, initial_carry=_zero_lstm_state(x, self.hidden_size))
      # HLED wraps each cell in DropoutWrapper(output_keep_prob=0.9).
      x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    x = x[:, patch_order.inverse_permutation(order)]
    # A bias right before BatchNorm is cancelled by its mean subtraction.
    use_bias = self.norm is None
    if self.projection == "shared":
      x = nn.Dense(self.num_maps, use_bias=use_bias, dtype=self.dtype)(x)
    elif self.projection == "per_position":
      x = PerPositionDense(self.num_maps, use_bias=use_bias, dtype=self.dtype)(x)
    else:
      raise ValueError(
          f"unknown projection {self.projection!r}; expected one of {PROJECTION_KINDS}"
      )
    x = x.reshape(batch, grid_size, grid_size, self.num_maps)
    if self.norm is not None:
      x = nn.relu(self.norm()(x))
    return x


class Decoder(nn.Module):
  """Upsampling decoder (paper 3.3): per stage a fixed upsampling, a conv, BN and ReLU.

  The upsampling and the conv of a stage run as one `UpsampledConv` (`upsampled_conv`), which
  computes them at the stage's input resolution.

  Stage i upsamples by `factors[i]` and convolves to `features[i]` maps. Factors beyond
  len(features) are trailing upsamplings with no conv (HLED ends with one). A final conv with bias
  (`classifier_kernel_size` > 0) produces the class maps; without it the last stage must already
  have `num_classes` maps (HLED: conv1x1 -> 2, BN, ReLU, then x4 upsampling).
  """

  features: Sequence[int]
  factors: Sequence[int]
  kernel_size: int
  classifier_kernel_size: int
  num_classes: int
  upsampling: str
  conv: ModuleDef
  upsampled_conv: ModuleDef
  norm: ModuleDef

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if len(self.factors) < len(self.features):
      raise ValueError(
          f"need an upsampling factor per decoder stage, got factors "
          f"{tuple(self.factors)} for features {tuple(self.features)}"
      )
    if not self.classifier_kernel_size and self.features[-1] != self.num_classes:
      raise ValueError(
          "without a classifier conv the last decoder stage must have "
          f"num_classes={self.num_classes} maps, got {self.features[-1]}"
      )
    kernel = (self.kernel_size, self.kernel_size)
    for stage, (width, factor) in enumerate(zip(self.features, self.factors)):
      conv = self.upsampled_conv(width, kernel, use_bias=False, factor=factor, name=f"Conv_{stage}")
      x = nn.relu(self.norm()(conv(x)))
    if self.classifier_kernel_size:
      size = self.classifier_kernel_size
      x = self.conv(self.num_classes, (size, size), name="classifier")(x)
    for factor in self.factors[len(self.features) :]:
      x = upsample(x, factor, self.upsampling)
    return x


class FCNHead(nn.Module):
  """FCN-style head (Long et al. [55]): 1x1 class scores on the coarsest encoder maps, upsampled
  x2 and summed with 1x1 scores of the previous stage (the FCN skip), then upsampled to the input.

  FCN learns its x2 deconvolution from a bilinear start and fixes the final one to bilinear; here
  both use the configured fixed upsampling, as the paper's own decoder does.
  """

  num_classes: int
  upsampling: str
  conv: ModuleDef

  @nn.compact
  def __call__(self, stage_outputs: Sequence[jax.Array], image_size: int) -> jax.Array:
    skip, top = stage_outputs[-2], stage_outputs[-1]
    scores = self.conv(self.num_classes, (1, 1), name="score_top")(top)
    scores = upsample(scores, skip.shape[1] // top.shape[1], self.upsampling)
    scores = scores + self.conv(self.num_classes, (1, 1), name="score_skip")(skip)
    return upsample(scores, image_size // skip.shape[1], self.upsampling)
