r"""Our train step and forward pass against the same network in PyTorch, timed side by side.

  pip install torch                                   # the benchmark's own dependency
  python -m benchmarks.pytorch_comparison             # base.py model, batch 16, 256x256, fp32

Each contender lives in its own long-lived worker process: `jax` (the package's data-parallel
train step and forward pass, as `main` runs them) and PyTorch in eager mode and under
`torch.compile`, both in `channels_last` memory format, the faster layout for CPU convolutions
(`--contenders` adds `nchw` ones). The workers hold their compiled programs, and the coordinator
asks them in turn for one timed call at a time, round after round, rotating who goes first, so
that every contender sees the same load of this shared machine; ratios of medians are reported
with their spread, the 1-minute load of every round and the cores each side kept busy (CPU time
over wall time of its calls).

Before timing, every worker loads the same weights (the shipped `base` weights, copied into the
PyTorch model layer by layer) and computes the probabilities of one batch in evaluation mode and
the loss of one training step; the run stops unless they agree within `--tolerance`, so both
sides compute the same function. FLOPs per step are counted on both sides (XLA's cost analysis;
PyTorch's FlopCounterMode) and compared with a 4096^2 float32 matmul measured in each framework.
Ours are fewer: the decoder convolves at the low resolution (`layers.upsampled_conv`), which the
PyTorch version, like other implementations, does not.
"""

import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from absl import app
from absl import flags
import numpy as np

from benchmarks import common

CONTENDERS = (
    "jax",
    "torch_eager_channels_last",
    "torch_compile_channels_last",
    "torch_eager_nchw",
    "torch_compile_nchw",
)
OPERATIONS = ("train", "forward")


def define_flags() -> None:
  """The command's flags; defined only when this module is the program (benchmarks/gpu/run.py
  imports it)."""
  flags.DEFINE_string(
      "config",
      str(common.REPO_ROOT / "configs" / "base.py"),
      "configuration whose model, batch size and optimizer are timed",
  )
  flags.DEFINE_list(
      "contenders", list(CONTENDERS[:3]), f"which implementations to time, of {CONTENDERS}"
  )
  flags.DEFINE_integer("batch_size", 0, "batch (0: the config's)")
  flags.DEFINE_integer("rounds", 5, "timed calls per contender and operation")
  flags.DEFINE_integer("warmup", 2, "untimed calls per operation after compiling")
  flags.DEFINE_integer("threads", 0, "PyTorch intra-op threads (0: every core)")
  flags.DEFINE_integer("matmul_size", 4096, "side of the reference f32 matmul")
  flags.DEFINE_float(
      "tolerance",
      1e-3,
      "largest difference of probabilities and relative difference of the "
      "loss between the implementations before anything is timed",
  )
  flags.DEFINE_string(
      "output", str(common.RESULTS_DIR / "pytorch_comparison.json"), "JSON result path"
  )


def make_runner(contender: str, settings: dict[str, Any]):
  if contender == "jax":
    return JaxRunner(settings)
  _, mode, layout = contender.split("_", 2)
  return TorchRunner(settings, compiled=mode == "compile", channels_last=layout == "channels_last")


def worker(connection, contender: str, settings: dict[str, Any]) -> None:
  """Builds and warms up one contender, reports its outputs, then times one call per request
  until None. Workers start one after another, so no warm-up overlaps another's work."""
  try:
    runner = make_runner(contender, settings)
    for _ in range(settings["warmup"]):
      for call in runner.calls.values():
        _wait(call())
    connection.send(("ready", runner.info))
  except Exception as error:  # pylint: disable=broad-except
    connection.send(("failed", f"{type(error).__name__}: {error}"))
    return
  while (operation := connection.recv()) is not None:
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    _wait(runner.calls[operation]())
    connection.send((time.perf_counter() - start_wall, time.process_time() - start_cpu))


def _wait(result: Any) -> None:
  """Waits for a JAX result (torch calls return once their work is done)."""
  if hasattr(result, "block_until_ready") or isinstance(result, dict):
    import jax  # pylint: disable=g-import-not-at-top

    jax.block_until_ready(result)


def check_agreement(infos: dict[str, dict[str, Any]], tolerance: float) -> dict[str, Any]:
  """Largest probability difference and relative loss difference of every contender vs jax."""
  reference = infos["jax"]
  agreement = {}
  for name, info in infos.items():
    if name == "jax":
      continue
    difference = float(np.abs(info["probabilities"] - reference["probabilities"]).max())
    loss = abs(info["loss"] - reference["loss"]) / abs(reference["loss"])
    agreement[name] = {"max_probability_difference": difference, "relative_loss_difference": loss}
    if difference > tolerance or loss > tolerance:
      raise SystemExit(
          f"error: {name} disagrees with jax (probabilities differ by up to "
          f"{difference:.2e}, loss by {loss:.2e} relative; --tolerance={tolerance})"
      )
  return agreement


def timed_rounds(connections: dict[str, Any], rounds: int) -> dict[str, Any]:
  """One call per contender and operation per round, the starting contender rotating."""
  names = list(connections)
  samples = {name: {op: {"wall": [], "cpu": []} for op in OPERATIONS} for name in names}
  loads = []
  for round_index in range(rounds):
    loads.append(round(os.getloadavg()[0], 2))
    order = names[round_index % len(names) :] + names[: round_index % len(names)]
    for operation in OPERATIONS:
      for name in order:
        connections[name].send(operation)
        wall, cpu = connections[name].recv()
        samples[name][operation]["wall"].append(wall)
        samples[name][operation]["cpu"].append(cpu)
  return {"samples": samples, "load_per_round": loads}


def summarise(infos, samples, batch_size: int) -> dict[str, Any]:
  """Per contender and operation: images/s with spread, cores busy, FLOP/s and share of the
  framework's own matmul rate; ratios of jax's median images/s to every other contender's."""
  table = {}
  for name, info in infos.items():
    rows = {}
    matmul = info["matmul"]["flops_per_second"]["median"]
    for operation in OPERATIONS:
      timing = common.Timing(tuple(samples[name][operation]["wall"]))
      flops = info["flops"][operation]
      rows[operation] = {
          "timing": timing.to_json(),
          "images_per_second": timing.rate(batch_size),
          "cores_busy": sum(samples[name][operation]["cpu"]) / sum(timing.seconds),
          "flops": flops,
          "flops_per_second": flops / timing.median if flops else None,
          "fraction_of_matmul_rate": flops / timing.median / matmul if flops else None,
      }
    table[name] = rows
  ratios = {}
  for name in infos:
    if name != "jax":
      ratios[name] = {
          op: table["jax"][op]["images_per_second"]["median"]
          / table[name][op]["images_per_second"]["median"]
          for op in OPERATIONS
      }
  return {"speeds": table, "jax_speed_ratio": ratios}


def print_table(summary: dict[str, Any], loads: Sequence[float]) -> None:
  rows = []
  for name, operations in summary["speeds"].items():
    for operation, row in operations.items():
      ratio = summary["jax_speed_ratio"].get(name, {}).get(operation)
      rows.append(
          [
              name,
              operation,
              common.format_rate(row["images_per_second"], 2),
              f"{row['cores_busy']:.2f}",
              f"{row['fraction_of_matmul_rate']:.0%}" if row["fraction_of_matmul_rate"] else "-",
              f"{ratio:.2f}" if ratio else "-",
          ]
      )
  print(
      common.markdown_table(
          [
              "implementation",
              "operation",
              "images/s (min-max)",
              "cores busy",
              "of own matmul rate",
              "jax / this",
          ],
          rows,
      )
  )
  print(f"1-minute load per round: {list(loads)}")


def run(
    contenders: Sequence[str], settings: dict[str, Any], rounds: int, tolerance: float
) -> dict[str, Any]:
  context = multiprocessing.get_context("spawn")
  connections, processes, infos = {}, [], {}
  try:
    for name in contenders:
      parent, child = context.Pipe()
      process = context.Process(target=worker, args=(child, name, settings), daemon=True)
      process.start()
      processes.append(process)
      status, info = parent.recv()
      if status != "ready":
        raise SystemExit(f"error: contender {name} could not start: {info}")
      connections[name], infos[name] = parent, info
      print(
          f"{name}: ready ({info['framework']}, compiled in "
          f"{info['compile_seconds']['train']:.0f} s + {info['compile_seconds']['forward']:.0f} s)",
          flush=True,
      )
    agreement = check_agreement(infos, tolerance)
    measured = timed_rounds(connections, rounds)
  finally:
    for connection in connections.values():
      connection.send(None)
    for process in processes:
      process.join(timeout=60)
  for info in infos.values():
    del info["probabilities"]
  summary = summarise(infos, measured["samples"], settings["config"].batch_size)
  return {
      "settings": {
          "batch_size": settings["config"].batch_size,
          "image_size": settings["config"].dataset.image_size,
          "rounds": rounds,
          "warmup": settings["warmup"],
          "dtype": settings["config"].model.dtype,
          "torch_device": settings.get("torch_device", "cpu"),
      },
      "agreement": agreement,
      "implementations": infos,
      **measured,
      **summary,
  }


def main(argv: Sequence[str]) -> None:
  del argv
  options = flags.FLAGS
  unknown = set(options.contenders) - set(CONTENDERS)
  if unknown or "jax" not in options.contenders:
    raise app.UsageError(f"--contenders must include jax and name only {CONTENDERS}")
  config = common.load_config(options.config)
  if config.model.variant != "paper":
    raise app.UsageError("the PyTorch model is the `paper` variant; use a config with it")
  if options.batch_size:
    config.batch_size = options.batch_size
  settings = {
      "config": config,
      "variables": shipped_variables(),
      "warmup": options.warmup,
      "threads": options.threads,
      "matmul_size": options.matmul_size,
  }
  result = run(options.contenders, settings, options.rounds, options.tolerance)
  print_table(result, result["load_per_round"])
  print(f"wrote {common.write_result(options.output, 'pytorch_comparison', result)}")


if __name__ == "__main__":
  define_flags()
  app.run(main)
