"""What every study in experiments/ shares: scales, arms, runs, results, tables and plots.

A study compares *arms* (a config file plus overrides) trained on the same data for the same number
of steps from the same seeds. One arm at one seed is a *run*: `train.train_and_evaluate` into its
own workdir, whose test metrics, training curves and wall-clock time become one line of the study's
results file (JSONL, appended, never rewritten, so a study can be run in parts: an (arm, seed,
scale) already in the file is skipped). A run's workdir is named by a hash of its full config, so
arms of different studies that are the same run (e.g. `base` with Hilbert order, whole-image input)
train once; an interrupted run resumes from its checkpoints.

Experiments measure quality (does one model localise better than another, by how much, how sure
are we); `benchmarks/` measures speed. Hence a separate folder.
"""

from collections.abc import Callable, Mapping, Sequence
import dataclasses
import datetime
import hashlib
import json
import pathlib
import subprocess
import time
from typing import Any

from absl import app
from absl import flags
from absl import logging
import jax
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
import ml_collections
import numpy as np

from benchmarks import common as bench_common
from lstm_endec_jax.runs import layout
from lstm_endec_jax.training import train

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO_ROOT / "docs" / "results"

# The test-split numbers the studies report (pooled over all pixels of all test images, authentic
# images included) and the per-image averages shown beside them.
HEADLINE_METRICS = ("pooled/pixel_auc", "pooled/f1", "pooled/iou", "pooled/pixel_accuracy")
SECONDARY_METRICS = ("per_image/pixel_auc", "per_image/f1", "per_image/iou")
METRIC_LABELS = {
    "pooled/pixel_auc": "pixel AUC",
    "pooled/f1": "F1@0.5",
    "pooled/iou": "IoU@0.5",
    "pooled/pixel_accuracy": "pixel acc.",
    "per_image/pixel_auc": "AUC / image",
    "per_image/f1": "F1 / image",
    "per_image/iou": "IoU / image",
}
# Model widths a scale's `width_multiplier` shrinks (0 stays 0: a layer that is off).
WIDTH_FIELDS = (
    "encoder_features",
    "encoder_top_features",
    "lstm_hidden_size",
    "lstm_maps",
    "decoder_features",
)


@dataclasses.dataclass(frozen=True)
class Scale:
  """How big every run of a study is. The same arms and seeds run at every scale."""

  name: str
  description: str
  dataset_name: str
  num_train_steps: int
  batch_size: int
  width_multiplier: float  # every width in WIDTH_FIELDS times this, at least 2
  learning_rate_factor: float  # every arm's own learning rate times this
  seeds: tuple[int, ...]
  eval_every_steps: int  # validation points of the training curves
  num_eval_batches: int  # validation batches per point (-1 = the whole split)
  num_test_batches: int  # test batches of eval_batch_size for the reported numbers (-1 = all)
  eval_batch_size: int
  log_every_steps: int
  class_weight_batches: int
  worker_count: int  # grain worker processes (0 = in-process decoding)


SCALES = {
    scale.name: scale
    for scale in (
        Scale(
            name="test",
            description="seconds: CI checks that every study runs end to end",
            dataset_name="synthetic_splice/tiny",
            num_train_steps=1,
            batch_size=4,
            width_multiplier=1 / 8,
            learning_rate_factor=1.0,
            seeds=(0,),
            eval_every_steps=1,
            num_eval_batches=1,
            num_test_batches=1,
            eval_batch_size=4,
            log_every_steps=1,
            class_weight_batches=1,
            worker_count=0,
        ),
        Scale(
            name="cpu",
            description="a shared 2-core CPU: eighth-width models, very short runs",
            dataset_name="synthetic_splice/default",
            num_train_steps=80,
            batch_size=8,
            width_multiplier=1 / 8,
            learning_rate_factor=10.0,
            seeds=(0, 1, 2),
            eval_every_steps=20,
            num_eval_batches=1,
            num_test_batches=8,
            eval_batch_size=16,
            log_every_steps=5,
            class_weight_batches=4,
            worker_count=0,
        ),
        Scale(
            name="cpu_long",
            description="the cpu scale trained 4 times longer",
            dataset_name="synthetic_splice/default",
            num_train_steps=320,
            batch_size=8,
            width_multiplier=1 / 8,
            learning_rate_factor=10.0,
            seeds=(0, 1, 2),
            eval_every_steps=80,
            num_eval_batches=1,
            num_test_batches=8,
            eval_batch_size=16,
            log_every_steps=10,
            class_weight_batches=4,
            worker_count=0,
        ),
        Scale(
            name="gpu",
            description="one GPU per run: full-width models, the large synthetic set",
            dataset_name="synthetic_splice/large",
            num_train_steps=20000,
            batch_size=16,
            width_multiplier=1.0,
            learning_rate_factor=1.0,
            seeds=(0, 1, 2, 3, 4),
            eval_every_steps=1000,
            num_eval_batches=-1,
            num_test_batches=-1,
            eval_batch_size=32,
            log_every_steps=50,
            class_weight_batches=8,
            worker_count=8,
        ),
    )
}


@dataclasses.dataclass(frozen=True)
class Arm:
  """One contender: `configs/<config>.py` with `overrides` ({"model.patch_order": "raster"})."""

  name: str
  config: str
  description: str
  overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Study:
  """Arms compared on equal terms, and the rankings to test seed by seed (the paper's, unless
  `claims_source` names another source)."""

  name: str
  title: str
  arms: tuple[Arm, ...]
  claims: tuple[tuple[str, str], ...]  # (better, worse) arm pairs
  claims_source: str = "The paper's claims"  # the heading of the seed-by-seed table


# A study's own evaluation of a finished run: (arm, config, workdir) -> test metrics. The default
# reads the run's eval.json; the global-context study also tests on crops.
ArmMetrics = Callable[[Arm, ml_collections.ConfigDict, pathlib.Path], dict[str, float]]


_SCALE = flags.DEFINE_enum("scale", "cpu", list(SCALES), "Size of every run (see SCALES).")
_ARMS = flags.DEFINE_list("arms", [], "Run only these arms (default: all).")
_SEEDS = flags.DEFINE_list("seeds", [], "Run these seeds instead of the scale's.")
_WORKDIR_ROOT = flags.DEFINE_string(
    "workdir_root",
    str(REPO_ROOT / "workdir" / "experiments"),
    "Where the runs' workdirs go (one per distinct config).",
)
_RESULTS_DIR = flags.DEFINE_string(
    "results_dir", str(RESULTS_DIR), "Where results JSONL, Markdown tables and PNG plots go."
)
_DATA_DIR = flags.DEFINE_string("data_dir", "", "TFDS data dir (default: the input pipeline's).")
_DATASET = flags.DEFINE_string(
    "dataset",
    "",
    "TFDS dataset to train and test on instead of the scale's, e.g. "
    "synthetic_splice/manual or a manual-download builder (nist16, ...).",
)
_COMPILATION_CACHE = flags.DEFINE_bool(
    "compilation_cache",
    True,
    "Keep compiled programs in <workdir_root>/jax_cache: the seeds of "
    "an arm compile the same programs, so only the first pays for compiling.",
)
_REPORT_ONLY = flags.DEFINE_bool(
    "report_only", False, "Only rewrite tables and plots from the results file."
)


def _scaled_width(width: int, multiplier: float) -> int:
  return 0 if width == 0 else max(2, round(width * multiplier))


def scale_model_widths(
    model_config: ml_collections.ConfigDict, multiplier: float
) -> ml_collections.ConfigDict:
  """Every width of the model times `multiplier` (at least 2, so no layer vanishes)."""
  for field in WIDTH_FIELDS:
    value = model_config[field]
    if isinstance(value, int):
      model_config[field] = _scaled_width(value, multiplier)
    else:
      model_config[field] = tuple(_scaled_width(width, multiplier) for width in value)
  return model_config


def set_field(config: ml_collections.ConfigDict, dotted: str, value: Any) -> None:
  *parents, leaf = dotted.split(".")
  for parent in parents:
    config = config[parent]
  if leaf not in config:
    raise KeyError(f"config has no field {dotted!r}")
  config[leaf] = value


def run_config(
    arm: Arm, scale: Scale, seed: int, data_dir: str = "", dataset: str = ""
) -> ml_collections.ConfigDict:
  """The arm's config at `scale` and `seed`: the arm's own settings, the scale's sizes."""
  config = bench_common.load_config(REPO_ROOT / "configs" / f"{arm.config}.py")
  config.seed = seed
  scale_model_widths(config.model, scale.width_multiplier)
  config.learning_rate *= scale.learning_rate_factor
  config.dataset.name = dataset or scale.dataset_name
  config.dataset.mixture = ""
  config.dataset.worker_count = scale.worker_count
  if data_dir:
    config.dataset.data_dir = data_dir
  config.batch_size = scale.batch_size
  config.eval_batch_size = scale.eval_batch_size
  config.num_train_steps = scale.num_train_steps
  config.warmup_steps = min(config.warmup_steps, scale.num_train_steps // 5)
  config.log_every_steps = scale.log_every_steps
  config.eval_every_steps = scale.eval_every_steps
  config.checkpoint_every_steps = scale.num_train_steps
  config.keep_checkpoints = 1
  config.num_eval_batches = scale.num_eval_batches
  config.num_test_batches = scale.num_test_batches
  config.class_weight_batches = scale.class_weight_batches
  config.num_sample_images = 2
  for dotted, value in arm.overrides.items():
    set_field(config, dotted, value)
  return config


def run_dir_name(arm: Arm, config: ml_collections.ConfigDict) -> str:
  """`<config>-<hash of the whole config>`: equal configs share a run, whatever the study."""
  canonical = json.dumps(json.loads(config.to_json_best_effort()), sort_keys=True)
  return f"{arm.config}-{hashlib.sha256(canonical.encode()).hexdigest()[:12]}"


def read_jsonl(path: pathlib.Path) -> list[dict[str, Any]]:
  """The records of a JSONL file; a malformed line is reported and skipped, not fatal."""
  if not path.exists():
    return []
  records = []
  for number, line in enumerate(path.read_text().splitlines(), start=1):
    if not line.strip():
      continue
    try:
      records.append(json.loads(line))
    except json.JSONDecodeError as error:
      logging.warning("%s line %d is not JSON (%s); skipped.", path, number, error)
  return records


def append_jsonl(path: pathlib.Path, record: Mapping[str, Any]) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  with path.open("a") as f:
    f.write(json.dumps(record, sort_keys=True) + "\n")


def training_curves(workdir: pathlib.Path) -> dict[str, list[list[float]]]:
  """[step, value] pairs of the training loss and the validation pixel AUC from metrics.jsonl."""
  curves = {"train/loss": [], "validation/pooled/pixel_auc": []}
  for record in read_jsonl(layout.Run(workdir).metrics_path):
    for name in curves:
      split, metric = name.split("/", 1)
      if record.get("split") == split and record.get(metric) is not None:
        curves[name].append([record["step"], record[metric]])
  return curves


def eval_json_metrics(
    arm: Arm, config: ml_collections.ConfigDict, workdir: pathlib.Path
) -> dict[str, float]:
  """The default `ArmMetrics`: the test metrics `train_and_evaluate` wrote."""
  del arm, config
  return json.loads(layout.Run(workdir).eval_path.read_text())["metrics"]


def is_finished(workdir: pathlib.Path, config: ml_collections.ConfigDict) -> bool:
  path = layout.Run(workdir).eval_path
  return path.exists() and json.loads(path.read_text())["step"] == config.num_train_steps


class RunInterrupted(Exception):
  """Training stopped on a signal (its checkpoint is saved): the study stops too."""


def train_run(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> float:
  """Trains and tests one run unless already done; returns its wall-clock seconds.

  The time of a run trained earlier (by this or another study) is read back from `wall_time.json`.
  """
  timing = layout.Run(workdir).wall_time_path
  if is_finished(workdir, config) and timing.exists():
    return json.loads(timing.read_text())["seconds"]
  start = time.perf_counter()
  train.train_and_evaluate(config, str(workdir))
  seconds = time.perf_counter() - start
  if not is_finished(workdir, config):
    raise RunInterrupted(
        f"{workdir}: training stopped before step {config.num_train_steps}; "
        "run the same command again to resume it."
    )
  timing.write_text(json.dumps({"seconds": seconds}) + "\n")
  return seconds


def git_commit() -> str:
  try:
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    return "unknown"


def scale_label(scale: Scale, dataset: str = "") -> str:
  """How results name a scale: the scale, plus the dataset when `--dataset` replaced its own."""
  return f"{scale.name}+{dataset.replace('/', '_')}" if dataset else scale.name


def results_path(results_dir: pathlib.Path, study: Study) -> pathlib.Path:
  return results_dir / f"{study.name}.jsonl"


def run_study(
    study: Study,
    *,
    scale: Scale,
    seeds: Sequence[int],
    arm_names: Sequence[str],
    workdir_root: pathlib.Path,
    results_dir: pathlib.Path,
    data_dir: str = "",
    dataset: str = "",
    arm_metrics: ArmMetrics = eval_json_metrics,
) -> list[dict[str, Any]]:
  """Runs every (arm, seed) not yet in the results file, appending one record per run.

  A failed run is logged and the study goes on; the failures are raised at the end.
  """
  unknown = set(arm_names) - {arm.name for arm in study.arms}
  if unknown:
    raise ValueError(
        f"study {study.name!r} has no arm {sorted(unknown)}; "
        f"arms: {[arm.name for arm in study.arms]}"
    )
  path = results_path(results_dir, study)
  label = scale_label(scale, dataset)
  done = {(r["arm"], r["seed"]) for r in read_jsonl(path) if r["scale"] == label}
  new_records, failures = [], []
  for seed in seeds:  # seeds outermost: a study cut short still has every arm at the first seeds
    for arm in study.arms:
      if arm_names and arm.name not in arm_names or (arm.name, seed) in done:
        continue
      config = run_config(arm, scale, seed, data_dir, dataset)
      workdir = workdir_root / scale.name / run_dir_name(arm, config)
      logging.info("%s: arm %s, seed %d -> %s", study.name, arm.name, seed, workdir)
      try:
        seconds = train_run(config, workdir)
        start = time.perf_counter()
        metrics = arm_metrics(arm, config, workdir)
        seconds += time.perf_counter() - start
      except RunInterrupted:
        raise
      except Exception:  # pylint: disable=broad-except  # one failed run must not stop the rest
        logging.exception(
            "%s: arm %s, seed %d failed (workdir %s); going on with the others.",
            study.name,
            arm.name,
            seed,
            workdir,
        )
        failures.append(f"{arm.name}/seed {seed}")
        continue
      record = {
          "study": study.name,
          "arm": arm.name,
          "seed": seed,
          "scale": label,
          "dataset": config.dataset.name,
          "config": arm.config,
          "overrides": dict(arm.overrides),
          "workdir": str(workdir),
          "num_train_steps": config.num_train_steps,
          "wall_seconds": seconds,
          "metrics": metrics,
          "curves": training_curves(workdir),
          "machine": bench_common.environment(),
          "commit": git_commit(),
          "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
      }
      append_jsonl(path, record)
      new_records.append(record)
  if failures:
    raise RuntimeError(
        f"{study.name}: runs failed: {', '.join(failures)} (see the log above); "
        f"the others are in {path}. Rerun the same command to retry those."
    )
  return new_records


def summarize(values: Sequence[float]) -> tuple[float, float]:
  """Mean and sample standard deviation (0 for a single value)."""
  values = np.asarray(values, np.float64)
  return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def _by_arm(study: Study, records: Sequence[Mapping[str, Any]]) -> dict[str, dict[int, Mapping]]:
  """arm -> seed -> record, in the study's arm order; a seed run twice keeps its last record."""
  grouped = {arm.name: {} for arm in study.arms}
  for record in records:
    if record["arm"] in grouped:
      grouped[record["arm"]][record["seed"]] = record
  return {arm: arm_runs for arm, arm_runs in grouped.items() if arm_runs}


def _cell(values: Sequence[float]) -> str:
  mean, std = summarize(values)
  return f"{mean:.3f} ± {std:.3f}"


def _verdict(mean: float, std: float, wins: int, num_seeds: int) -> str:
  """In words, for the AUC difference of a claim: its sign and whether the seeds agree."""
  if num_seeds < 2:
    return "holds (1 seed)" if mean > 0 else "fails (1 seed)"
  if wins == num_seeds and mean > 2 * std:
    return "holds, every seed, mean > 2 std"
  if wins == num_seeds:
    return "holds in every seed"
  if wins == 0:
    return "reversed in every seed"
  return "holds on average, seeds disagree" if mean > 0 else "reversed on average, seeds disagree"


def markdown_report(
    study: Study,
    scale: Scale,
    label: str,
    records: Sequence[Mapping[str, Any]],
    plot_names: Sequence[str],
) -> str:
  """Tables (mean ± sample std over seeds), the claims seed by seed, ranking, cost."""
  grouped = _by_arm(study, records)
  descriptions = {arm.name: arm.description for arm in study.arms}
  metrics = HEADLINE_METRICS + SECONDARY_METRICS
  datasets = sorted({r.get("dataset", scale.dataset_name) for r in records})
  lines = [
      f"### {study.title} (scale `{label}`)",
      "",
      f"Test split of {', '.join(datasets)}, mean ± sample standard deviation over seeds; "
      f"{scale.description}, {scale.num_train_steps} steps of batch {scale.batch_size}.",
      "",
      "| arm | what | seeds | " + " | ".join(METRIC_LABELS[m] for m in metrics) + " | min/run |",
      "|---|---|---|" + "---|" * len(metrics) + "---|",
  ]
  for arm, arm_runs in grouped.items():
    cells = [_cell([r["metrics"][m] for r in arm_runs.values()]) for m in metrics]
    minutes = np.mean([r["wall_seconds"] for r in arm_runs.values()]) / 60
    lines.append(
        f"| `{arm}` | {descriptions[arm]} | {len(arm_runs)} | "
        + " | ".join(cells)
        + f" | {minutes:.1f} |"
    )

  lines += [
      "",
      f"{study.claims_source}, seed by seed (difference = better minus worse arm, "
      "mean ± std over the seeds both ran; wins = seeds where the claimed-better arm has "
      "the higher pixel AUC):",
      "",
      "| claim | "
      + " | ".join(f"Δ {METRIC_LABELS[m]}" for m in HEADLINE_METRICS)
      + " | wins on AUC | verdict |",
      "|---|" + "---|" * (len(HEADLINE_METRICS) + 2),
  ]
  for better, worse in study.claims:
    seeds = sorted(set(grouped.get(better, {})) & set(grouped.get(worse, {})))
    if not seeds:
      continue
    differences = {
        m: [grouped[better][s]["metrics"][m] - grouped[worse][s]["metrics"][m] for s in seeds]
        for m in HEADLINE_METRICS
    }
    auc_mean, auc_std = summarize(differences["pooled/pixel_auc"])
    wins = sum(d > 0 for d in differences["pooled/pixel_auc"])
    lines.append(
        f"| `{better}` > `{worse}` | "
        + " | ".join(_cell(differences[m]) for m in HEADLINE_METRICS)
        + f" | {wins}/{len(seeds)} | {_verdict(auc_mean, auc_std, wins, len(seeds))} |"
    )

  by_auc = sorted(
      grouped,
      key=lambda a: -summarize([r["metrics"]["pooled/pixel_auc"] for r in grouped[a].values()])[0],
  )
  lines += ["", f"Arms by mean pixel AUC: {' > '.join(f'`{arm}`' for arm in by_auc)}."]
  total_minutes = (
      sum(r["wall_seconds"] for arm_runs in grouped.values() for r in arm_runs.values()) / 60
  )
  lines += [
      "",
      f"Runs: {sum(len(arm_runs) for arm_runs in grouped.values())}, {total_minutes:.0f} min of "
      "wall time in total (runs shared with another study counted in both).",
      "",
  ]
  lines += [f"![{name}]({name})" for name in plot_names]
  return "\n".join(lines) + "\n"


def _save(figure: Figure, path: pathlib.Path) -> None:
  FigureCanvasAgg(figure)
  path.parent.mkdir(parents=True, exist_ok=True)
  figure.savefig(path, dpi=100)


def plot_bars(study: Study, records: Sequence[Mapping[str, Any]], path: pathlib.Path) -> None:
  """One panel per headline metric: mean per arm, ± std error bars, each seed a dot."""
  grouped = _by_arm(study, records)
  figure = Figure(figsize=(3.2 * len(HEADLINE_METRICS), 3.4), layout="constrained")
  for axes, metric in zip(figure.subplots(1, len(HEADLINE_METRICS)), HEADLINE_METRICS):
    for index, arm_runs in enumerate(grouped.values()):
      values = [r["metrics"][metric] for r in arm_runs.values()]
      mean, std = summarize(values)
      axes.bar(index, mean, yerr=std, color=f"C{index}", alpha=0.6, capsize=4)
      axes.plot(np.full(len(values), index), values, "k.", markersize=5)
    axes.set_xticks(range(len(grouped)), list(grouped), rotation=30, ha="right")
    axes.set_title(METRIC_LABELS[metric])
  figure.suptitle(f"{study.title}: test split, mean ± std over seeds (dots: seeds)")
  _save(figure, path)


def plot_curves(study: Study, records: Sequence[Mapping[str, Any]], path: pathlib.Path) -> None:
  """Training loss and validation pixel AUC against step; one line per run, colour per arm."""
  grouped = _by_arm(study, records)
  names = ("train/loss", "validation/pooled/pixel_auc")
  figure = Figure(figsize=(10, 3.6), layout="constrained")
  for axes, name in zip(figure.subplots(1, 2), names):
    for index, (arm, arm_runs) in enumerate(grouped.items()):
      for number, record in enumerate(arm_runs.values()):
        points = np.asarray(record["curves"][name], np.float64).reshape(-1, 2)
        axes.plot(
            points[:, 0],
            points[:, 1],
            color=f"C{index}",
            alpha=0.7,
            marker=".",
            label=arm if number == 0 else None,
        )
    axes.set_xlabel("step")
    axes.set_title(name)
  figure.axes[0].legend(fontsize="small")
  figure.suptitle(f"{study.title}: training curves (one line per seed)")
  _save(figure, path)


def write_report(
    study: Study, scale: Scale, results_dir: pathlib.Path, dataset: str = ""
) -> pathlib.Path | None:
  """Rewrites `<study>_<scale>.md` and its PNGs from every record of the results file."""
  label = scale_label(scale, dataset)
  records = [r for r in read_jsonl(results_path(results_dir, study)) if r["scale"] == label]
  if not records:
    logging.warning("No %s results at scale %s in %s yet.", study.name, label, results_dir)
    return None
  stem = f"{study.name}_{label}"
  plot_bars(study, records, results_dir / f"{stem}_bars.png")
  plot_curves(study, records, results_dir / f"{stem}_curves.png")
  path = results_dir / f"{stem}.md"
  path.write_text(
      markdown_report(study, scale, label, records, [f"{stem}_bars.png", f"{stem}_curves.png"])
  )
  logging.info("Wrote %s", path)
  return path


def main(argv: Sequence[str], study: Study, arm_metrics: ArmMetrics = eval_json_metrics) -> None:
  """A study script's `main`, after absl parsed the flags above."""
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  scale = SCALES[_SCALE.value]
  results_dir = pathlib.Path(_RESULTS_DIR.value)
  if _COMPILATION_CACHE.value:
    cache_dir = pathlib.Path(_WORKDIR_ROOT.value) / "jax_cache"
    jax.config.update("jax_compilation_cache_dir", str(cache_dir))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
  try:
    if not _REPORT_ONLY.value:
      seeds = [int(seed) for seed in _SEEDS.value] or list(scale.seeds)
      run_study(
          study,
          scale=scale,
          seeds=seeds,
          arm_names=_ARMS.value,
          workdir_root=pathlib.Path(_WORKDIR_ROOT.value),
          results_dir=results_dir,
          data_dir=_DATA_DIR.value,
          dataset=_DATASET.value,
          arm_metrics=arm_metrics,
      )
  finally:
    write_report(study, scale, results_dir, _DATASET.value)
