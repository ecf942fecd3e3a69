"""Parameter count and forward GFLOPs per 256x256 image of every model variant.

GFLOPs come from XLA's cost analysis of the compiled eval-mode forward pass (batch 1), and are
cross-checked against `flop_count`'s count from the layer shapes (matmuls, LSTM gates and the
resampling features' GEMM). The two differ by a few percent: XLA also counts BatchNorm, ReLU,
pooling and upsampling, but only the taps of a convolution that fall inside the image, while the
shape count includes the zero padding.

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

from benchmarks import flop_count
from lstm_endec_jax.model import models

RESULTS = pathlib.Path(__file__).parent / "results" / "model_stats.json"


def xla_flops(model: nn.Module, variables, images) -> float:
  forward = jax.jit(functools.partial(model.apply, train=False))
  cost = forward.lower(variables, images).compile().cost_analysis()
  if isinstance(cost, (list, tuple)):  # older jax returns one dict per device program
    cost = cost[0]
  return float(cost["flops"])


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
            "gflops_layer_shapes": sum(
                flop_count.forward_flops_by_part(model, variables, images).values()
            )
            / 1e9,
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
