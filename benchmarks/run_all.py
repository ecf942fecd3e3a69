r"""Runs the benchmark suite: one JSON per benchmark and SUMMARY.md in benchmarks/results/.

  python -m benchmarks.run_all                          # every benchmark, full size (minutes)
  python -m benchmarks.run_all --small --results_dir=/tmp/bench   # smallest sizes (a test)
  python -m benchmarks.run_all --benchmarks=train_step,inference  # some of them

Each benchmark runs as its own process (`python -m benchmarks.<name>`, from the repository root)
one after the other, never two at once, so that they do not time each other. A benchmark that
fails is reported in SUMMARY.md with its error and the suite goes on. The machine's load average
is recorded before each one: this machine is shared, and a loaded machine gives slower numbers.

SUMMARY.md is a Markdown table (machine, date and jax version stated above it) that the README's
results table is pasted from. The input pipeline's images/s is compared with the train step's
consumption there (how many times faster the pipeline delivers than the step consumes).
"""

import argparse
import dataclasses
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks import common
from lstm_endec_jax.runtime import huge_pages

Rows = list[list[str]]


@dataclasses.dataclass(frozen=True)
class Benchmark:
  """A benchmark script, its arguments at full and smallest size, and its summary rows."""

  module: str
  full_args: tuple[str, ...]
  small_args: tuple[str, ...]
  rows: Callable[[dict[str, Any]], Rows]


def own_summary(result: dict[str, Any]) -> Rows:
  """train_step.py and inference.py write their rows as `summary`."""
  return result["summary"]


def feature_rows(result: dict[str, Any]) -> Rows:
  return [
      [
          f"resampling features ({row['method']}), batch {row['batch']}",
          f"{row['jax_images_per_second']['median']:.0f} images/s",
          f"min {row['jax_images_per_second']['min']:.0f}, max "
          f"{row['jax_images_per_second']['max']:.0f}; {row['speedup']:.0f}x the reference "
          f"pipeline ({row['reference_images_per_second']['median']:.1f} images/s); "
          f"{100 * row['peak_fraction']:.0f}% of matmul peak",
      ]
      for row in result["rows"]
  ]


def pipeline_rows(result: dict[str, Any]) -> Rows:
  return [
      [
          f"input pipeline, {run['worker_count']} worker(s), batch {result['batch_size']}",
          f"{run['images_per_second']:.1f} images/s",
          f"min {run['images_per_second_min']:.1f}, max {run['images_per_second_max']:.1f}; "
          f"first batch {run['first_batch_seconds']:.1f} s",
      ]
      for run in result["results"]
  ]


def model_rows(result: dict[str, Any]) -> Rows:
  return [
      [
          f"model {row['variant']}",
          f"{row['params']:,} parameters",
          f"{row['gflops_xla']:.1f} GFLOP per 256x256 image forward (XLA cost analysis; "
          f"{row['gflops_layer_shapes']:.1f} from layer shapes)",
      ]
      for row in result["models"]
  ]


def stdout_rows(result: dict[str, Any]) -> Rows:
  """A benchmark that only prints: one row per printed line."""
  return [
      [f"{result['benchmark']}", line.strip(), "printed"]
      for line in result.get("stdout", "").splitlines()
      if line.strip()
  ]


BENCHMARKS = {
    "train_step": Benchmark("benchmarks.train_step", (), ("--small",), own_summary),
    "inference": Benchmark("benchmarks.inference", (), ("--small",), own_summary),
    "feature_extraction": Benchmark(
        "benchmarks.feature_extraction",
        (),
        ("--batch_sizes=1", "--repeats=1", "--reference_repeats=1", "--peak_size=256"),
        feature_rows,
    ),
    "input_pipeline": Benchmark(
        "benchmarks.input_pipeline",
        (),
        (
            "--dataset=synthetic_splice/tiny",
            "--workers=0",
            "--batches=2",
            "--repeats=1",
            "--warmup=0",
            "--crop_size=96",
        ),
        pipeline_rows,
    ),
    "predict_tile": Benchmark("benchmarks.predict_tile", (), ("--small",), own_summary),
    "model_stats": Benchmark("benchmarks.model_stats", (), (), model_rows),
    "metrics_speed": Benchmark("benchmarks.metrics_speed", (), (), stdout_rows),
}


def run_benchmark(
    name: str,
    benchmark: Benchmark,
    output: pathlib.Path,
    *,
    small: bool,
    extra_args: Sequence[str],
    timeout: float,
) -> dict[str, Any]:
  """Runs one benchmark process; returns its JSON, or a record of its failure or its output."""
  command = [
      sys.executable,
      "-m",
      benchmark.module,
      *(benchmark.small_args if small else benchmark.full_args),
      *extra_args,
      f"--output={output}",
  ]
  output.unlink(missing_ok=True)  # A result from an earlier run must not pass for this one's.
  load = os.getloadavg()
  start = time.perf_counter()
  try:
    process = subprocess.run(
        command, cwd=common.REPO_ROOT, capture_output=True, text=True, timeout=timeout
    )
    returncode, stdout, stderr = process.returncode, process.stdout, process.stderr
  except subprocess.TimeoutExpired as error:
    returncode, stdout, stderr = None, error.stdout or "", f"timed out after {timeout:.0f} s"
  run = {
      "command": " ".join(command[1:]),
      "seconds": time.perf_counter() - start,
      "load_average_before": [round(value, 2) for value in load],
  }
  if returncode == 0 and output.is_file():
    result = json.loads(output.read_text())
  elif returncode == 0:  # Printed its results only.
    result = {"benchmark": name, "environment": common.environment(), "stdout": stdout}
  else:
    tail = (stderr if isinstance(stderr, str) else stderr.decode()).strip().splitlines()[-5:]
    result = {
        "benchmark": name,
        "environment": common.environment(),
        "error": f"exit status {returncode}: " + " / ".join(tail),
    }
  result.setdefault("environment", common.environment())
  result["run"] = run
  output.write_text(json.dumps(result, indent=2) + "\n")
  return result


def pipeline_lead_row(results: dict[str, dict[str, Any]]) -> Rows:
  """How many times the train step's consumption the input pipeline delivers."""
  pipeline, step = results.get("input_pipeline", {}), results.get("train_step", {})
  if "results" not in pipeline or "images_per_second" not in step:
    return []
  best = max(pipeline["results"], key=lambda run: run["images_per_second"])
  lead = best["images_per_second"] / step["images_per_second"]
  return [
      [
          "input pipeline lead over the train step",
          f"{lead:.1f}x",
          f"{best['images_per_second']:.1f} images/s delivered ({best['worker_count']} "
          f"worker(s)) vs {step['images_per_second']:.2f} images/s consumed",
      ]
  ]


def summary_markdown(
    results: dict[str, dict[str, Any]], small: bool, final_load: float | None = None
) -> str:
  """SUMMARY.md: where and when, then one table of every benchmark's headline numbers."""
  environment = next(iter(results.values()))["environment"]
  loads = ", ".join(
      f"{name} {result['run']['load_average_before'][0]:.1f}" for name, result in results.items()
  )
  rows = []
  for name, result in results.items():
    if "error" in result:
      rows.append([name, "failed", result["error"].replace("|", "/")])
      continue
    try:
      rows += (stdout_rows if "stdout" in result else BENCHMARKS[name].rows)(result)
    except (KeyError, TypeError, ValueError) as error:  # A changed result layout.
      rows.append([name, "see JSON", f"summary unreadable: {error!r}"])
    if name == "input_pipeline":
      rows += pipeline_lead_row(results)
  header = [
      "# Benchmark results" + (" (smallest sizes: a smoke run, not numbers)" if small else ""),
      "",
      f"Measured {environment['date_utc']} on {environment['machine']}; jax "
      f"{environment['jax']}, jaxlib {environment['jaxlib']}, flax {environment['flax']}, "
      f"backend {environment['backend']} ({environment['devices']}). Command: "
      f"`python -m benchmarks.run_all`. Medians over repeats after warm-up; spreads are the "
      f"slowest and fastest repeat. The machine was shared with other jobs; 1-minute load "
      f"average before each benchmark: {loads}"
      + (f"; after the last: {final_load:.1f}." if final_load is not None else "."),
      "",
  ]
  text = (
      "\n".join(header)
      + "\n"
      + common.markdown_table(["measure", "value", "spread / note"], rows)
      + "\n"
  )
  step = results.get("train_step", {})
  if "profile_table" in step:
    profile = step["headline"]["profile"]
    text += (
        "\n## Where the train step's time goes\n\n"
        f"A jax.profiler trace of {profile['steps']} step(s) of batch {step['batch_size']} on "
        f"{step['headline']['num_devices']} device; each XLA operation is attributed by the "
        f"Flax module in its metadata. Operations summed "
        f"{profile['op_seconds_per_step']:.2f} s per step against "
        f"{profile['wall_seconds_per_step']:.2f} s of wall time (operations can overlap on "
        "the cores)."
        + (
            " On the CPU the trace holds little of the convolutions' time (XLA runs them after "
            'their operation has returned): the row "train step time by part, each part alone" '
            "above is the one to read."
            if step["headline"]["environment"]["backend"] == "cpu"
            else ""
        )
        + "\n\n"
        + common.markdown_table(
            ["part", "forward s/step", "backward s/step", "total s/step", "share"],
            step["profile_table"],
        )
        + "\n"
    )
  return text


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--small", action="store_true", help="every benchmark at its smallest size")
  parser.add_argument(
      "--benchmarks",
      default=",".join(BENCHMARKS),
      help=f"comma-separated subset of {', '.join(BENCHMARKS)}",
  )
  parser.add_argument(
      "--results_dir",
      default=str(common.RESULTS_DIR),
      help="where the JSON files and SUMMARY.md go",
  )
  parser.add_argument("--timeout", type=float, default=3600, help="seconds per benchmark")
  args = parser.parse_args(argv)
  unknown = set(args.benchmarks.split(",")) - set(BENCHMARKS)
  if unknown:
    parser.error(f"unknown benchmarks {sorted(unknown)}; expected some of {list(BENCHMARKS)}")
  return args


def main(argv: Sequence[str] | None = None) -> None:
  args = parse_args(sys.argv[1:] if argv is None else argv)
  results_dir = pathlib.Path(args.results_dir)
  results_dir.mkdir(parents=True, exist_ok=True)
  results = {}
  with tempfile.TemporaryDirectory() as scratch:
    # The smallest input-pipeline run builds the tiny dataset (a second) in a scratch directory.
    extra = {"input_pipeline": [f"--data_dir={scratch}"]} if args.small else {}
    for name in args.benchmarks.split(","):
      print(f"running {name} ...", flush=True)
      results[name] = run_benchmark(
          name,
          BENCHMARKS[name],
          results_dir / f"{name}.json",
          small=args.small,
          extra_args=extra.get(name, []),
          timeout=args.timeout,
      )
      status = results[name].get("error", "ok")
      print(f"{name}: {status} ({results[name]['run']['seconds']:.0f} s)", flush=True)
  summary = summary_markdown(results, args.small, final_load=os.getloadavg()[0])
  (results_dir / "SUMMARY.md").write_text(summary)
  print(summary)
  if any("error" in result for result in results.values()):
    sys.exit(1)


if __name__ == "__main__":
  huge_pages.relaunch_with_huge_pages()  # as the commands run
  main()
