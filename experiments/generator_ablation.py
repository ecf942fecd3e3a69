r"""Which generator step, held out alone, costs a model the most (issue: transfer to other tools).

  python -m experiments.generator_ablation --checkpoint=WORKDIR --step=best   # or the shipped weights

For the training recipe and for each `heldout_<step>` recipe (the training recipe with that one
step's held-out implementation, `implementations.HELD_OUT`), makes `--groups` groups of forgeries
from the test scenes in memory (same seeds for every recipe, so the backgrounds and the choices of
every other step are drawn alike) and scores the model on them, per manipulation type. Writes
`generator_ablation.{json,md}` to `--output`.
"""

from collections.abc import Sequence
import dataclasses
import json
import pathlib

from absl import flags
import numpy as np

from experiments import model_card
from lstm_endec_jax.runtime import cli
from tfds_builders import schema
from tfds_builders.synthetic_splice import implementations
from tfds_builders.synthetic_splice import photos
from tfds_builders.synthetic_splice import splicing
from tfds_builders.synthetic_splice import synthetic_splice_dataset_builder as builder_lib


def define_flags() -> None:
  """The command's flags; defined only when this module is the program."""
  flags.DEFINE_string("checkpoint", None, "Training workdir; default: shipped weights.")
  flags.DEFINE_string("step", "best", "For --checkpoint: 'latest', 'best' or a number.")
  flags.DEFINE_integer("groups", 30, "Pristine crops per recipe (7 images each).")
  flags.DEFINE_string("output", str(model_card.REPO_ROOT / "docs" / "model_card"), "Output folder.")


RECIPE_NAMES = ("train", *(f"heldout_{step}" for step in implementations.HELD_OUT))


def records(recipe: str, groups: int, size: int = 384) -> list[dict]:
  """The examples of `groups` test-scene crops made by `recipe`, as dataset records."""
  config = builder_lib.Builder.builder_configs["default"]  # its shares and options
  options = dataclasses.replace(config.options("test"), recipe=recipe)
  test_photos = photos.load_split("test")
  out = []
  for index in range(groups):
    group = splicing.generate_group(
        test_photos,
        np.random.default_rng([config.seed, 99, index]),
        size=size,
        splices_per_pristine=config.splices_per_pristine,
        include_authentic=config.include_authentic,
        copy_move_prob=config.copy_move_prob,
        removal_prob=config.removal_prob,
        options=options,
    )
    for forgery in group:
      out.append(
          {
              "image": forgery.image,
              "mask": forgery.mask[..., None],
              "label": int(forgery.manipulation_type != "none"),
              "manipulation_type": schema.MANIPULATION_TYPES.index(forgery.manipulation_type),
          }
      )
  return out


def main(argv: Sequence[str]) -> None:
  del argv
  options = flags.FLAGS
  cli.quiet_libraries()
  localizer = model_card.localizer_of(options.checkpoint, options.step, 16)
  results = {}
  for recipe in RECIPE_NAMES:
    metrics, _ = model_card.evaluate_by_type(localizer, records(recipe, options.groups), 16, 0)
    results[recipe] = metrics
    print(recipe, {k: round(v["pooled/pixel_auc"], 4) for k, v in metrics.items()}, flush=True)
  lines = [
      "| recipe | images | pixel AUC pooled | per image | splicing (per image) | copy-move | removal |",
      "|---|---|---|---|---|---|---|",
  ]
  for recipe, metrics in results.items():
    per_type = " | ".join(f"{metrics[t]['per_image/pixel_auc']:.3f}" for t in model_card.TYPES)
    lines.append(
        f"| {recipe} | {int(metrics['all']['num_images'])} | "
        f"{metrics['all']['pooled/pixel_auc']:.3f} | {metrics['all']['per_image/pixel_auc']:.3f} | "
        f"{per_type} |"
    )
  output = pathlib.Path(options.output)
  output.mkdir(parents=True, exist_ok=True)
  (output / "generator_ablation.json").write_text(
      json.dumps(
          {"model": localizer.source, "groups": options.groups, "metrics": results}, indent=1
      )
      + "\n"
  )
  (output / "generator_ablation.md").write_text("\n".join(lines) + "\n")
  print("\n".join(lines))


if __name__ == "__main__":
  define_flags()
  cli.run(main, huge_pages=True)
