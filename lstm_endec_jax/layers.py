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

from lstm_endec_jax import patch_order

ModuleDef = Any

UPSAMPLING_KINDS = ("bilinear", "bilinear_deconv")
PROJECTION_KINDS = ("shared", "per_position")


def bilinear_kernel(factor: int) -> np.ndarray:
  """The 2-D bilinear interpolation kernel of an x`factor` transposed convolution.

  Size 2*factor - factor%2, as in FCN and HLED's `bilinear_upsample_weights`; with stride `factor`
  it reproduces half-pixel bilinear interpolation away from the border.
  """
  size = 2 * factor - factor % 2
  center = factor - 1 if size % 2 == 1 else factor - 0.5
  taps = 1 - np.abs(np.arange(size) - center) / factor
  return np.outer(taps, taps).astype(np.float32)


def _bilinear_deconv(x: jax.Array, factor: int) -> jax.Array:
  """HLED's fixed x`factor` upsampling: per-channel transposed conv with `bilinear_kernel`.

  Written as an input-dilated convolution; the padding is that of TF's `conv2d_transpose(...,
  padding='SAME')`, so outputs are `factor` times larger and aligned like HLED's.
  """
  kernel = bilinear_kernel(factor)
  size = kernel.shape[0]
  channels = x.shape[-1]
  pad_before = size - 1 - (size - factor) // 2
  pad_after = factor + size - 2 - pad_before
  depthwise = jnp.broadcast_to(
      jnp.asarray(kernel, x.dtype)[:, :, None, None], (size, size, 1, channels)
  )
  return jax.lax.conv_general_dilated(
      x,
      depthwise,
      window_strides=(1, 1),
      padding=((pad_before, pad_after), (pad_before, pad_after)),
      lhs_dilation=(factor, factor),
      dimension_numbers=("NHWC", "HWIO", "NHWC"),
      feature_group_count=channels,
  )


def upsample(x: jax.Array, factor: int, kind: str) -> jax.Array:
  """Parameter-free spatial upsampling of NHWC maps by an integer factor.

  The paper's decoder upsamples "with no learnable parameters" without naming the interpolation:
  `bilinear` is plain bilinear resizing (edge-clamped); `bilinear_deconv` is HLED's fixed bilinear
  transposed convolution (zero beyond the border, so border pixels are darker).
  """
  if factor == 1:
    return x
  if kind == "bilinear":
    batch, height, width, channels = x.shape
    return jax.image.resize(x, (batch, height * factor, width * factor, channels), "bilinear")
  if kind == "bilinear_deconv":
    return _bilinear_deconv(x, factor)
  raise ValueError(f"unknown upsampling kind {kind!r}; expected one of {UPSAMPLING_KINDS}")


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
    for width, factor in zip(self.features, self.factors):
      x = upsample(x, factor, self.upsampling)
      x = self.conv(width, kernel, use_bias=False)(x)
      x = nn.relu(self.norm()(x))
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
