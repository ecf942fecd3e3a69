r"""Images/s, memory, FLOP/s and time profile of the complete train step; data-parallel scaling.

  python -m benchmarks.train_step                   # base.py model, batch 16, 1 / 2 / 4 devices
  python -m benchmarks.train_step --small           # tiny widths, batch 4, 1 / 2 devices (a test)

The step measured is `train.make_parallel_train_step` itself: resampling features, model, loss,
backward, gradient all-reduce and the Adam update, jitted and shard_map-ped over a data mesh, on a
batch already on the devices. Each device count runs in its own process, because simulated CPU
devices are fixed when XLA starts (`--xla_force_host_platform_device_count`); on GPUs the first N
local devices are used. The global batch stays the same for every device count, so scaling is
strong scaling. Simulated CPU devices share the same cores, so there the ideal is constant images/s
(speed-up 1, efficiency 1/N) and the numbers show the cost of the data-parallel code path; on real
devices the ideal is speed-up N.

The process on the local devices (1 CPU device, or every GPU) also reports:
* FLOPs per step from XLA's cost analysis of the compiled step, cross-checked against a count of the
  convolution, dense and LSTM multiply-adds from the model's shapes (forward, and two more for the
  backward: gradients of inputs and of weights), and the achieved FLOP/s against a large float32
  matmul measured in the same process;
* memory: XLA's buffer assignment of the step, the device's peak where the backend tracks it, and
  the process's peak resident memory;
* where the time goes: the encoder and the decoder each timed alone at the step's shapes, forward
  and forward with the backward (`part_seconds`), and a `jax.profiler` trace of a few steps, each
  executed XLA operation attributed to features / LSTM / encoder / decoder / loss / optimizer,
  forward or backward, by the Flax module path in its HLO metadata (on the CPU the trace misses
  most of the convolutions' time: see `part_seconds`).
"""

import argparse
import collections
import gzip
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common
from benchmarks import flop_count
from lstm_endec_jax.model import models
from lstm_endec_jax.runtime import huge_pages
from lstm_endec_jax.runtime import parallel
from lstm_endec_jax.training import optimizers
from lstm_endec_jax.training import train

# A base.py step takes seconds to tens of seconds on a 2-core CPU: few repeats by default.
FULL = {
    "device_counts": "1,2,4",
    "warmup": 1,
    "repeats": 3,
    "profile_steps": 1,
    "matmul_size": 4096,
}
SMALL = {
    "device_counts": "1,2",
    "warmup": 1,
    "repeats": 2,
    "profile_steps": 1,
    "matmul_size": 512,
    "batch_size": 4,
}


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  common.add_common_arguments(parser, output=common.RESULTS_DIR / "train_step.json")
  parser.add_argument("--batch_size", type=int, help="global batch (default: the config's, 16)")
  parser.add_argument("--device_counts", help="device counts, one process each (default 1,2,4)")
  parser.add_argument("--profile_steps", type=int, help="steps traced with jax.profiler")
  parser.add_argument("--matmul_size", type=int, help="side of the reference f32 matmul")
  parser.add_argument(
      "--num_devices",
      type=int,
      default=0,
      help="measure in this process on this many devices and write --output "
      "(the suite runs one such process per device count)",
  )
  parser.add_argument(
      "--detail",
      action="store_true",
      help="with --num_devices: also FLOPs, the matmul and the profile",
  )
  args = parser.parse_args(argv)
  common.fill_defaults(args, FULL, SMALL)
  return args


def benchmark_config(args: argparse.Namespace):
  config = common.config_of(args)
  if args.batch_size:
    config.batch_size = args.batch_size
  return config


# --- Where the time goes: profile events attributed by HLO metadata ----------------------------

_COMPUTATION = re.compile(r"^(ENTRY )?%?([\w.\-]+) .*\{\s*$")
_INSTRUCTION = re.compile(r"^\s+(?:ROOT )?%?([\w.\-]+) = (.*)$")
_CALLEES = re.compile(r"(?:calls|to_apply|body|condition|branch_computations)=\{?([%\w.\-, ]+)\}?")
_OP_NAME = re.compile(r'op_name="([^"]*)"')
_COLLECTIVES = ("all-reduce", "all-gather", "reduce-scatter", "collective-permute", "all-to-all")


def _opcode(definition: str) -> str:
  """The opcode of an HLO instruction's right-hand side: `f32[2]{0} add(...)` -> add."""
  if definition.startswith("("):  # Tuple shape: skip to its closing parenthesis.
    depth = 0
    for index, char in enumerate(definition):
      depth += {"(": 1, ")": -1}.get(char, 0)
      if depth == 0:
        definition = definition[index + 1 :]
        break
  match = re.match(r"\s*\S*\s+([\w\-]+)\(", " " + definition.lstrip())
  return match.group(1) if match else ""


def part_of(op_name: str, *, by_module: bool = False) -> str:
  """The model part an operation belongs to, from its JAX name stack (Flax module paths).

  `by_module`: name encoder, decoder and LSTM operations by their module two levels down (e.g.
  "encoder/ResidualUnit_0 backward"; "encoder/own ops" are the ReLUs and poolings the encoder
  applies itself), to see which stage of a part takes the time.
  """
  direction = "backward" if "transpose(" in op_name else "forward"
  if "_resampling_features" in op_name:
    return "features"
  for module, part in (
      ("/lstm_branch/", "LSTM"),
      ("/encoder/", "encoder"),
      ("/decoder/", "decoder"),
  ):
    if module in op_name:
      if by_module:  # A submodule is followed by more of the path; ops outside any: "/own ops".
        path = re.search(r"LSTMEnDec\)+/(\w+/\w+)/", op_name)
        part = path.group(1) if path else module.strip("/") + "/own ops"
      return f"{part} {direction}"
  if "LSTMEnDec" in op_name:  # Input scaling, LSTM-map upsampling, concatenation.
    return f"fusion {direction}"
  if "jvp()" in op_name or "transpose(jvp())" in op_name:
    return f"loss {direction}"
  return "optimizer and metrics"


def _parse_computations(hlo_text: str) -> tuple[str, dict[str, list[tuple[str, str]]]]:
  """(entry name, computation name -> [(instruction name, right-hand side)]) of an HLO module."""
  computations: dict[str, list[tuple[str, str]]] = {}
  entry, current = "", None
  for line in hlo_text.splitlines():
    header = _COMPUTATION.match(line)
    if header:
      current = header.group(2)
      computations[current] = []
      if header.group(1):
        entry = current
      continue
    instruction = _INSTRUCTION.match(line)
    if instruction and current is not None:
      computations[current].append(instruction.groups())
  return entry, computations


def hlo_parts(hlo_text: str, *, by_module: bool = False) -> dict[str, str]:
  """Entry-computation instruction name -> model part.

  An instruction takes the most common part of the JAX names in its own metadata and in the
  computations it calls (fusions often carry none themselves). One with no name at all (e.g. the
  weight-gradient convolutions XLA creates) takes its operands' part, backward if any operand is
  in the backward pass; one with no named operand either, its users' part.
  """
  entry, computations = _parse_computations(hlo_text)

  def names_below(definition: str, seen: set[str]) -> list[str]:
    found = _OP_NAME.findall(definition)
    for group in _CALLEES.findall(definition):
      for callee in (name.strip().lstrip("%") for name in group.split(",")):
        if callee in computations and callee not in seen:
          seen.add(callee)
          for _, inner in computations[callee]:
            found += names_below(inner, seen)
    return found

  instructions = computations.get(entry, [])
  names = {name for name, _ in instructions}
  operands = {
      name: [
          operand
          for operand in re.findall(r"%([\w.\-]+)", definition)
          if operand in names and operand != name
      ]
      for name, definition in instructions
  }
  parts = {}
  for name, definition in instructions:
    if _opcode(definition) in _COLLECTIVES:
      parts[name] = "gradient all-reduce"
      continue
    votes = collections.Counter(
        part_of(op, by_module=by_module) for op in names_below(definition, set())
    )
    if not votes:
      inherited = [parts[operand] for operand in operands[name] if operand in parts]
      votes = collections.Counter(
          part for part in inherited if "backward" in part
      ) or collections.Counter(inherited)
    if votes:
      parts[name] = votes.most_common(1)[0][0]
  for name, _ in reversed(instructions):
    if name not in parts:
      users = collections.Counter(
          parts[user] for user, used in operands.items() if name in used and user in parts
      )
      parts[name] = users.most_common(1)[0][0] if users else "other"
  return parts


_FUSION_KINDS = {
    "kLoop": "elementwise fusion",
    "kInput": "reduction fusion",
    "kOutput": "fusion into a matmul/convolution",
    "kCustom": "library matmul/convolution fusion",
}  # YNNPACK on CPU


def hlo_op_kinds(hlo_text: str) -> dict[str, str]:
  """Entry-computation instruction name -> what kind of work it is: its opcode (convolution, dot,
  while, ...) or, for fusions, elementwise / reduction / library matmul: whether the time goes to
  arithmetic or to memory-bound passes."""
  entry, computations = _parse_computations(hlo_text)
  kinds = {}
  for name, definition in computations.get(entry, []):
    kind = re.search(r"kind=(k\w+)", definition)
    opcode = _opcode(definition)
    is_fusion = opcode == "fusion" and kind
    kinds[name] = _FUSION_KINDS.get(kind.group(1), opcode) if is_fusion else opcode
  return kinds


def trace_events(trace_dir: pathlib.Path) -> list[dict[str, Any]]:
  """Complete ('X') events of the Perfetto trace jax.profiler wrote under `trace_dir`."""
  paths = sorted(trace_dir.glob("**/perfetto_trace.json.gz"))
  if not paths:
    raise FileNotFoundError(f"jax.profiler wrote no perfetto_trace.json.gz under {trace_dir}")
  with gzip.open(paths[-1]) as file:
    trace = json.load(file)
  events = trace["traceEvents"] if isinstance(trace, dict) else trace
  return [event for event in events if event.get("ph") == "X"]


def profile_parts(run_steps, compiled, steps: int) -> dict[str, Any]:
  """Traces `steps` steps and sums the time of each part's top-level XLA operations.

  Shares are of the summed operation time; `wall_seconds_per_step` - `op_seconds_per_step` is time
  with no operation of the step running (dispatch, waits, the machine's other load).
  """
  hlo_text = compiled.as_text()
  parts, modules = hlo_parts(hlo_text), hlo_parts(hlo_text, by_module=True)
  kinds = hlo_op_kinds(hlo_text)
  module = hlo_text.split(None, 2)[1].rstrip(",")
  with tempfile.TemporaryDirectory() as trace_dir:
    jax.profiler.start_trace(trace_dir, create_perfetto_trace=True)
    start = time.perf_counter()
    run_steps(steps)
    wall = (time.perf_counter() - start) / steps
    jax.profiler.stop_trace()
    events = trace_events(pathlib.Path(trace_dir))
  seconds, by_module, by_kind = collections.Counter(), collections.Counter(), collections.Counter()
  for event in events:
    args = event.get("args") or {}
    if args.get("hlo_module") == module and args.get("hlo_op") in parts:
      seconds[parts[args["hlo_op"]]] += event["dur"] * 1e-6 / steps
      by_module[modules[args["hlo_op"]]] += event["dur"] * 1e-6 / steps
      by_kind[kinds.get(args["hlo_op"], "other")] += event["dur"] * 1e-6 / steps
  total = sum(seconds.values())
  if not total:
    raise RuntimeError(f"The trace holds no operation of {module}; cannot attribute step time.")
  return {
      "seconds_per_step": dict(seconds.most_common()),
      "op_seconds_per_step": total,
      "wall_seconds_per_step": wall,
      "steps": steps,
      "share": {part: value / total for part, value in seconds.most_common()},
      "seconds_per_step_by_module": dict(by_module.most_common()),
      "seconds_per_step_by_op_kind": dict(by_kind.most_common()),
  }


# The parts `part_seconds` times alone, and how the model builds each.
_PART_BUILDERS = {"encoder": models.encoder_of, "decoder": models.decoder_of}


def _part_inputs(model, batch: int, size: int) -> dict[str, jax.ShapeDtypeStruct]:
  """The input the model gives each of its parts in `_PART_BUILDERS` (the fcn variant has no
  `decoder`), read from the model itself by a Flax method interceptor under `jax.eval_shape`."""
  inputs = {}

  def record(next_fun, args, kwargs, context):
    if context.method_name == "__call__" and context.module.path in {(n,) for n in _PART_BUILDERS}:
      inputs[context.module.name] = jax.ShapeDtypeStruct(args[0].shape, args[0].dtype)
    return next_fun(*args, **kwargs)

  images = jax.ShapeDtypeStruct((batch, size, size, 3), jnp.uint8)
  with nn.intercept_methods(record):
    jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=True), images)
  return inputs


def part_seconds(config, args: argparse.Namespace) -> dict[str, Any]:
  """Seconds per step of the encoder and of the decoder, each built as the model builds it and
  jitted alone on inputs of the shapes the step gives it: forward, and forward with both
  gradients. In the whole step XLA runs independent operations side by side, so the parts alone
  need not add up to it.

  On the CPU a trace cannot give this: XLA runs the convolutions on its thread pool after their
  operation has returned, so the trace's operation times hold a small part of their time
  (2026-12-06, AMD EPYC: 0.45 s of the ~3.5 s the convolutions take) and charge the rest to
  whatever ran beside them.
  """
  model = models.create_model(config.model)
  conv, norm = models.layer_constructors(model, train=True)
  key_inputs, key_init = jax.random.split(jax.random.key(0))
  result = {}
  for name, shape in _part_inputs(model, config.batch_size, config.dataset.image_size).items():
    module = _PART_BUILDERS[name](model, conv, norm)
    inputs = jax.random.uniform(key_inputs, shape.shape, shape.dtype)  # scaled pixels, maps
    variables = module.init(key_init, inputs)

    def loss(params, inputs, module=module, variables=variables):
      outputs, _ = module.apply({**variables, "params": params}, inputs, mutable=["batch_stats"])
      return sum(jnp.mean(jnp.square(out.astype(jnp.float32))) for out in jax.tree.leaves(outputs))

    result[name] = {}
    for direction, function in (
        ("forward", loss),
        ("forward_and_backward", jax.grad(loss, argnums=(0, 1))),
    ):
      compiled = jax.jit(function).lower(variables["params"], inputs).compile()
      timing = common.time_calls(
          lambda compiled=compiled: compiled(variables["params"], inputs),
          warmup=args.warmup,
          repeats=args.repeats,
      )
      result[name][direction] = timing.median
  return result


def conv_directions(
    batch_size: int, image_size: int, channels: int, *, repeats: int
) -> dict[str, Any]:
  """FLOP/s of the encoder's full-resolution 3x3 convolution (`channels` in and out, stride 1,
  SAME) forward and of its two backward convolutions, the input and the weight gradient, each
  jitted alone at the step's shapes: the three do the same FLOPs, so their rates show which
  direction XLA runs on a slow path."""
  key_x, key_w, key_dy = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(key_x, (batch_size, image_size, image_size, channels))
  w = jax.random.normal(key_w, (3, 3, channels, channels))
  dy = jax.random.normal(key_dy, x.shape)

  def conv(x, w):
    return jax.lax.conv_general_dilated(
        x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )

  directions = {
      "forward": (conv, (x, w)),
      "input gradient": (lambda x, w, dy: jax.vjp(lambda x: conv(x, w), x)[1](dy)[0], (x, w, dy)),
      "weight gradient": (lambda x, w, dy: jax.vjp(lambda w: conv(x, w), w)[1](dy)[0], (x, w, dy)),
  }
  flops = 2.0 * batch_size * image_size**2 * 9 * channels**2
  result = {"shape": [batch_size, image_size, image_size, channels], "flops": flops}
  for name, (function, arguments) in directions.items():
    compiled = jax.jit(function).lower(*arguments).compile()
    timing = common.time_calls(lambda: compiled(*arguments), warmup=1, repeats=repeats)
    result[name] = {"timing": timing.to_json(), "flops_per_second": timing.rate(flops)}
  return result


# --- One device count, in this process --------------------------------------------------------


def measure(config, args: argparse.Namespace) -> dict[str, Any]:
  """Compiles and times the real parallel train step on `args.num_devices` devices."""
  mesh = parallel.create_mesh(args.num_devices)
  parallel.check_batch_size(config.batch_size, mesh, "batch size")
  learning_rate_fn = optimizers.create_learning_rate_schedule(config)
  init_rng, dropout_rng = jax.random.split(jax.random.key(config.seed))
  variables = models.initial_variables(config.model, init_rng, image_size=config.dataset.image_size)
  state = train.create_train_state(
      config, variables, dropout_rng, np.full(2, 0.5, np.float32), learning_rate_fn
  )
  state = jax.device_put(state, parallel.replicated(mesh))
  batch = parallel.global_batch(
      common.synthetic_batch(config.batch_size, config.dataset.image_size), mesh
  )
  compiled, compile_s = common.compile_seconds(
      train.make_parallel_train_step(config, mesh, learning_rate_fn), state, batch
  )
  holder = {"state": state}

  def step():
    holder["state"], holder["metrics"] = compiled(holder["state"], batch)
    return holder["state"], holder["metrics"]

  timing = common.time_calls(step, warmup=args.warmup, repeats=args.repeats)
  result = {
      "num_devices": args.num_devices,
      "batch_size": config.batch_size,
      "compile_seconds": compile_s,
      "xla_flops": common.flops_of(compiled),
      "step_timing": timing.to_json(),
      "images_per_second": timing.rate(config.batch_size),
      "memory_bytes": {
          "xla_buffers": common.compiled_memory_bytes(compiled),
          "device_peak": common.device_peak_bytes(),
          "process_peak_rss": common.peak_rss_bytes(),
      },
      "finite_loss": bool(np.isfinite(float(holder["metrics"]["loss"]))),
  }
  if args.detail:
    result.update(flop_report(config, variables, compiled, timing, args.matmul_size))
    result["profile"] = profile_parts(
        lambda steps: [jax.block_until_ready(step()) for _ in range(steps)],
        compiled,
        args.profile_steps,
    )
    result["part_seconds"] = part_seconds(config, args)
    result["conv_directions"] = conv_directions(
        config.batch_size,
        config.dataset.image_size,
        config.model.encoder_features[0],
        repeats=args.repeats,
    )
  return result


def flop_report(
    config, variables, compiled, timing: common.Timing, matmul_size: int
) -> dict[str, Any]:
  xla_flops = common.flops_of(compiled)
  size = config.dataset.image_size
  images = jax.ShapeDtypeStruct((config.batch_size, size, size, 3), jnp.uint8)
  forward = flop_count.forward_flops_by_part(models.create_model(config.model), variables, images)
  estimate = flop_count.train_step_flops_estimate(forward)
  matmul = common.matmul_flops_per_second(matmul_size)
  achieved = timing.rate(xla_flops or estimate)
  return {
      "flops_per_step": {
          "xla_cost_analysis": xla_flops,
          "matmul_count": estimate,
          "matmul_count_forward_by_part": forward,
          "xla_over_count": xla_flops / estimate if xla_flops else None,
      },
      "achieved_flops_per_second": achieved,
      "matmul_reference": matmul,
      "fraction_of_matmul_peak": achieved["median"] / matmul["flops_per_second"]["median"],
  }


# --- The suite: one process per device count ---------------------------------------------------


def child_xla_flags(xla_flags: str, count: int, *, small: bool) -> str:
  """XLA_FLAGS with `count` simulated CPU devices; a --small run (a smoke test, not numbers) also
  turns XLA's backend optimisations off, which cuts its compile time by about a third."""
  kept = [
      flag
      for flag in xla_flags.split()
      if not flag.startswith("--xla_force_host_platform_device_count")
  ]
  kept.append(f"--xla_force_host_platform_device_count={count}")
  return " ".join(kept + (["--xla_backend_optimization_level=0"] if small else []))


def run_process(
    args: argparse.Namespace, num_devices: int, detail: bool, output: pathlib.Path
) -> dict[str, Any]:
  """Runs this script with `--num_devices` in a fresh process and reads its JSON."""
  env = dict(os.environ)
  if jax.default_backend() == "cpu":
    env["XLA_FLAGS"] = child_xla_flags(env.get("XLA_FLAGS", ""), num_devices, small=args.small)
  command = [
      sys.executable,
      "-m",
      "benchmarks.train_step",
      f"--config={args.config}",
      f"--batch_size={args.batch_size}",
      f"--warmup={args.warmup}",
      f"--repeats={args.repeats}",
      f"--profile_steps={args.profile_steps}",
      f"--matmul_size={args.matmul_size}",
      f"--num_devices={num_devices}",
      f"--output={output}",
      *(["--small"] if args.small else []),
      *(["--detail"] if detail else []),
  ]
  subprocess.run(command, check=True, cwd=common.REPO_ROOT, env=env)
  return json.loads(output.read_text())


def local_device_count() -> int:
  """Devices the headline number runs on: all local accelerators, or the one CPU device."""
  return 1 if jax.default_backend() == "cpu" else jax.local_device_count()


def scaling_table(runs: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
  base = runs[min(runs)]["images_per_second"]["median"]
  return [
      {
          "num_devices": count,
          "images_per_second": run["images_per_second"],
          "speedup": run["images_per_second"]["median"] / base,
          "efficiency": run["images_per_second"]["median"] / base / count,
          "compile_seconds": run["compile_seconds"],
          "memory_bytes": run["memory_bytes"],
      }
      for count, run in sorted(runs.items())
  ]


def grouped_shares(share: dict[str, float]) -> dict[str, float]:
  """The profile as features / LSTM / encoder / decoder forward, the whole backward pass, and the
  rest (loss, optimizer, all-reduce, fusion of the two branches)."""
  groups = collections.Counter()
  for part, value in share.items():
    if part.endswith("backward"):
      groups["backward"] += value
    elif part in ("features", "LSTM forward", "encoder forward", "decoder forward"):
      groups[part] += value
    else:
      groups["other (loss, optimizer, all-reduce)"] += value
  return dict(groups.most_common())


def _percentages(shares: dict[str, float]) -> str:
  """'name 41%, ...' (one decimal below 1%, so that small parts still show)."""
  return ", ".join(
      f"{name} {100 * value:.{1 if value < 0.01 else 0}f}%"
      for name, value in shares.items()
      if value >= 0.0005
  )


def profile_rows(profile: dict[str, Any]) -> list[list[str]]:
  """(part, forward s, backward s, total s, share) per model part, for SUMMARY.md. The features
  have no backward pass; the update, metrics and all-reduce are neither direction ("-")."""
  seconds = profile["seconds_per_step"]
  rows = []
  for part in (
      "features",
      "LSTM",
      "encoder",
      "decoder",
      "fusion",
      "loss",
      "optimizer and metrics",
      "gradient all-reduce",
  ):
    forward, backward = seconds.get(f"{part} forward"), seconds.get(f"{part} backward")
    total = seconds.get(part, 0.0) + (forward or 0.0) + (backward or 0.0)
    if part == "features":
      forward = total
    rows.append(
        [
            part,
            "-" if forward is None else f"{forward:.3f}",
            "-" if backward is None else f"{backward:.3f}",
            f"{total:.3f}",
            f"{100 * total / profile['op_seconds_per_step']:.1f}%",
        ]
    )
  return rows


def summary_rows(headline: dict[str, Any], scaling: list[dict[str, Any]]) -> list[list[str]]:
  """Rows (measure, value, spread or note) for SUMMARY.md."""
  rate = headline["images_per_second"]
  memory = headline["memory_bytes"]
  peak = memory["device_peak"] or memory["xla_buffers"]["peak"]
  flops = headline["flops_per_step"]
  profile = headline["profile"]
  share = profile["share"]
  backward = {
      part.replace(" backward", ""): value
      for part, value in share.items()
      if part.endswith("backward")
  }
  matmul = headline["matmul_reference"]
  parts, step = headline["part_seconds"], headline["step_timing"]["median_s"]
  trace_caveat = (
      "; on the CPU the trace holds little of the convolutions' time (`part_seconds`)"
      if headline["environment"]["backend"] == "cpu"
      else ""
  )
  rows = [
      [
          f"train step, batch {headline['batch_size']}, {headline['num_devices']} device",
          f"{rate['median']:.2f} images/s",
          f"min {rate['min']:.2f}, max {rate['max']:.2f}; "
          f"compile {headline['compile_seconds']:.0f} s",
      ],
      [
          "train step peak memory",
          f"{peak / 2**30:.2f} GiB",
          "device peak"
          if memory["device_peak"]
          else f"XLA buffer assignment; process peak RSS {memory['process_peak_rss'] / 2**30:.2f} GiB",
      ],
      [
          "train step FLOPs",
          f"{flops['xla_cost_analysis'] / 1e9:.1f} GFLOP/step",
          f"XLA cost analysis; conv/dense/LSTM count {flops['matmul_count'] / 1e9:.1f} GFLOP",
      ],
      [
          "train step FLOP/s",
          f"{headline['achieved_flops_per_second']['median'] / 1e9:.1f} GFLOP/s",
          f"{100 * headline['fraction_of_matmul_peak']:.0f}% of a {matmul['size']}^2 f32 matmul "
          f"({matmul['flops_per_second']['median'] / 1e9:.0f} GFLOP/s, same run)",
      ],
      [
          "train step time by part, each part alone",
          ", ".join(
              f"{name} {seconds['forward_and_backward']:.2f} s (forward {seconds['forward']:.2f})"
              for name, seconds in parts.items()
          ),
          "forward and backward, each part jitted alone at the step's shapes; the whole step "
          f"{step:.2f} s (in it XLA runs parts side by side, so they need not add up)",
      ],
      [
          "train step time by part, traced",
          _percentages(grouped_shares(share)),
          f"backward: {_percentages(backward)}{trace_caveat}",
      ],
      [
          "train step slowest modules, traced",
          ", ".join(
              f"{name} {100 * value / profile['op_seconds_per_step']:.0f}%"
              for name, value in list(profile["seconds_per_step_by_module"].items())[:4]
          ),
          f"share of the summed operation time{trace_caveat}",
      ],
      [
          "3x3 convolution forward / input gradient / weight gradient",
          " / ".join(
              f"{headline['conv_directions'][name]['flops_per_second']['median'] / 1e9:.0f}"
              for name in ("forward", "input gradient", "weight gradient")
          )
          + " GFLOP/s",
          "the encoder's full-resolution convolution "
          f"{'x'.join(map(str, headline['conv_directions']['shape']))}, each direction jitted alone",
      ],
      [
          "train step time by operation kind, traced",
          ", ".join(
              f"{name} {100 * value / profile['op_seconds_per_step']:.0f}%"
              for name, value in list(profile["seconds_per_step_by_op_kind"].items())[:4]
          ),
          f"share of the summed operation time{trace_caveat}",
      ],
  ]
  for entry in scaling:
    rows.append(
        [
            f"data parallel, {entry['num_devices']} device(s), global batch "
            f"{headline['batch_size']}",
            f"{entry['images_per_second']['median']:.2f} images/s",
            f"speed-up {entry['speedup']:.2f}, efficiency {entry['efficiency']:.2f}",
        ]
    )
  return rows


def main(argv: Sequence[str] | None = None) -> None:
  args = parse_args(sys.argv[1:] if argv is None else argv)
  config = benchmark_config(args)
  args.batch_size = config.batch_size
  if args.num_devices:
    common.write_result(args.output, "train_step_process", measure(config, args))
    return
  headline_count = local_device_count()
  requested = [int(count) for count in args.device_counts.split(",")]
  if jax.default_backend() != "cpu":  # Real devices cannot be simulated: skip counts beyond them.
    requested = [count for count in requested if count <= jax.local_device_count()]
  runs = {}
  with tempfile.TemporaryDirectory() as scratch:
    for count in sorted(set(requested) | {headline_count}):
      runs[count] = run_process(
          args, count, count == headline_count, pathlib.Path(scratch) / f"{count}.json"
      )
      print(
          f"{count} device(s): {common.format_rate(runs[count]['images_per_second'], 2)} "
          "images/s",
          flush=True,
      )
  headline = runs[headline_count]
  scaling = scaling_table(runs)
  result = {
      "model": config.model.variant,
      "model_config": config.model.to_dict(),
      "batch_size": config.batch_size,
      "image_size": config.dataset.image_size,
      "small": args.small,
      "images_per_second": headline["images_per_second"]["median"],
      "headline": headline,
      "scaling": scaling,
      "scaling_note": (
          "simulated CPU devices share the same cores: ideal speed-up is 1, efficiency 1/N"
          if jax.default_backend() == "cpu"
          else "ideal speed-up is N"
      ),
      "profile_groups": grouped_shares(headline["profile"]["share"]),
      "summary": summary_rows(headline, scaling),
      "profile_table": profile_rows(headline["profile"]),
  }
  path = common.write_result(args.output, "train_step", result)
  print(common.markdown_table(["measure", "value", "spread / note"], result["summary"]))
  print(f"wrote {path}")


if __name__ == "__main__":
  huge_pages.relaunch_with_huge_pages()  # as the commands run
  main()
