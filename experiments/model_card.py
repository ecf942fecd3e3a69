r"""The numbers and figures of docs/model_card.md: a model's quality on the synthetic test splits.

  python -m experiments.model_card                                  # the shipped weights
  python -m experiments.model_card --checkpoint=WORKDIR --step=best --run=WORKDIR

Writes to `--output` (default docs/model_card/):
* `metrics.json`, `metrics.md`: for each of `--splits` (the in-generator test, the held-out-generator
  test and the cross-source test), metrics of every image and per manipulation type (splicing,
  copy-move, removal), each type's images together with all authentic images, so that pooled
  pixel and image-level metrics have the same negatives as the overall row;
* `samples_<type>.png`: image | ground truth | heat map | mask of the first images of a type of the
  first split, and `samples_by_type.png`, the first of each type (the README's figure); for the
  other splits only the latter, prefixed with the split's name;
* `learning_curve.png` (with `--run`): validation pixel AUC against training images seen, from the
  run's `metrics.jsonl`.
The robustness table comes from `python -m lstm_endec_jax.evaluate --robustness`.
"""

from collections.abc import Sequence
import json
import pathlib

from absl import flags
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
import numpy as np

from lstm_endec_jax.data import input_pipeline
from lstm_endec_jax.evaluation import metrics as metrics_lib
from lstm_endec_jax.evaluation import visualize
from lstm_endec_jax.inference import localizer as localizer_lib
from lstm_endec_jax.runs import layout
from lstm_endec_jax.runtime import cli
from tfds_builders import schema

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
TYPES = ("splicing", "copy_move", "removal")
TABLE_METRICS = (
    ("pooled/pixel_auc", "pixel AUC (pooled)"),
    ("per_image/pixel_auc", "pixel AUC (per image)"),
    ("per_image/f1", "F1@0.5 (per image)"),
    ("per_image/best_f1", "best F1 (per image, upper bound)"),
    ("pooled/pixel_accuracy", "pixel accuracy (pooled)"),
    ("image/auc", "image AUC (map max)"),
)


def define_flags() -> None:
  """The command's flags; defined only when this module is the program."""
  flags.DEFINE_string("checkpoint", None, "Training workdir; default: shipped weights.")
  flags.DEFINE_string("step", "best", "For --checkpoint: 'latest', 'best' or a number.")
  flags.DEFINE_string("run", None, "Training workdir whose metrics.jsonl gives the curve.")
  flags.DEFINE_string("dataset", "synthetic_splice/default", "TFDS name.")
  flags.DEFINE_list(
      "splits", ["test", "test_heldout_generator", "test_cross_source"], "Splits evaluated."
  )
  flags.DEFINE_string("output", str(REPO_ROOT / "docs" / "model_card"), "Output folder.")
  flags.DEFINE_integer("batch_size", 16, "Images per model call.")
  flags.DEFINE_integer("samples", 4, "Rows of each type's sample grid.")


def type_name(record: dict) -> str:
  return schema.MANIPULATION_TYPES[int(record["manipulation_type"])]


def predictions(localizer: localizer_lib.Localizer, source, batch_size: int, image_size: int):
  """(image, mask, label, type, P(manipulated)) of every record, the whole image resized."""
  for start in range(0, len(source), batch_size):
    records = [source[i] for i in range(start, min(start + batch_size, len(source)))]
    pairs = [
        input_pipeline.resize_pair(
            np.asarray(r["image"]), input_pipeline.binary_mask(r), image_size
        )
        for r in records
    ]
    probabilities = localizer.predict_batch(np.stack([image for image, _ in pairs]))
    for record, (image, mask), probs in zip(records, pairs, probabilities):
      yield image, mask, int(record["label"]), type_name(record), probs


def evaluate_by_type(
    localizer: localizer_lib.Localizer,
    source,
    batch_size: int,
    num_samples: int,
    image_size: int = localizer_lib.IMAGE_SIZE,
):
  """Metrics of all images and of each type (+ every authentic image); sample rows per type."""
  accumulators = {group: metrics_lib.MetricAccumulator() for group in ("all", *TYPES)}
  samples = {kind: [] for kind in TYPES}
  for image, mask, label, kind, probs in predictions(localizer, source, batch_size, image_size):
    groups = ["all", *TYPES] if kind == "none" else ["all", kind]
    for group in groups:
      accumulators[group].update(probs[None], mask[None], np.asarray([label]))
    if kind in samples and len(samples[kind]) < num_samples:
      samples[kind].append((image, mask, probs))
  return {group: acc.result() for group, acc in accumulators.items()}, samples


def metrics_table(results: dict[str, dict[str, float]]) -> str:
  header = "| images | count | " + " | ".join(label for _, label in TABLE_METRICS) + " |"
  lines = [header, "|---|---|" + "---|" * len(TABLE_METRICS)]
  for group, values in results.items():
    name = "all" if group == "all" else f"{group.replace('_', '-')} + authentic"
    cells = " | ".join(f"{values[key]:.3f}" for key, _ in TABLE_METRICS)
    lines.append(f"| {name} | {int(values['num_images'])} | {cells} |")
  return "\n".join(lines) + "\n"


def learning_curve(metrics_jsonl: pathlib.Path, batch_size: int, path: pathlib.Path) -> list:
  """Validation pooled / per-image pixel AUC against training images seen; returns the points."""
  records = [json.loads(line) for line in metrics_jsonl.read_text().splitlines()]
  points = sorted(
      {r["step"]: r for r in records if r["split"] == "validation"}.values(),
      key=lambda r: r["step"],
  )
  figure = Figure(figsize=(6, 4))
  FigureCanvasAgg(figure)
  axes = figure.add_subplot()
  images = [r["step"] * batch_size for r in points]
  for key, label in (("pooled/pixel_auc", "pooled"), ("per_image/pixel_auc", "per image")):
    axes.plot(images, [r[key] for r in points], marker="o", label=f"pixel AUC, {label}")
  axes.set_xlabel("training images seen")
  axes.set_ylabel("validation pixel AUC")
  axes.grid(alpha=0.3)
  axes.legend()
  figure.tight_layout()
  figure.savefig(path, dpi=100)
  return [
      {
          "step": r["step"],
          "images_seen": r["step"] * batch_size,
          "pooled/pixel_auc": r["pooled/pixel_auc"],
          "per_image/pixel_auc": r["per_image/pixel_auc"],
      }
      for r in points
  ]


def localizer_of(checkpoint: str | None, step: str, batch_size: int) -> localizer_lib.Localizer:
  """A run's checkpoint (`--checkpoint`, `--step`), or the shipped weights when none is named."""
  if checkpoint:
    return localizer_lib.Localizer.from_checkpoint(
        checkpoint, step=layout.parse_step(step), batch_size=batch_size
    )
  return localizer_lib.Localizer.from_pretrained(batch_size=batch_size)


def main(argv: Sequence[str]) -> None:
  del argv
  options = flags.FLAGS
  cli.quiet_libraries()
  localizer = localizer_of(options.checkpoint, options.step, options.batch_size)
  output = pathlib.Path(options.output)
  output.mkdir(parents=True, exist_ok=True)
  dataset_config = input_pipeline.default_dataset_config()
  summary = {"model": localizer.source, "dataset": options.dataset, "metrics": {}}
  tables = []
  for index, split in enumerate(options.splits):
    source = input_pipeline.data_source(dataset_config, options.dataset, split)
    results, samples = evaluate_by_type(localizer, source, options.batch_size, options.samples)
    summary["metrics"][split] = results
    tables.append(f"### {split}\n\n{metrics_table(results)}")
    prefix = "samples" if index == 0 else f"{split}_samples"
    firsts = [rows[0] for rows in samples.values() if rows]
    grids = [*samples.items(), ("by_type", firsts)] if index == 0 else [("by_type", firsts)]
    for name, rows in grids:
      if rows:
        images, masks, probs = (np.stack(column) for column in zip(*rows))
        visualize.write_sample_grid(
            output / f"{prefix}_{name}.png", images, masks, probs, max_images=len(rows)
        )
  if options.run:
    run = layout.Run(pathlib.Path(options.run))
    run_config = layout.read_config(run)
    summary["learning_curve"] = learning_curve(
        run.metrics_path, run_config.batch_size, output / "learning_curve.png"
    )
  (output / "metrics.json").write_text(json.dumps(summary, indent=1) + "\n")
  (output / "metrics.md").write_text("\n".join(tables))
  print("\n".join(tables))


if __name__ == "__main__":
  define_flags()
  cli.run(main, huge_pages=True)
