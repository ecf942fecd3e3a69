r"""The train step under XLA CPU settings, each in its own process, interleaved round by round.

  python -m benchmarks.xla_cpu_flags                 # base.py model, batch 16, 2 rounds
  python -m benchmarks.xla_cpu_flags --small         # tiny widths, batch 2, 1 round (a test)
  python -m benchmarks.xla_cpu_flags --settings=package,ynnpack   # only these two

XLA reads XLA_FLAGS once per process, so every setting runs in a child process; the settings take
turns round by round, so that a change in the machine's load hits them alike. Settings:
  package   what `import lstm_endec_jax` sets (lstm_endec_jax/xla_flags.py);
  ynnpack   jaxlib 0.10's default: every convolution in a YNNPACK fusion (the package's flag
            undone by adding the fusion type back);
  no_ynn    nothing in YNNPACK fusions.
Each child reports seconds per step (median of its timed steps, compile excluded), CPU seconds per
step, and the loss after its steps, which must agree across settings (the same computation).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence

import numpy as np

from benchmarks import common

SETTINGS = {
    "package": None,  # the package's own default
    "ynnpack": "--xla_cpu_experimental_ynn_fusion_type=+individual_convolution",
    "no_ynn": "--xla_cpu_experimental_ynn_fusion_type=",
}
FULL = {"batch_size": 16, "rounds": 2, "steps": 2}
SMALL = {"batch_size": 2, "rounds": 1, "steps": 1}

CHILD = r"""
import json, sys, time
import jax, numpy as np
from benchmarks import common
from lstm_endec_jax import models
from lstm_endec_jax import optimizers, parallel, train
config = common.load_config(sys.argv[1])
small, steps = sys.argv[2] == "1", int(sys.argv[3])
if small:
  common.shrink_model(config.model)
config.batch_size = int(sys.argv[4])
mesh = parallel.create_mesh(1)
schedule = optimizers.create_learning_rate_schedule(config)
state = train.create_train_state(config, models.initial_variables(config.model, jax.random.key(0), image_size=config.dataset.image_size),
                                 jax.random.key(1), np.array([0.5, 0.5]), schedule)
# Placed as the step's output is (replicated on the mesh): otherwise the second call compiles again.
state = jax.device_put(state, parallel.replicated(mesh))
step = train.make_parallel_train_step(config, mesh, schedule)
rng = np.random.default_rng(0)
size = config.dataset.image_size
batch = parallel.global_batch({
    "image": rng.integers(0, 256, (config.batch_size, size, size, 3), dtype=np.uint8),
    "mask": (rng.random((config.batch_size, size, size)) < 0.1).astype(np.int32),
    "label": np.ones(config.batch_size, np.int32)}, mesh)
start = time.perf_counter()
state, metrics = step(state, batch)
jax.block_until_ready(metrics)
compile_seconds = time.perf_counter() - start
wall, cpu = [], []
for _ in range(steps):
  start, start_cpu = time.perf_counter(), time.process_time()
  state, metrics = step(state, batch)
  jax.block_until_ready(metrics)
  wall.append(time.perf_counter() - start)
  cpu.append(time.process_time() - start_cpu)
print(json.dumps({"wall": wall, "cpu": cpu, "compile_seconds": compile_seconds,
                  "loss": float(metrics["loss"])}))
"""


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  common.add_common_arguments(parser, output=common.RESULTS_DIR / "xla_cpu_flags.json")
  parser.add_argument("--batch_size", type=int, help="batch (default 16)")
  parser.add_argument("--rounds", type=int, help="rounds over the settings (default 2)")
  parser.add_argument("--steps", type=int, help="timed steps per child (default 2)")
  parser.add_argument(
      "--settings",
      default=",".join(SETTINGS),
      help=f"comma-separated settings to run, of {', '.join(SETTINGS)} (ynnpack is the baseline)",
  )
  args = parser.parse_args(argv)
  args.settings = args.settings.split(",")
  unknown = sorted(set(args.settings) - set(SETTINGS))
  if unknown or "ynnpack" not in args.settings:
    parser.error(f"--settings: need ynnpack and known names only, got {args.settings}")
  common.fill_defaults(args, FULL, SMALL)
  return args


def run_child(flags: str | None, args: argparse.Namespace) -> dict:
  env = dict(os.environ)
  env.pop("XLA_FLAGS", None)
  if flags is not None:
    env["XLA_FLAGS"] = flags
  result = subprocess.run(
      [
          sys.executable,
          "-c",
          CHILD,
          args.config,
          "1" if args.small else "0",
          str(args.steps),
          str(args.batch_size),
      ],
      cwd=common.REPO_ROOT,
      env=env,
      capture_output=True,
      text=True,
  )
  if result.returncode:
    raise SystemExit(f"child with XLA_FLAGS={flags!r} failed:\n{result.stderr[-3000:]}")
  return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: Sequence[str] | None = None) -> None:
  args = parse_args(sys.argv[1:] if argv is None else argv)
  runs = {name: [] for name in args.settings}
  loads = [os.getloadavg()[0]]
  for _ in range(args.rounds):
    for name in args.settings:
      runs[name].append(run_child(SETTINGS[name], args))
      loads.append(os.getloadavg()[0])
  summary = {}
  for name, children in runs.items():
    wall = [t for child in children for t in child["wall"]]
    cpu = [t for child in children for t in child["cpu"]]
    summary[name] = {
        "xla_flags": SETTINGS[name] or "(package default)",
        "seconds_per_step": float(np.median(wall)),
        "images_per_second": args.batch_size / float(np.median(wall)),
        "cores_busy": float(np.median(cpu) / np.median(wall)),
        "compile_seconds": float(np.median([c["compile_seconds"] for c in children])),
        "loss": children[-1]["loss"],
    }
  base = summary["ynnpack"]["seconds_per_step"]
  for values in summary.values():
    values["speedup_over_jaxlib_default"] = base / values["seconds_per_step"]
  result = {
      "batch_size": args.batch_size,
      "rounds": args.rounds,
      "steps": args.steps,
      "load_1min": loads,
      "settings": summary,
      "environment": common.environment(),
  }
  path = common.write_result(args.output, "xla_cpu_flags", result)
  for name, values in summary.items():
    print(
        f"{name:8s} {values['seconds_per_step']:6.2f} s/step  "
        f"{values['images_per_second']:5.2f} img/s  {values['cores_busy']:.2f} cores  "
        f"x{values['speedup_over_jaxlib_default']:.2f}  loss {values['loss']:.6f}"
    )
  print(f"load {min(loads):.1f}-{max(loads):.1f}; {path}")


if __name__ == "__main__":
  main()
