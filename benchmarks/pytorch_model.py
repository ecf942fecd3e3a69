"""LSTM-EnDec's `paper` variant in PyTorch: the other side of benchmarks/pytorch_comparison.py.

Written for the side-by-side benchmark only (torch is never a dependency of the package or its
tests). It is the network of `models.LSTMEnDec` with `models.model_config("paper")`, layer for
layer, so that both sides do the same arithmetic; `load_flax_variables` copies our Flax variables
into it, and the benchmark checks that both give the same probabilities and loss before it times
anything. Written the way a PyTorch user would write it for speed: NCHW modules that also run in
`channels_last` memory format, cuDNN/oneDNN convolutions, `nn.LSTM`, one GEMM for the Radon
transform and the DFT of the resampling features (the same folded matrix as features.py).
"""

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from lstm_endec_jax.model import features as features_lib
from lstm_endec_jax.model import patch_order


class ResamplingFeatures(nn.Module):
  """(B, 3, H, W) pixels -> (B, grid**2, angles * bins) resampling features (docs/method.md
  section 2): per patch 3x3 Laplacian with a replicated border, sqrt|.|, channel mean, Radon + rfft
  as one GEMM with the mean removed first, magnitude over the mean across angles, minus 1."""

  def __init__(self, patch_size: int = 32, grid_size: int = 8, num_angles: int = 10):
    super().__init__()
    self.patch_size, self.grid_size, self.num_angles = patch_size, grid_size, num_angles
    folded, column_sums = features_lib._radon_dft_matrix(  # pylint: disable=protected-access
        patch_size, features_lib.radon_angles(num_angles)
    )
    self.register_buffer("folded", torch.from_numpy(folded))
    self.register_buffer("column_sums", torch.from_numpy(column_sums))

  def forward(self, pixels: torch.Tensor) -> torch.Tensor:
    batch, channels = pixels.shape[:2]
    p, g = self.patch_size, self.grid_size
    patches = pixels.reshape(batch, channels, g, p, g, p).permute(0, 2, 4, 1, 3, 5)
    patches = patches.reshape(batch * g * g, channels, p, p)
    padded = F.pad(patches, (1, 1, 1, 1), mode="replicate")
    laplacian = (
        padded[..., :-2, 1:-1]
        + padded[..., 2:, 1:-1]
        + padded[..., 1:-1, :-2]
        + padded[..., 1:-1, 2:]
        - 4.0 * padded[..., 1:-1, 1:-1]
    )
    error = laplacian.abs().sqrt().mean(dim=1).reshape(batch * g * g, p * p)
    mean = error.mean(dim=1, keepdim=True)
    spectrum = (error - mean) @ self.folded + mean * self.column_sums
    spectrum = spectrum.reshape(-1, 2, self.num_angles, spectrum.shape[1] // (2 * self.num_angles))
    magnitude = torch.sqrt(spectrum[:, 0] ** 2 + spectrum[:, 1] ** 2)
    normalised = magnitude / (magnitude.mean(dim=1, keepdim=True) + 1e-16) - 1.0
    return normalised.reshape(batch, g * g, -1)


def _norm(width: int) -> nn.BatchNorm2d:
  # Flax's momentum 0.9 (weight of the running average) is PyTorch's momentum 0.1.
  return nn.BatchNorm2d(width, eps=1e-5, momentum=0.1)


class ResidualUnit(nn.Module):
  """[BN, ReLU, conv3x3 (no bias), BN, ReLU, conv3x3] + x, as layers.ResidualUnit."""

  def __init__(self, width: int):
    super().__init__()
    self.norm0, self.conv0 = _norm(width), nn.Conv2d(width, width, 3, padding=1, bias=False)
    self.norm1, self.conv1 = _norm(width), nn.Conv2d(width, width, 3, padding=1)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    y = self.conv0(F.relu(self.norm0(x)))
    return x + self.conv1(F.relu(self.norm1(y)))


class EncoderStage(nn.Module):
  """conv3x3 (no bias) + BN + ReLU, a residual unit, ReLU, 2x2 max-pool, as layers.Encoder."""

  def __init__(self, in_width: int, width: int):
    super().__init__()
    self.conv = nn.Conv2d(in_width, width, 3, padding=1, bias=False)
    self.norm = _norm(width)
    self.residual = ResidualUnit(width)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    x = F.relu(self.norm(self.conv(x)))
    return F.max_pool2d(F.relu(self.residual(x)), 2)


class LSTMEnDec(nn.Module):
  """Pixels (B, 3, H, W) 0..255 -> class logits (B, 2, H, W), the `paper` variant."""

  def __init__(
      self,
      encoder_features=(32, 64, 128, 256),
      lstm_hidden_size: int = 128,
      lstm_num_layers: int = 2,
      lstm_maps: int = 64,
      decoder_features=(64, 16),
      decoder_factors=(4, 4),
      num_classes: int = 2,
      grid_size: int = 8,
  ):
    super().__init__()
    widths = (3, *encoder_features)
    self.encoder = nn.ModuleList(EncoderStage(a, b) for a, b in zip(widths, widths[1:]))
    self.features = ResamplingFeatures(grid_size=grid_size)
    order = patch_order.patch_order("hilbert", grid_size)
    self.register_buffer("order", torch.from_numpy(np.asarray(order, np.int64)))
    self.register_buffer(
        "inverse_order",
        torch.from_numpy(np.asarray(patch_order.inverse_permutation(order), np.int64)),
    )
    num_features = features_lib.num_frequencies(32) * 10
    self.lstm = nn.LSTM(num_features, lstm_hidden_size, lstm_num_layers, batch_first=True)
    self.projection = nn.Linear(lstm_hidden_size, lstm_maps)
    widths = (encoder_features[-1] + lstm_maps, *decoder_features)
    self.decoder_convs = nn.ModuleList(
        nn.Conv2d(a, b, 3, padding=1, bias=False) for a, b in zip(widths, widths[1:])
    )
    self.decoder_norms = nn.ModuleList(_norm(width) for width in decoder_features)
    self.decoder_factors = decoder_factors
    self.classifier = nn.Conv2d(decoder_features[-1], num_classes, 3, padding=1)
    self.grid_size = grid_size

  def forward(self, pixels: torch.Tensor) -> torch.Tensor:
    x = pixels * (1.0 / 255.0)
    for stage in self.encoder:
      x = stage(x)
    sequence, _ = self.lstm(self.features(pixels)[:, self.order])
    maps = self.projection(sequence[:, self.inverse_order])
    maps = maps.reshape(maps.shape[0], self.grid_size, self.grid_size, -1).permute(0, 3, 1, 2)
    maps = F.interpolate(maps, scale_factor=x.shape[-1] // self.grid_size, mode="bilinear")
    x = torch.cat([x, maps.contiguous(memory_format=_memory_format(x))], dim=1)
    for conv, norm, factor in zip(self.decoder_convs, self.decoder_norms, self.decoder_factors):
      x = F.interpolate(x, scale_factor=factor, mode="bilinear")
      x = F.relu(norm(conv(x)))
    return self.classifier(x)


def _memory_format(x: torch.Tensor) -> torch.memory_format:
  if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
    return torch.channels_last
  return torch.contiguous_format


def weighted_cross_entropy(
    logits: torch.Tensor, masks: torch.Tensor, class_weights: torch.Tensor
) -> torch.Tensor:
  """Mean over pixels of w[y] * CE (paper eq. 4), as losses.weighted_softmax_cross_entropy."""
  per_pixel = F.cross_entropy(logits, masks, weight=class_weights, reduction="none")
  return per_pixel.mean()


def _conv(kernel: np.ndarray) -> torch.Tensor:
  return torch.from_numpy(np.ascontiguousarray(np.transpose(kernel, (3, 2, 0, 1))))


def _copy_norm(module: nn.BatchNorm2d, params: Mapping[str, Any], stats: Mapping[str, Any]):
  module.weight.data = torch.from_numpy(np.array(params["scale"]))
  module.bias.data = torch.from_numpy(np.array(params["bias"]))
  module.running_mean.data = torch.from_numpy(np.array(stats["mean"]))
  module.running_var.data = torch.from_numpy(np.array(stats["var"]))


def load_flax_variables(model: LSTMEnDec, variables: Mapping[str, Any]) -> LSTMEnDec:
  """Copies the variables of a Flax `paper` model (numpy arrays) into `model`, layout by layout:
  HWIO kernels -> OIHW, the LSTM's per-gate kernels -> PyTorch's stacked (i, f, g, o) rows."""
  params, stats = variables["params"], variables["batch_stats"]
  encoder, encoder_stats = params["encoder"], stats["encoder"]
  for index, stage in enumerate(model.encoder):
    stage.conv.weight.data = _conv(encoder[f"Conv_{index}"]["kernel"])
    _copy_norm(stage.norm, encoder[f"BatchNorm_{index}"], encoder_stats[f"BatchNorm_{index}"])
    unit, unit_stats = encoder[f"ResidualUnit_{index}"], encoder_stats[f"ResidualUnit_{index}"]
    for layer in (0, 1):
      getattr(stage.residual, f"conv{layer}").weight.data = _conv(unit[f"Conv_{layer}"]["kernel"])
      _copy_norm(
          getattr(stage.residual, f"norm{layer}"),
          unit[f"BatchNorm_{layer}"],
          unit_stats[f"BatchNorm_{layer}"],
      )
    stage.residual.conv1.bias.data = torch.from_numpy(np.array(unit["Conv_1"]["bias"]))
  branch = params["lstm_branch"]
  for layer in range(model.lstm.num_layers):
    cell = branch[f"OptimizedLSTMCell_{layer}"]
    stack = lambda prefix, c=cell: torch.from_numpy(
        np.concatenate(  # pylint: disable=cell-var-from-loop
            [np.array(c[prefix + gate]["kernel"]).T for gate in "ifgo"]
        )
    )
    getattr(model.lstm, f"weight_ih_l{layer}").data = stack("i")
    getattr(model.lstm, f"weight_hh_l{layer}").data = stack("h")
    getattr(model.lstm, f"bias_hh_l{layer}").data = torch.from_numpy(
        np.concatenate([np.array(cell["h" + gate]["bias"]) for gate in "ifgo"])
    )
    getattr(model.lstm, f"bias_ih_l{layer}").data.zero_()
  model.projection.weight.data = torch.from_numpy(np.array(branch["Dense_0"]["kernel"]).T.copy())
  model.projection.bias.data = torch.from_numpy(np.array(branch["Dense_0"]["bias"]))
  decoder, decoder_stats = params["decoder"], stats["decoder"]
  for index, (conv, norm) in enumerate(zip(model.decoder_convs, model.decoder_norms)):
    conv.weight.data = _conv(decoder[f"Conv_{index}"]["kernel"])
    _copy_norm(norm, decoder[f"BatchNorm_{index}"], decoder_stats[f"BatchNorm_{index}"])
  model.classifier.weight.data = _conv(decoder["classifier"]["kernel"])
  model.classifier.bias.data = torch.from_numpy(np.array(decoder["classifier"]["bias"]))
  return model
