r"""Evaluates a trained checkpoint on a TFDS split, optionally under distortions.

  python -m lstm_endec_jax.evaluate --config=configs/base.py [--checkpoint=WORKDIR] \
      [--split=test] [--config.dataset.name=coverage] [--robustness] [--output=DIR]

Without --checkpoint it evaluates the weights shipped with the package (`shipped.py`).

Writes `eval.json` (the metrics of `metrics.MetricAccumulator`), `roc.png` and `samples.png` to
`--output` (default `<workdir>/evaluate/<dataset>_<split>_step<N>/`). `--robustness` evaluates the
split again under every level of `distortions.ROBUSTNESS_LEVELS` (JPEG quality 100..50, Gaussian
blur kernel 3..23, Gaussian noise sigma 3..23) and writes `robustness.json`, `robustness.md` and
`robustness.png` (metrics against distortion strength). Distortions are applied to the 256x256
model input, after the pipeline's resize, so that a level means the same on every dataset.
"""

from collections.abc import Iterator, Mapping, Sequence
import os
import pathlib
import sys
from typing import Any

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags
import ml_collections
import numpy as np

from lstm_endec_jax.data import distortions
from lstm_endec_jax.data import input_pipeline
from lstm_endec_jax.evaluation import evaluator as evaluator_lib
from lstm_endec_jax.evaluation import visualize
from lstm_endec_jax.runs import layout
from lstm_endec_jax.runs import reporting
from lstm_endec_jax.runs import shipped
from lstm_endec_jax.runs import weights
from lstm_endec_jax.runtime import cli
from lstm_endec_jax.runtime.errors import ConfigError

FLAGS = flags.FLAGS
# Columns of the Markdown robustness table (every metric is in robustness.json).
TABLE_METRICS = (
    "pooled/pixel_auc",
    "per_image/pixel_auc",
    "per_image/f1",
    "per_image/iou",
    "pooled/pixel_accuracy",
    "image/auc",
)


def define_flags() -> None:
  """The command line's flags; defined only when this module is the program, so that importing it
  beside another command-line module (e.g. in tests) defines no flag twice."""
  config_flags.DEFINE_config_file(
      "config",
      None,
      "Config of the model and dataset "
      "(configs/*.py); the checkpoint must hold the same model "
      "variant.",
      lock_config=True,
  )
  flags.DEFINE_string(
      "checkpoint",
      None,
      "A training workdir, its checkpoints/ directory, or one "
      "step directory (default: the weights shipped with the package).",
  )
  flags.DEFINE_string("step", "latest", "For a workdir: 'latest', 'best' or a step number.")
  flags.DEFINE_string(
      "split",
      None,
      "TFDS split of config.dataset.name, e.g. 'test' or "
      "'test[:100]' (default: config.test_split).",
  )
  flags.DEFINE_string(
      "output", None, "Output directory (default: <workdir>/evaluate/<dataset>_<split>_step<N>)."
  )
  flags.DEFINE_bool("robustness", False, "Also evaluate under JPEG, blur and noise.")
  flags.DEFINE_list(
      "distortions", list(distortions.ROBUSTNESS_LEVELS), "Distortions for --robustness."
  )
  flags.DEFINE_integer("seed", 0, "Seed of the Gaussian noise.")


def distorted(
    batches: evaluator_lib.Batches, name: str, strength: float, *, seed: int
) -> Iterator[dict[str, np.ndarray]]:
  """The batches with their images distorted; image i of the split always gets the same noise."""
  start_index = 0
  for batch in batches:
    images = distortions.distort_batch(
        batch["image"], name, strength, seed=seed, start_index=start_index
    )
    start_index += len(images)
    yield {**batch, "image": images}


def robustness_results(
    evaluator: evaluator_lib.Evaluator,
    variables: evaluator_lib.Variables,
    split: str,
    max_batches: int,
    *,
    names: Sequence[str],
    seed: int = 0,
) -> dict[str, dict[float, dict[str, float]]]:
  """distortion -> {strength: metrics} at every level of `distortions.ROBUSTNESS_LEVELS`."""
  results = {}
  for name in names:
    if name not in distortions.ROBUSTNESS_LEVELS:
      raise ConfigError(
          f"--distortions: unknown distortion {name!r}; expected some of "
          f"{list(distortions.ROBUSTNESS_LEVELS)}."
      )
    results[name] = {}
    for strength in distortions.ROBUSTNESS_LEVELS[name]:
      accumulator, _ = evaluator.run(
          variables, distorted(evaluator.batches(split), name, strength, seed=seed), max_batches
      )
      results[name][strength] = accumulator.result()
      logging.info(
          "%s %s: %s",
          distortions.STRENGTH_NAMES[name],
          strength,
          reporting.format_metrics(results[name][strength]),
      )
  return results


def robustness_table(
    results: Mapping[str, Mapping[float, Mapping[str, float]]],
    clean: Mapping[str, float],
    metrics: Sequence[str] = TABLE_METRICS,
) -> str:
  """Markdown table: one row per (distortion, strength), the undistorted row first."""
  lines = [
      "| distortion | strength | " + " | ".join(metrics) + " |",
      "|---|---|" + "---|" * len(metrics),
  ]

  def row(name: str, strength: str, values: Mapping[str, float]) -> str:
    return f"| {name} | {strength} | " + " | ".join(f"{values[m]:.4f}" for m in metrics) + " |"

  lines.append(row("none", "-", clean))
  for name, by_strength in results.items():
    for strength, values in by_strength.items():
      lines.append(row(f"{name} ({distortions.STRENGTH_NAMES[name]})", f"{strength:g}", values))
  return "\n".join(lines) + "\n"


def write_robustness(
    output_dir: pathlib.Path,
    results: Mapping[str, Mapping[float, Mapping[str, float]]],
    clean: Mapping[str, float],
    description: Mapping[str, Any],
) -> None:
  """The robustness sweep's JSON (every metric), Markdown table and plot."""
  layout.write_json(
      output_dir / layout.ROBUSTNESS_JSON,
      {
          **description,
          "clean": clean,
          "distortions": {
              name: {
                  "strength": distortions.STRENGTH_NAMES[name],
                  "levels": list(by_strength),
                  "metrics": list(by_strength.values()),
              }
              for name, by_strength in results.items()
          },
      },
  )
  (output_dir / layout.ROBUSTNESS_TABLE).write_text(robustness_table(results, clean))
  visualize.write_robustness_plot(output_dir / layout.ROBUSTNESS_PLOT, results, clean=clean)


def default_output_dir(loaded: weights.TrainedModel, dataset: str, split: str) -> pathlib.Path:
  """<workdir>/evaluate/<dataset>_<split>_step<N>; ./evaluate/pretrained_<name>/... for shipped
  weights (the package folder is no place for results)."""
  name = layout.folder_name(f"{dataset}_{split}_step{loaded.step}")
  if loaded.step_dir.suffix == ".npz":
    return pathlib.Path(layout.EVALUATE_DIR) / f"pretrained_{loaded.step_dir.stem}" / name
  run, _ = layout.locate(loaded.step_dir)
  return run.evaluate_dir(name)


def load_model(
    config: ml_collections.ConfigDict, checkpoint: str | os.PathLike[str] | None, step: str | int
) -> weights.TrainedModel:
  """The checkpoint's model, or the shipped weights when `checkpoint` is empty; either must be
  the variant `config.model` names."""
  source = checkpoint or shipped.INIT_FROM_PREFIX + shipped.DEFAULT_NAME
  return weights.load(source, step=step, model_config=config.model)


def evaluate_checkpoint(
    config: ml_collections.ConfigDict,
    checkpoint: str | os.PathLike[str] | None,
    *,
    step: str | int = "latest",
    split: str | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    robustness: bool = False,
    distortion_names: Sequence[str] = tuple(distortions.ROBUSTNESS_LEVELS),
    seed: int = 0,
) -> dict[str, float]:
  """Evaluates `checkpoint` (None: the shipped weights) on `split` of `config.dataset.name`;
  returns the clean metrics.

  `config.num_test_batches` (-1: all) bounds the batches of every pass.
  """
  split = split or config.test_split
  loaded = load_model(config, checkpoint, step)
  input_pipeline.ensure_dataset_built(config)
  output_dir = pathlib.Path(output_dir or default_output_dir(loaded, config.dataset.name, split))
  output_dir = layout.prepare_directory(output_dir, "--output")

  evaluator = evaluator_lib.Evaluator(loaded.model, config)
  variables = evaluator.replicate(loaded.variables)
  accumulator, samples = evaluator.run(variables, evaluator.batches(split), config.num_test_batches)
  clean = accumulator.result()
  record = evaluator_lib.record(
      checkpoint=str(loaded.step_dir),
      step=loaded.step,
      variant=loaded.variant,
      dataset=config.dataset.name,
      split=split,
      max_batches=config.num_test_batches,
      metrics=clean,
  )
  description = {name: value for name, value in record.items() if name != "metrics"}
  logging.info("%s %s: %s", config.dataset.name, split, reporting.format_metrics(clean))
  is_writer = jax.process_index() == 0
  layout.write_json(output_dir / layout.EVAL_FILE, record)
  evaluator_lib.write_figures(
      output_dir,
      accumulator,
      samples,
      auc=clean["pooled/pixel_auc"],
      title=f"{config.dataset.name} {split}, step {loaded.step}",
      samples_name=layout.SAMPLES_FILE,
  )
  if robustness:
    results = robustness_results(
        evaluator, variables, split, config.num_test_batches, names=distortion_names, seed=seed
    )
    if is_writer:
      write_robustness(
          output_dir,
          results,
          clean,
          {**description, "applied_to": "the 256x256 model input", "seed": seed},
      )
  reporting.announce(f"Results in {output_dir}")
  return clean


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if FLAGS.config is None:
    raise app.UsageError("--config is required, e.g. --config=configs/base.py")
  step = cli.parse_step_flag(FLAGS.step)
  cli.start_command()
  evaluate_checkpoint(
      FLAGS.config,
      FLAGS.checkpoint,
      step=step,
      split=FLAGS.split,
      output_dir=FLAGS.output,
      robustness=FLAGS.robustness,
      distortion_names=FLAGS.distortions,
      seed=FLAGS.seed,
  )


if __name__ == "__main__":
  define_flags()
  cli.check_config_file_flag(sys.argv)
  cli.run(main, huge_pages=True)
