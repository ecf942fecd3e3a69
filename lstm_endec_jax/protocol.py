r"""Scores one checkpoint on every test set of a protocol and writes the table a paper needs.

  python -m lstm_endec_jax.protocol --config=configs/protocol_casiav2.py --checkpoint=WORKDIR \
      --config.dataset.manual_dir=/data/forensics [--robustness] [--output=DIR]

The config's `protocol_test_sets` lists "dataset:split" entries (configs/protocol_*.py hold the
field's protocols). Each is scored by the evaluate command's code (`evaluate.evaluate_checkpoint`:
eval.json, roc.png and samples.png in `<output>/<dataset>_<split>/`, plus the robustness sweep
with --robustness), and `protocol.md`, `protocol.json` and `protocol.csv` gather one row per test
set and their mean, in the metrics of `TABLE_METRICS` (docs/metrics.md says which is which).
Without --checkpoint the shipped weights are scored.
"""

import copy
import csv
import io
import pathlib
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from absl import app
from absl import flags
import ml_collections
import numpy as np
from ml_collections import config_flags

from lstm_endec_jax import evaluate
from lstm_endec_jax.runs import layout
from lstm_endec_jax.runtime import cli
from lstm_endec_jax.runtime.errors import ConfigError
from lstm_endec_jax.training import config_checks

TABLE_METRICS = (
    "pooled/pixel_auc",
    "per_image/pixel_auc",
    "per_image/f1",
    "per_image/f1_or_inverse_border_band",
    "per_image/iou",
    "image/auc",
    "image/balanced_accuracy",
)
TABLE_FILES = ("protocol.md", "protocol.json", "protocol.csv")
FLAGS = flags.FLAGS


def define_flags() -> None:
  """The command's flags; defined only when this module is the program."""
  config_flags.DEFINE_config_file(
      "config", None, "A protocol config (configs/protocol_*.py).", lock_config=True
  )
  flags.DEFINE_string("checkpoint", None, "A training workdir or step (default: shipped weights).")
  flags.DEFINE_string("step", "latest", "For a workdir: 'latest', 'best' or a step number.")
  flags.DEFINE_string("output", "protocol", "Folder for the table and each test set's results.")
  flags.DEFINE_bool("robustness", False, "Also run the JPEG/blur/noise sweep on each test set.")


def test_sets(config: ml_collections.ConfigDict) -> list[tuple[str, str]]:
  """(dataset, split) pairs of `config.protocol_test_sets` ("name:split"; a split may hold ':')."""
  pairs = []
  for entry in config.protocol_test_sets:
    name, separator, split = entry.partition(":")
    if not separator or not name or not split:
      raise ConfigError(f"config.protocol_test_sets: expected 'dataset:split', got {entry!r}")
    config_checks.check_dataset_name(name, "config.protocol_test_sets")
    pairs.append((name, split))
  if not pairs:
    raise ConfigError("config.protocol_test_sets is empty")
  return pairs


def score_test_sets(
    config: ml_collections.ConfigDict,
    checkpoint: str | None,
    output_dir: pathlib.Path,
    *,
    step: str | int = "latest",
    robustness: bool = False,
) -> list[dict[str, Any]]:
  """One row per test set: dataset, split and every metric of its evaluation."""
  rows = []
  for name, split in test_sets(config):
    dataset_config = copy.deepcopy(config)
    dataset_config.dataset.name = name
    metrics = evaluate.evaluate_checkpoint(
        dataset_config,
        checkpoint,
        step=step,
        split=split,
        output_dir=output_dir / layout.folder_name(f"{name}_{split}"),
        robustness=robustness,
    )
    rows.append({"dataset": name, "split": split, **metrics})
  return rows


def with_mean(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
  """The rows and their unweighted mean over test sets (NaN where every value is NaN)."""
  mean = {"dataset": "mean", "split": f"{len(rows)} test sets"}
  for metric in TABLE_METRICS:
    values = np.asarray([row[metric] for row in rows], np.float64)
    mean[metric] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
  return [dict(row) for row in rows] + [mean]


def markdown(rows: Sequence[Mapping[str, Any]], title: str) -> str:
  lines = [
      f"# {title}",
      "",
      "| dataset | split | " + " | ".join(TABLE_METRICS) + " |",
      "|---|---|" + "---|" * len(TABLE_METRICS),
  ]
  for row in rows:
    cells = [f"{row[m]:.4f}" if np.isfinite(row[m]) else "-" for m in TABLE_METRICS]
    lines.append(f"| {row['dataset']} | {row['split']} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def csv_text(rows: Sequence[Mapping[str, Any]]) -> str:
  buffer = io.StringIO()
  writer = csv.DictWriter(buffer, ["dataset", "split", *TABLE_METRICS], extrasaction="ignore")
  writer.writeheader()
  writer.writerows(rows)
  return buffer.getvalue()


def write_table(output_dir: pathlib.Path, rows: Sequence[Mapping[str, Any]], title: str) -> None:
  """protocol.md (the table), protocol.json (every metric of every row), protocol.csv."""
  table, json_file, csv_file = (output_dir / name for name in TABLE_FILES)
  table.write_text(markdown(rows, title))
  layout.write_json(json_file, {"title": title, "metrics": list(TABLE_METRICS), "rows": list(rows)})
  csv_file.write_text(csv_text(rows))


def run_protocol(
    config: ml_collections.ConfigDict,
    checkpoint: str | None,
    output_dir: str | pathlib.Path,
    *,
    step: str | int = "latest",
    robustness: bool = False,
) -> list[dict[str, Any]]:
  """Scores every test set and writes the table; returns its rows, the mean last."""
  output_dir = layout.prepare_directory(output_dir, "--output")
  rows = with_mean(
      score_test_sets(config, checkpoint, output_dir, step=step, robustness=robustness)
  )
  write_table(output_dir, rows, config.get("protocol_name", "Protocol"))
  return rows


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if FLAGS.config is None:
    raise app.UsageError("--config is required, e.g. --config=configs/protocol_casiav2.py")
  step = cli.parse_step_flag(FLAGS.step)
  cli.start_command()
  test_sets(FLAGS.config)  # every name checked before anything is built or scored
  rows = run_protocol(
      FLAGS.config, FLAGS.checkpoint, FLAGS.output, step=step, robustness=FLAGS.robustness
  )
  print(markdown(rows, FLAGS.config.get("protocol_name", "Protocol")))
  print(f"Tables: {', '.join(str(pathlib.Path(FLAGS.output) / name) for name in TABLE_FILES)}")


if __name__ == "__main__":
  define_flags()
  cli.check_config_file_flag(sys.argv)
  cli.run(main, huge_pages=True)
