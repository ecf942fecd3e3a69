"""Timing and reporting helpers shared by the benchmarks (run them from the repository root).

Every benchmark reports steady-state numbers the same way: warm-up calls are excluded, compile time
is measured on its own (`compile_seconds`), each timed call waits for its results
(`jax.block_until_ready`), and a rate is the median over repeats with its spread (min, max and
quartiles). `environment()` records what the numbers were measured on, including the load of this
shared machine, and `write_result` puts both into one JSON file per benchmark.
"""

import argparse
import dataclasses
import datetime
import functools
import importlib.util
import json
import os
import pathlib
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from lstm_endec_jax.runtime import xla_flags

# Benchmarks measure what the commands run: the package's XLA settings, set before any backend
# starts (every benchmark imports this module first).
xla_flags.apply_defaults()

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"


@dataclasses.dataclass(frozen=True)
class Timing:
  """Wall seconds of repeated calls; rates are derived per item (image, batch, ...)."""

  seconds: tuple[float, ...]

  @property
  def median(self) -> float:
    return statistics.median(self.seconds)

  def quartiles(self) -> tuple[float, float]:
    if len(self.seconds) < 2:
      return self.seconds[0], self.seconds[0]
    q1, _, q3 = statistics.quantiles(self.seconds, n=4, method="inclusive")
    return q1, q3

  def rate(self, items: float) -> dict[str, float]:
    """items/s: median over repeats, slowest and fastest repeat, interquartile range."""
    q1, q3 = self.quartiles()
    return {
        "median": items / self.median,
        "min": items / max(self.seconds),
        "max": items / min(self.seconds),
        "q1": items / q3,
        "q3": items / q1,
    }

  def to_json(self) -> dict[str, Any]:
    q1, q3 = self.quartiles()
    return {
        "median_s": self.median,
        "min_s": min(self.seconds),
        "max_s": max(self.seconds),
        "q1_s": q1,
        "q3_s": q3,
        "repeats": len(self.seconds),
        "all_s": list(self.seconds),
    }


def time_calls(call: Callable[[], Any], *, warmup: int, repeats: int) -> Timing:
  """Times `repeats` calls of `call` after `warmup` untimed ones, each waited on to completion."""
  if repeats < 1:
    raise ValueError(f"repeats must be >= 1, got {repeats}")
  for _ in range(warmup):
    jax.block_until_ready(call())
  seconds = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(call())
    seconds.append(time.perf_counter() - start)
  return Timing(tuple(seconds))


def compile_seconds(jitted: Any, *args: Any) -> tuple[Any, float]:
  """Lowers and compiles `jitted` for `args`; returns the compiled executable and the seconds."""
  start = time.perf_counter()
  compiled = jitted.lower(*args).compile()
  return compiled, time.perf_counter() - start


def flops_of(compiled: Any) -> float | None:
  """FLOPs XLA's cost analysis counts for one call of a compiled executable (None: no count)."""
  analysis = compiled.cost_analysis()
  if isinstance(analysis, Sequence):  # Older jax: one dict per partition.
    analysis = analysis[0] if analysis else None
  flops = (analysis or {}).get("flops")
  return float(flops) if flops and flops > 0 else None


def matmul_flops_per_second(
    size: int, *, warmup: int = 1, repeats: int = 5, dtype: str = "float32"
) -> dict[str, Any]:
  """FLOP/s of a jitted (size x size) matmul on the default device: the practical peak the other
  numbers are compared with (measured in the same run, under the same load).

  Products are accumulated and returned in float32, as in `conv_layers`' bfloat16 convolutions:
  on CPUs XLA's bfloat16 dot reaches the bfloat16 units (AVX512-BF16, AMX) only with a float32
  result, and runs at about its float32 rate with a bfloat16 one (2026-12-06, AMD EPYC).
  """
  key_a, key_b = jax.random.split(jax.random.key(0))
  a = jax.random.normal(key_a, (size, size), dtype)
  b = jax.random.normal(key_b, (size, size), dtype)
  matmul = jax.jit(functools.partial(jax.numpy.matmul, preferred_element_type=jax.numpy.float32))
  timing = time_calls(lambda: matmul(a, b), warmup=warmup, repeats=repeats)
  return {
      "size": size,
      "dtype": dtype,
      "flops": 2.0 * size**3,
      "timing": timing.to_json(),
      "flops_per_second": timing.rate(2.0 * size**3),
  }


def _cpu_model() -> str:
  try:
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
      if line.startswith("model name"):
        return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


# CPU features that decide which convolution and matmul kernels can run: AMX tiles and
# AVX512-BF16 are the bfloat16 units.
ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_fp16")


def cpu_isa() -> list[str]:
  """Which of `ISA_FLAGS` this CPU has (Linux /proc/cpuinfo; empty elsewhere)."""
  try:
    text = pathlib.Path("/proc/cpuinfo").read_text()
  except OSError:
    return []
  for line in text.splitlines():
    if line.startswith("flags"):
      present = set(line.split(":", 1)[1].split())
      return [flag for flag in ISA_FLAGS if flag in present]
  return []


def environment() -> dict[str, Any]:
  """Machine, date, software versions and load: what a number needs to be comparable."""
  import flax  # pylint: disable=g-import-not-at-top
  import jaxlib  # pylint: disable=g-import-not-at-top

  devices = jax.devices()
  return {
      "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
      "machine": (
          f"{_cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}"
      ),
      "cpu_count": os.cpu_count(),
      "cpu_isa": cpu_isa(),
      "load_average": [round(load, 2) for load in os.getloadavg()],
      "python": sys.version.split()[0],
      "jax": jax.__version__,
      "jaxlib": jaxlib.__version__,
      "flax": flax.__version__,
      "backend": jax.default_backend(),
      "devices": f"{len(devices)} x {devices[0].device_kind}",
      "xla_flags": os.environ.get("XLA_FLAGS", ""),
  }


def peak_rss_bytes() -> int:
  """Peak resident memory of this process so far, or since `reset_peak_rss` (Linux reports
  ru_maxrss in KiB)."""
  import resource  # pylint: disable=g-import-not-at-top

  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak_rss() -> bool:
  """Starts a new peak for `peak_rss_bytes`, so one call's peak can be read (Linux: 5 written to
  /proc/self/clear_refs); False where the kernel does not allow it."""
  try:
    pathlib.Path("/proc/self/clear_refs").write_text("5")
  except OSError:
    return False
  return True


def device_peak_bytes() -> int | None:
  """Peak bytes in use on the first device where the backend tracks it (GPU/TPU; not CPU)."""
  stats = jax.local_devices()[0].memory_stats() or {}
  peak = stats.get("peak_bytes_in_use")
  return int(peak) if peak is not None else None


def compiled_memory_bytes(compiled: Any) -> dict[str, int] | None:
  """XLA's buffer assignment of a compiled step: arguments, outputs, temporaries, and their peak
  (arguments + outputs - donated aliases + temporaries)."""
  analysis = compiled.memory_analysis()
  if analysis is None:
    return None
  sizes = {
      "argument": analysis.argument_size_in_bytes,
      "output": analysis.output_size_in_bytes,
      "alias": analysis.alias_size_in_bytes,
      "temp": analysis.temp_size_in_bytes,
  }
  sizes["peak"] = sizes["argument"] + sizes["output"] - sizes["alias"] + sizes["temp"]
  return sizes


def add_common_arguments(parser: argparse.ArgumentParser, *, output: pathlib.Path) -> None:
  """--config, --small, --warmup, --repeats and --output, as every model benchmark takes them.

  Defaults left as None are filled by `fill_defaults`, differently for --small runs.
  """
  parser.add_argument(
      "--config",
      default=str(REPO_ROOT / "configs" / "base.py"),
      help="configuration file whose model (and training settings) are measured",
  )
  parser.add_argument(
      "--small",
      action="store_true",
      help="smallest size (tiny widths, few repeats): for tests, not for numbers",
  )
  parser.add_argument("--warmup", type=int, help="untimed calls after the first (compiling) one")
  parser.add_argument("--repeats", type=int, help="timed calls; median and spread are reported")
  parser.add_argument("--output", default=str(output), help="JSON result path")


def fill_defaults(args: argparse.Namespace, full: dict[str, Any], small: dict[str, Any]) -> None:
  """Sets every argument still None to its `small` default in a --small run, else its `full`."""
  for name, value in (small if args.small else full).items():
    if getattr(args, name) is None:
      setattr(args, name, value)


def load_config(path: str | os.PathLike[str]) -> Any:
  """`get_config()` of a configs/*.py file (the configs import each other as `configs.<name>`,
  so the benchmarks run from the repository root: `python -m benchmarks.<name>`)."""
  spec = importlib.util.spec_from_file_location(pathlib.Path(path).stem, path)
  if spec is None or spec.loader is None:
    raise FileNotFoundError(f"cannot load a configuration from {path}")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def shrink_model(model_config: Any) -> Any:
  """Applies the tiny widths of configs/smoke.py (its differences from configs/base.py) to a
  `config.model` section, for the benchmarks' --small runs (tests, not numbers)."""
  from configs import base  # pylint: disable=g-import-not-at-top
  from configs import smoke  # pylint: disable=g-import-not-at-top

  full, tiny = base.get_config().model, smoke.get_config().model
  model_config.update({name: value for name, value in tiny.items() if full[name] != value})
  return model_config


def config_of(args: argparse.Namespace) -> Any:
  """The config of `--config` (`add_common_arguments`), its model shrunk under `--small`."""
  config = load_config(args.config)
  if args.small:
    shrink_model(config.model)
  return config


def write_result(path: str | os.PathLike[str], name: str, result: dict[str, Any]) -> pathlib.Path:
  """Writes `{"benchmark": name, "environment": ..., **result}` as indented JSON."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  payload = {"benchmark": name, "environment": environment(), **result}
  path.write_text(json.dumps(payload, indent=2) + "\n")
  return path


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
  """A GitHub Markdown table; cells are str()-ed."""
  lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
  lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
  return "\n".join(lines)


def format_rate(rate: dict[str, float], digits: int = 1) -> str:
  """'median (min-max)' of a `Timing.rate` dict."""
  return f"{rate['median']:.{digits}f} ({rate['min']:.{digits}f}-{rate['max']:.{digits}f})"


def synthetic_batch(batch_size: int, image_size: int) -> dict[str, np.ndarray]:
  """Random pixels and a square manipulated region per image: the step's cost does not depend on
  the content."""
  rng = np.random.default_rng(0)
  masks = np.zeros((batch_size, image_size, image_size), np.uint8)
  masks[:, image_size // 4 : image_size // 2, image_size // 4 : image_size // 2] = 1
  return {
      "image": rng.integers(0, 256, (batch_size, image_size, image_size, 3), np.uint8),
      "mask": masks,
      "label": np.ones(batch_size, np.int32),
  }
