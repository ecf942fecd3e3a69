"""Parameter count and forward GFLOPs per 256x256 image of every model variant.

GFLOPs come from XLA's cost analysis of the compiled eval-mode forward pass (batch 1), and are
cross-checked against a count from the layer shapes: 2 x multiply-adds of every convolution and
dense layer (output shapes captured from a forward pass) plus the LSTM gates at each of the 64
steps. The two differ by a few percent: XLA also counts BatchNorm, ReLU, pooling, upsampling and
the resampling features (~0.07 GFLOPs), but counts only the taps of a convolution that fall
inside the image, while the shape count includes the zero padding.

  python benchmarks/model_stats.py   # prints a table, writes benchmarks/results/model_stats.json
"""

import functools
import json
import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from clu import parameter_overview

from lstm_endec_jax import layers, models

RESULTS = pathlib.Path(__file__).parent / "results" / "model_stats.json"


def xla_flops(model: nn.Module, variables, images) -> float:
  forward = jax.jit(functools.partial(model.apply, train=False))
  cost = forward.lower(variables, images).compile().cost_analysis()
  if isinstance(cost, (list, tuple)):  # older jax returns one dict per device program
    cost = cost[0]
  return float(cost["flops"])


def layer_shape_flops(model: nn.Module, variables, images) -> float:
  """2 x multiply-adds of the convolutions, dense layers and LSTM cells, from their shapes."""
  is_linear = lambda module, _: isinstance(module, (nn.Conv, nn.Dense, layers.PerPositionDense))
  _, state = model.apply(
      variables, images, train=False, capture_intermediates=is_linear, mutable=["intermediates"]
  )
  flops = 0.0
  flat_params = {
      path[:-1]: leaf
      for path, leaf in jax.tree_util.tree_flatten_with_path(variables["params"])[0]
      if path[-1].key == "kernel"
  }
  for path, (output,) in _calls(state["intermediates"]):
    kernel = flat_params[path]
    if kernel.ndim == 3:  # per-position dense: (positions, in, out)
      flops += 2 * output.shape[0] * kernel.size
    else:  # conv / dense: every output position does a (kernel.size / out) dot per output map
      flops += 2 * np.prod(output.shape[:-1]) * kernel.size
  for path, leaf in jax.tree_util.tree_flatten_with_path(variables["params"])[0]:
    keys = [p.key for p in path]
    if "cell" in keys and keys[-1] == "kernel":  # ii/if/ig/io (in, H) and hi/hf/hg/ho (H, H)
      flops += 2 * images.shape[0] * 64 * leaf.size
  return float(flops)


def _calls(intermediates, prefix=()):
  for key, value in intermediates.items():
    if key == "__call__":
      yield prefix, value
    else:
      yield from _calls(value, prefix + (jax.tree_util.DictKey(key),))


def main() -> None:
  images = jnp.asarray(np.random.default_rng(0).integers(0, 256, (1, 256, 256, 3), np.uint8))
  rows = []
  for variant in models.VARIANTS:
    model = models.create_model(models.model_config(variant))
    variables = jax.jit(functools.partial(model.init, train=False))(
        jax.random.key(0, impl="rbg"), images
    )
    rows.append(
        {
            "variant": variant,
            "params": int(parameter_overview.count_parameters(variables["params"])),
            "gflops_xla": xla_flops(model, variables, images) / 1e9,
            "gflops_layer_shapes": layer_shape_flops(model, variables, images) / 1e9,
        }
    )
  print(f"{'variant':10s} {'params':>10s} {'GFLOPs (XLA)':>13s} {'GFLOPs (shapes)':>16s}")
  for row in rows:
    print(
        f"{row['variant']:10s} {row['params']:10,d} {row['gflops_xla']:13.2f} "
        f"{row['gflops_layer_shapes']:16.2f}"
    )
  RESULTS.parent.mkdir(parents=True, exist_ok=True)
  RESULTS.write_text(
      json.dumps(
          {"image_size": 256, "batch": 1, "device": jax.devices()[0].platform, "models": rows},
          indent=2,
      )
      + "\n"
  )
  print(f"wrote {RESULTS}")


if __name__ == "__main__":
  main()
