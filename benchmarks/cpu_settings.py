r"""The train step under the CPU settings the package chooses, each in its own process, in turn.

  python -m benchmarks.cpu_settings                 # base.py model, batch 16, 2 rounds
  python -m benchmarks.cpu_settings --small         # tiny widths, batch 2, 1 round (a test)
  python -m benchmarks.cpu_settings --settings=ynnpack,xla_flag,package   # these three

XLA reads XLA_FLAGS, and glibc its tunables, once per process, so every setting runs in a child
process; the settings take turns round by round, so that a change in the machine's load hits them
alike. Settings (each adds to the one before it, except `bfloat16`):
  ynnpack   jaxlib 0.10's default: every convolution in a YNNPACK fusion (on one core);
  xla_flag  convolutions out of that fusion (lstm_endec_jax/runtime/xla_flags.py), small pages;
  package   what the commands run with: the XLA flag and transparent huge pages for XLA's buffers
            (lstm_endec_jax/runtime/huge_pages.py);
  bfloat16  `package` with `model.dtype=bfloat16` (parameters and optimizer stay float32);
  memory_scheduler  `package` with XLA's memory-optimized scheduler, which orders the step's
            operations to keep fewer buffers alive at once (`--xla_cpu_scheduler_type`).
Each child reports seconds per step (median of its timed steps, compile excluded), CPU seconds and
minor page faults per step, its peak resident memory, and the loss after its steps: the float32
settings must agree (the same computation), bfloat16 within its rounding.
"""

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence

import jaxlib
import numpy as np

from benchmarks import common
from lstm_endec_jax.runtime import huge_pages
from lstm_endec_jax.runtime import xla_flags

_PACKAGE_XLA_FLAGS = xla_flags.with_defaults("", xla_flags.defaults_for(jaxlib.__version__))
_SMALL_PAGES = f"{huge_pages.TUNABLE}=0"
_HUGE_PAGES = f"{huge_pages.TUNABLE}=1"
# name -> (XLA_FLAGS, GLIBC_TUNABLES, model dtype)
SETTINGS = {
    "ynnpack": (
        "--xla_cpu_experimental_ynn_fusion_type=+individual_convolution",
        _SMALL_PAGES,
        "float32",
    ),
    "xla_flag": (_PACKAGE_XLA_FLAGS, _SMALL_PAGES, "float32"),
    "package": (_PACKAGE_XLA_FLAGS, _HUGE_PAGES, "float32"),
    "bfloat16": (_PACKAGE_XLA_FLAGS, _HUGE_PAGES, "bfloat16"),
    "memory_scheduler": (
        f"{_PACKAGE_XLA_FLAGS} --xla_cpu_scheduler_type=CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED",
        _HUGE_PAGES,
        "float32",
    ),
}
DEFAULT_SETTINGS = ("xla_flag", "package", "bfloat16")
FULL = {"batch_size": 16, "rounds": 2, "steps": 2}
SMALL = {"batch_size": 2, "rounds": 1, "steps": 1}

CHILD = r"""
import json, resource, sys, time
import jax, numpy as np
from benchmarks import common
from lstm_endec_jax.model import models
from lstm_endec_jax.runtime import parallel
from lstm_endec_jax.training import optimizers, train
config = common.load_config(sys.argv[1])
small, steps = sys.argv[2] == "1", int(sys.argv[3])
if small:
  common.shrink_model(config.model)
config.batch_size = int(sys.argv[4])
config.model.dtype = sys.argv[5]
mesh = parallel.create_mesh(1)
schedule = optimizers.create_learning_rate_schedule(config)
variables = models.initial_variables(config.model, jax.random.key(0), image_size=config.dataset.image_size)
state = train.create_train_state(config, variables, jax.random.key(1), np.array([0.5, 0.5]), schedule)
# Placed as the step's output is (replicated on the mesh): otherwise the second call compiles again.
state = jax.device_put(state, parallel.replicated(mesh))
step = train.make_parallel_train_step(config, mesh, schedule)
batch = parallel.global_batch(common.synthetic_batch(config.batch_size, config.dataset.image_size), mesh)
start = time.perf_counter()
state, metrics = step(state, batch)
jax.block_until_ready(metrics)
compile_seconds = time.perf_counter() - start
wall, cpu, faults = [], [], []
for _ in range(steps):
  start, start_cpu = time.perf_counter(), time.process_time()
  start_faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  state, metrics = step(state, batch)
  jax.block_until_ready(metrics)
  wall.append(time.perf_counter() - start)
  cpu.append(time.process_time() - start_cpu)
  faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start_faults)
peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"wall": wall, "cpu": cpu, "minor_faults": faults, "peak_rss_bytes": peak_rss,
                  "compile_seconds": compile_seconds, "loss": float(metrics["loss"])}))
"""


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  common.add_common_arguments(parser, output=common.RESULTS_DIR / "cpu_settings.json")
  parser.add_argument("--batch_size", type=int, help="batch (default 16)")
  parser.add_argument("--rounds", type=int, help="rounds over the settings (default 2)")
  parser.add_argument("--steps", type=int, help="timed steps per child (default 2)")
  parser.add_argument(
      "--settings",
      default=",".join(DEFAULT_SETTINGS),
      help=f"comma-separated settings to run, of {', '.join(SETTINGS)}; the first is the "
      "baseline of the speed-ups",
  )
  args = parser.parse_args(argv)
  args.settings = args.settings.split(",")
  unknown = sorted(set(args.settings) - set(SETTINGS))
  if unknown or len(set(args.settings)) != len(args.settings):
    parser.error(f"--settings: need distinct names of {', '.join(SETTINGS)}, got {args.settings}")
  common.fill_defaults(args, FULL, SMALL)
  return args


def run_child(name: str, args: argparse.Namespace) -> dict:
  xla_flags_value, tunables, dtype = SETTINGS[name]
  env = {**os.environ, "XLA_FLAGS": xla_flags_value, huge_pages.ENV_VAR: tunables}
  result = subprocess.run(
      [
          sys.executable,
          "-c",
          CHILD,
          args.config,
          "1" if args.small else "0",
          str(args.steps),
          str(args.batch_size),
          dtype,
      ],
      cwd=common.REPO_ROOT,
      env=env,
      capture_output=True,
      text=True,
  )
  if result.returncode:
    raise SystemExit(f"child of setting {name} failed:\n{result.stderr[-3000:]}")
  return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: Sequence[str] | None = None) -> None:
  args = parse_args(sys.argv[1:] if argv is None else argv)
  runs = {name: [] for name in args.settings}
  loads = [os.getloadavg()[0]]
  for _ in range(args.rounds):
    for name in args.settings:
      runs[name].append(run_child(name, args))
      loads.append(os.getloadavg()[0])
  summary = {}
  for name, children in runs.items():
    wall = [t for child in children for t in child["wall"]]
    cpu = [t for child in children for t in child["cpu"]]
    faults = [f for child in children for f in child["minor_faults"]]
    xla_flags_value, tunables, dtype = SETTINGS[name]
    summary[name] = {
        "xla_flags": xla_flags_value,
        "glibc_tunables": tunables,
        "dtype": dtype,
        "seconds_per_step": float(np.median(wall)),
        "seconds_per_step_all": wall,
        "images_per_second": args.batch_size / float(np.median(wall)),
        "cores_busy": float(np.median(cpu) / np.median(wall)),
        "minor_page_faults_per_step": float(np.median(faults)),
        "peak_rss_bytes": float(np.median([child["peak_rss_bytes"] for child in children])),
        "compile_seconds": float(np.median([c["compile_seconds"] for c in children])),
        "loss": children[-1]["loss"],
    }
  baseline = args.settings[0]
  for values in summary.values():
    values["speedup"] = summary[baseline]["seconds_per_step"] / values["seconds_per_step"]
  result = {
      "batch_size": args.batch_size,
      "rounds": args.rounds,
      "steps": args.steps,
      "baseline": baseline,
      "load_1min": loads,
      "settings": summary,
      "environment": common.environment(),
  }
  path = common.write_result(args.output, "cpu_settings", result)
  for name, values in summary.items():
    print(
        f"{name:16s} {values['seconds_per_step']:6.2f} s/step  "
        f"{values['images_per_second']:5.2f} img/s  {values['cores_busy']:.2f} cores  "
        f"{values['minor_page_faults_per_step']:8.0f} faults  "
        f"{values['peak_rss_bytes'] / 2**30:5.2f} GiB  x{values['speedup']:.2f}  "
        f"loss {values['loss']:.6f}"
    )
  print(f"load {min(loads):.1f}-{max(loads):.1f}; {path}")


if __name__ == "__main__":
  main()
