"""FLOPs of a model counted from its layer shapes: the cross-check of XLA's cost analysis.

2 x multiply-adds of every convolution, dense layer and LSTM cell, plus the resampling features'
GEMM. XLA also counts the elementwise work (BatchNorm, ReLU, pooling, upsampling) but, for a
convolution, only the taps that fall inside the image, so the two agree to a few percent.
"""

import collections
from typing import Any

from flax import traverse_util
import flax.linen as nn
import jax
import numpy as np

from lstm_endec_jax.model import features
from lstm_endec_jax.model import layers

# Layers whose products run at their output's positions, and the one that runs them at its input's.
_AT_OUTPUT = (layers.Conv, nn.Dense, layers.PerPositionDense)
_AT_INPUT = (layers.UpsampledConv,)


def _layer_flops(module: nn.Module, inputs: jax.Array, outputs: jax.Array) -> float:
  """2 x multiply-adds of one call: positions x kernel elements (fan-in x outputs)."""
  kernel = module.variables["params"]["kernel"]
  if isinstance(module, layers.PerPositionDense):  # (positions, in, out): one matrix per position
    return 2.0 * float(np.prod(outputs.shape[:-2])) * kernel.size
  at = inputs if isinstance(module, _AT_INPUT) else outputs
  return 2.0 * float(np.prod(at.shape[:-1])) * kernel.size


def forward_flops_by_part(
    model: nn.Module, variables: Any, images: jax.Array | jax.ShapeDtypeStruct
) -> dict[str, float]:
  """Matmul FLOPs of one eval-mode forward pass per top-level part (encoder, decoder, lstm, ...).

  Every layer call is seen by a Flax method interceptor under `jax.eval_shape` (no compute). LSTM
  cells run in a scan and are counted from their kernels: 2 * batch * patches * kernel elements.
  The resampling features are one GEMM per patch (features.py's "matmul" method): pixels times
  the real and imaginary part of every feature.
  """
  flops = collections.Counter()

  def count(next_fun, args, kwargs, context):
    outputs = next_fun(*args, **kwargs)
    module = context.module
    if context.method_name == "__call__" and isinstance(module, _AT_OUTPUT + _AT_INPUT):
      part = "lstm" if module.path[0] == "lstm_branch" else module.path[0]
      flops[part] += _layer_flops(module, args[0], outputs)
    return outputs

  with nn.intercept_methods(count):
    jax.eval_shape(lambda v, x: model.apply(v, x, train=False), variables, images)
  if not model.use_lstm_branch:
    return dict(flops)
  batch, height, width, _ = images.shape
  _, num_patches, num_features = jax.eval_shape(features.resampling_features, images).shape
  for path, kernel in traverse_util.flatten_dict(variables["params"]).items():
    if path[0] == "lstm_branch" and any(name.startswith("OptimizedLSTMCell") for name in path):
      flops["lstm"] += 2.0 * batch * num_patches * kernel.size
  flops["features"] = 2.0 * batch * height * width * 2 * num_features
  return dict(flops)


def train_step_flops_estimate(forward: dict[str, float]) -> float:
  """Forward + backward: every parameterised matmul costs twice its forward again (input and weight
  gradients); the features have no parameters and no backward."""
  learned = sum(value for part, value in forward.items() if part != "features")
  return forward.get("features", 0.0) + 3.0 * learned
