"""Model + variables -> probabilities -> metrics -> report, for every caller.

Training's validation and test passes, the evaluate command, the `Localizer`, the experiments and
the benchmarks all go through here (as big_vision's evaluators), so that a checkpoint is scored
the same way whoever asks. It takes a model and its variables, never a train state.
"""

from collections.abc import Callable, Iterable, Mapping
import functools
import pathlib
from typing import Any

import flax.linen as nn
import jax
from jax.sharding import PartitionSpec as P
import ml_collections
import numpy as np

from lstm_endec_jax.data import input_pipeline
from lstm_endec_jax.evaluation import metrics as metrics_lib
from lstm_endec_jax.evaluation import visualize
from lstm_endec_jax.model import models
from lstm_endec_jax.runs import layout
from lstm_endec_jax.runtime import parallel
from lstm_endec_jax.runtime.errors import UserError

Batches = Iterable[dict[str, np.ndarray]]
Variables = Mapping[str, Any]


class NonFinitePredictionsError(UserError, ValueError):
  """A model gave NaN or infinite probabilities."""


@functools.lru_cache(maxsize=8)
def make_parallel_probabilities(model: nn.Module, mesh) -> Callable[[Variables, Any], jax.Array]:
  """`probabilities` over the mesh: replicated variables, images split on the data axis.

  One jitted function per (model, mesh): equal modules hash equal, so every evaluation of the same
  model in a process (each test set of a protocol, each robustness level) reuses its compilation.
  """
  sharded = jax.shard_map(
      lambda variables, images: models.probabilities(model, variables, images),
      mesh=mesh,
      in_specs=(P(), P(parallel.DATA_AXIS)),
      out_specs=P(parallel.DATA_AXIS),
      check_vma=False,
  )
  return jax.jit(sharded)


def padded(batch: Mapping[str, np.ndarray], size: int) -> dict[str, np.ndarray]:
  """Pads a short final batch to `size` rows; `valid` marks the real ones."""
  count = len(batch["image"])
  rows = {
      name: np.concatenate(
          [batch[name], np.zeros((size - count,) + batch[name].shape[1:], batch[name].dtype)]
      )
      for name in ("image", "mask", "label")
  }
  rows["valid"] = np.arange(size) < count
  return rows


def accumulate(
    parallel_probabilities,
    variables: Variables,
    batches: Batches,
    mesh,
    *,
    local_batch_size: int,
    max_batches: int,
    num_samples: int,
) -> tuple[metrics_lib.MetricAccumulator, dict[str, np.ndarray]]:
  """Streams batches through the model into a metric accumulator.

  Also returns the first `num_samples` images, masks and heat maps for the sample grid. Every
  process sees the global batch, so all compute the same metrics; with several processes, each
  one's loader must yield the same number of batches (short ones are padded to
  `local_batch_size`). `max_batches` < 0 means all.
  """
  accumulator = metrics_lib.MetricAccumulator()
  samples = {"image": [], "mask": [], "probs": []}
  for index, batch in enumerate(batches):
    if 0 <= max_batches <= index:
      break
    rows = parallel.global_batch(padded(batch, local_batch_size), mesh)
    fetched = {
        "probs": parallel_probabilities(variables, rows["image"]),
        "mask": rows["mask"],
        "label": rows["label"],
        "valid": rows["valid"],
    }
    wants_samples = len(samples["image"]) < num_samples
    if wants_samples:
      fetched["image"] = rows["image"]
    host = parallel.to_host(fetched)
    valid = host["valid"]
    if not np.isfinite(host["probs"][valid]).all():
      raise NonFinitePredictionsError(
          "the model's predictions are not finite: its weights or batch statistics have diverged"
      )
    accumulator.update(host["probs"][valid], host["mask"][valid], host["label"][valid])
    if wants_samples:
      for name in samples:
        samples[name].extend(host[name][valid][:num_samples])
  if accumulator.num_images == 0:
    raise UserError("The evaluation split yielded no images.")
  samples = {name: np.stack(values[:num_samples]) for name, values in samples.items() if values}
  return accumulator, samples


class Evaluator:
  """A model scored on splits of `config.dataset`, data-parallel over every device."""

  def __init__(self, model: nn.Module, config: ml_collections.ConfigDict, *, mesh=None):
    self.config = config
    self.mesh = mesh if mesh is not None else parallel.create_mesh(config.num_devices)
    parallel.check_batch_size(config.eval_batch_size, self.mesh, "eval batch size")
    self.local_batch_size = config.eval_batch_size // jax.process_count()
    self._probabilities = make_parallel_probabilities(model, self.mesh)

  def replicate(self, variables: Variables) -> Variables:
    """Variables placed on every device of the mesh, as `run` takes them."""
    return jax.device_put(dict(variables), parallel.replicated(self.mesh))

  def batches(self, split: str) -> Batches:
    return input_pipeline.create_eval_loader(self.config, split, batch_size=self.local_batch_size)

  def run(
      self, variables: Variables, batches: Batches, max_batches: int
  ) -> tuple[metrics_lib.MetricAccumulator, dict[str, np.ndarray]]:
    """Metrics of `batches` (at most `max_batches`; < 0: all) and the first sample images."""
    return accumulate(
        self._probabilities,
        variables,
        batches,
        self.mesh,
        local_batch_size=self.local_batch_size,
        max_batches=max_batches,
        num_samples=self.config.num_sample_images,
    )


def record(
    *,
    checkpoint: str,
    step: int,
    variant: str,
    dataset: str,
    split: str,
    max_batches: int,
    metrics: Mapping[str, float],
) -> dict[str, Any]:
  """The one schema of every eval.json, whether training or the evaluate command wrote it."""
  return {
      "checkpoint": checkpoint,
      "step": step,
      "variant": variant,
      "dataset": dataset,
      "split": split,
      "max_batches": max_batches,
      "metrics": dict(metrics),
  }


def write_figures(
    output_dir: pathlib.Path,
    accumulator: metrics_lib.MetricAccumulator,
    samples: Mapping[str, np.ndarray],
    *,
    auc: float,
    title: str,
    samples_name: str,
) -> np.ndarray | None:
  """The ROC curve and the sample grid `samples_name` (process 0 only); returns the grid."""
  if jax.process_index() != 0:
    return None
  output_dir.mkdir(parents=True, exist_ok=True)
  fpr, tpr, _ = accumulator.roc_curve()
  visualize.write_roc_png(output_dir / layout.ROC_FILE, fpr, tpr, auc=auc, title=title)
  if not samples:
    return None
  return visualize.write_sample_grid(
      output_dir / samples_name,
      samples["image"],
      samples["mask"],
      samples["probs"],
      max_images=len(samples["image"]),
  )
