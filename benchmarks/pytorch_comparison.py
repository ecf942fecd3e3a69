r"""Our train step and forward pass against the same network in PyTorch, timed side by side.

  pip install torch                                   # the benchmark's own dependency
  python -m benchmarks.pytorch_comparison             # base.py model, batch 16, 256x256, fp32

Each contender lives in its own long-lived worker process: `jax` (the package's data-parallel
train step and forward pass, as `main` runs them) and PyTorch in eager mode and under
`torch.compile`, both in `channels_last` memory format, the faster layout for CPU convolutions
(`--contenders` adds `nchw` ones). The workers hold their compiled programs, and the coordinator
asks them in turn for one timed call at a time, round after round, rotating who goes first, so
that every contender sees the same load of this shared machine (all train steps first, then all
forward passes, each block after one untimed call); ratios of medians are reported
with their spread, the 1-minute load of every round, the cores each side kept busy (CPU time
over wall time of its calls) and the worker's peak resident memory during one call (the peak is
reset before each call, so it is the step's own, weights and runtime included).

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
from lstm_endec_jax.runtime import cli

_FLOAT32_CONTENDERS = (
    "jax",
    "torch_eager_channels_last",
    "torch_compile_channels_last",
    "torch_eager_nchw",
    "torch_compile_nchw",
)
# The same contenders in bfloat16: ours with `model.dtype=bfloat16`, PyTorch under autocast.
BFLOAT16_SUFFIX = "_bf16"
CONTENDERS = _FLOAT32_CONTENDERS + tuple(name + BFLOAT16_SUFFIX for name in _FLOAT32_CONTENDERS)
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
  flags.DEFINE_bool(
      "alone",
      False,
      "time one contender at a time, no other worker alive (default: all alive, interleaved)",
  )
  flags.DEFINE_float(
      "bf16_tolerance",
      0.05,
      "the same for the bfloat16 contenders (against float32 jax where it runs)",
  )
  flags.DEFINE_string(
      "output", str(common.RESULTS_DIR / "pytorch_comparison.json"), "JSON result path"
  )


def class_weights_of(masks: np.ndarray) -> np.ndarray:
  from lstm_endec_jax.training import losses  # pylint: disable=g-import-not-at-top

  return losses.inverse_frequency_weights(losses.class_frequencies([masks]))


def shipped_variables() -> dict[str, Any]:
  """The shipped `base` weights as float32 numpy arrays (trained values make the equality check
  meaningful: at initialisation every probability is close to 0.5)."""
  import jax  # pylint: disable=g-import-not-at-top
  from lstm_endec_jax.runs import shipped  # pylint: disable=g-import-not-at-top

  return jax.tree.map(lambda x: np.asarray(x, np.float32), shipped.read_variables("base"))


class JaxRunner:
  """The package's own train step and forward pass on every local device."""

  def __init__(self, settings: dict[str, Any], *, dtype: str):
    import jax  # pylint: disable=g-import-not-at-top
    from lstm_endec_jax.evaluation import evaluator  # pylint: disable=g-import-not-at-top
    from lstm_endec_jax.model import models  # pylint: disable=g-import-not-at-top
    from lstm_endec_jax.runtime import parallel  # pylint: disable=g-import-not-at-top
    from lstm_endec_jax.training import optimizers, train  # pylint: disable=g-import-not-at-top

    config = settings["config"].copy_and_resolve_references()
    config.model.dtype = dtype
    mesh = parallel.create_mesh()
    batch = common.synthetic_batch(config.batch_size, config.dataset.image_size)
    learning_rate_fn = optimizers.create_learning_rate_schedule(config)
    state = train.create_train_state(
        config,
        settings["variables"],
        jax.random.key(0),
        class_weights_of(batch["mask"]),
        learning_rate_fn,
    )
    self._state = jax.device_put(state, parallel.replicated(mesh))
    self._batch = parallel.global_batch(
        {"image": batch["image"], "mask": batch["mask"].astype(np.int32)}, mesh
    )
    self._images = self._batch["image"]
    train_step, train_compile_s = common.compile_seconds(
        train.make_parallel_train_step(config, mesh, learning_rate_fn), self._state, self._batch
    )
    forward, forward_compile_s = common.compile_seconds(
        evaluator.make_parallel_probabilities(models.create_model(config.model), mesh),
        self._variables(),
        self._images,
    )
    self._train_step = train_step
    probabilities = np.asarray(forward(self._variables(), self._images))
    self.calls = {"train": self.train, "forward": lambda: forward(self._variables(), self._images)}
    loss = float(self.train()["loss"])
    self.info = {
        "framework": f"jax {jax.__version__}, {dtype}",
        "probabilities": probabilities,
        "loss": loss,
        "compile_seconds": {"train": train_compile_s, "forward": forward_compile_s},
        "flops": {"train": common.flops_of(train_step), "forward": common.flops_of(forward)},
        "matmul": common.matmul_flops_per_second(settings["matmul_size"], dtype=dtype),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }

  def train(self):
    self._state, metrics = self._train_step(self._state, self._batch)
    return metrics

  def _variables(self):
    """The current weights (each train step donates the previous state's buffers)."""
    return {"params": self._state.params, "batch_stats": self._state.batch_stats}


class TorchRunner:
  """`pytorch_model.LSTMEnDec` with Adam, eager or compiled, in one memory format."""

  def __init__(self, settings: dict[str, Any], *, compiled: bool, channels_last: bool, dtype: str):
    import torch  # pylint: disable=g-import-not-at-top
    from benchmarks import pytorch_model  # pylint: disable=g-import-not-at-top

    torch.set_num_threads(settings["threads"] or os.cpu_count())
    config = settings["config"]
    self._device = torch.device(settings.get("torch_device", "cpu"))
    # bfloat16 as a PyTorch user trains in it: fp32 weights and Adam, the network under autocast.
    self._autocast_dtype = torch.bfloat16 if dtype == "bfloat16" else None
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = pytorch_model.load_flax_variables(pytorch_model.LSTMEnDec(), settings["variables"])
    model = model.to(self._device, memory_format=memory_format)
    batch = common.synthetic_batch(config.batch_size, config.dataset.image_size)
    self._images = (
        torch.from_numpy(batch["image"])
        .permute(0, 3, 1, 2)
        .float()
        .to(self._device)
        .contiguous(memory_format=memory_format)
    )
    self._masks = torch.from_numpy(batch["mask"].astype(np.int64)).to(self._device)
    self._weights = torch.from_numpy(class_weights_of(batch["mask"])).to(self._device)
    self._model, self._torch = model, torch
    # As a PyTorch user would: the loss and the softmax are compiled with the network.
    self._loss = self._compiled(pytorch_model.weighted_cross_entropy, compiled, model)
    self._probabilities = self._compiled(
        lambda logits: torch.softmax(logits, dim=1)[:, 1], compiled, model
    )
    self._optimizer = torch.optim.Adam(
        model.parameters(),
        lr=config.learning_rate,
        betas=(config.adam_b1, config.adam_b2),
        eps=config.adam_eps,
    )
    start = time.perf_counter()
    probabilities = self.forward().float().cpu().numpy()
    forward_compile_s = time.perf_counter() - start
    start = time.perf_counter()
    loss = float(self.train())
    train_compile_s = time.perf_counter() - start
    self.calls = {"train": self.train, "forward": self.forward}
    self.info = {
        "framework": f"torch {torch.__version__}, {dtype}",
        "probabilities": probabilities,
        "loss": loss,
        "compile_seconds": {"train": train_compile_s, "forward": forward_compile_s},
        "flops": self._count_flops(pytorch_model),
        "matmul": self._matmul_rate(settings["matmul_size"]),
        "threads": torch.get_num_threads(),
    }

  def _compiled(self, head: Callable[..., Any], compiled: bool, model) -> Callable[..., Any]:
    """`head(model(images), *rest)` (the head in float32), under torch.compile when `compiled`."""

    def function(images, *rest):
      with self._autocast():
        logits = model(images)
      return head(logits.float(), *rest)

    return self._torch.compile(function) if compiled else function

  def _autocast(self):
    enabled = self._autocast_dtype is not None
    return self._torch.autocast(self._device.type, dtype=self._autocast_dtype, enabled=enabled)

  def _synchronized(self, result):
    """`result` once the device has computed it (CUDA calls return before the work is done)."""
    if self._device.type == "cuda":
      self._torch.cuda.synchronize()
    return result

  def forward(self):
    self._model.eval()
    with self._torch.inference_mode():
      return self._synchronized(self._probabilities(self._images))

  def train(self):
    self._model.train()
    self._optimizer.zero_grad(set_to_none=True)
    loss = self._loss(self._images, self._masks, self._weights)
    loss.backward()
    self._optimizer.step()
    return self._synchronized(loss.detach())

  def _count_flops(self, pytorch_model) -> dict[str, float]:
    """Multiply-add FLOPs (x2) of convolutions and matmuls, as FlopCounterMode counts them, on the
    eager model (the LSTM's recurrences included: it counts the matmuls inside nn.LSTM)."""
    from torch.utils import flop_counter  # pylint: disable=g-import-not-at-top

    counts = {}
    self._model.eval()
    with flop_counter.FlopCounterMode(display=False) as counter, self._torch.inference_mode():
      with self._autocast():
        self._model(self._images)
    counts["forward"] = float(counter.get_total_flops())
    self._model.train()
    with flop_counter.FlopCounterMode(display=False) as counter:
      with self._autocast():
        logits = self._model(self._images)
      pytorch_model.weighted_cross_entropy(logits.float(), self._masks, self._weights).backward()
    self._model.zero_grad(set_to_none=True)
    counts["train"] = float(counter.get_total_flops())
    return counts

  def _matmul_rate(self, size: int) -> dict[str, Any]:
    """FLOP/s of a (size x size) matmul in the contender's dtype on its device."""
    dtype = self._autocast_dtype or self._torch.float32
    a = self._torch.randn(size, size, device=self._device, dtype=dtype)
    b = self._torch.randn(size, size, device=self._device, dtype=dtype)
    seconds = []
    for index in range(6):
      start = time.perf_counter()
      self._synchronized(self._torch.matmul(a, b))
      if index:
        seconds.append(time.perf_counter() - start)
    timing = common.Timing(tuple(seconds))
    return {
        "size": size,
        "timing": timing.to_json(),
        "flops_per_second": timing.rate(2.0 * size**3),
    }


def dtype_of(contender: str) -> str:
  return "bfloat16" if contender.endswith(BFLOAT16_SUFFIX) else "float32"


def jax_reference(contender: str) -> str:
  """The jax contender that `contender` is compared with: the one of its own dtype."""
  return "jax" + (BFLOAT16_SUFFIX if dtype_of(contender) == "bfloat16" else "")


def make_runner(contender: str, settings: dict[str, Any]):
  dtype = dtype_of(contender)
  name = contender.removesuffix(BFLOAT16_SUFFIX)
  if name == "jax":
    return JaxRunner(settings, dtype=dtype)
  _, mode, layout = name.split("_", 2)
  return TorchRunner(
      settings, compiled=mode == "compile", channels_last=layout == "channels_last", dtype=dtype
  )


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
    peak_is_this_calls = common.reset_peak_rss()
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    _wait(runner.calls[operation]())
    wall, cpu = time.perf_counter() - start_wall, time.process_time() - start_cpu
    connection.send((wall, cpu, common.peak_rss_bytes() if peak_is_this_calls else None))


def _wait(result: Any) -> None:
  """Waits for a JAX result (torch calls return once their work is done)."""
  if hasattr(result, "block_until_ready") or isinstance(result, dict):
    import jax  # pylint: disable=g-import-not-at-top

    jax.block_until_ready(result)


def check_agreement(
    infos: dict[str, dict[str, Any]], tolerances: dict[str, float]
) -> dict[str, Any]:
  """Largest probability difference and relative loss difference of every contender against our
  float32 step (our bfloat16 one where only that runs), within the tolerance of its dtype."""
  reference_name = "jax" if "jax" in infos else "jax" + BFLOAT16_SUFFIX
  reference = infos[reference_name]
  agreement = {}
  for name, info in infos.items():
    if name == reference_name:
      continue
    tolerance = tolerances[dtype_of(name)]
    difference = float(np.abs(info["probabilities"] - reference["probabilities"]).max())
    loss = abs(info["loss"] - reference["loss"]) / abs(reference["loss"])
    agreement[name] = {"max_probability_difference": difference, "relative_loss_difference": loss}
    if difference > tolerance or loss > tolerance:
      raise SystemExit(
          f"error: {name} disagrees with {reference_name} (probabilities differ by up to "
          f"{difference:.2e}, loss by {loss:.2e} relative; tolerance {tolerance})"
      )
  return agreement


def timed_rounds(connections: dict[str, Any], rounds: int) -> dict[str, Any]:
  """Per operation, one untimed call per contender, then one timed call per contender per round,
  the starting contender rotating.

  The operations take turns in blocks, not call by call: our train step right after a forward
  pass in the same process runs about 1.3 s slower (5.7 s against 4.4 s, 2026-12-06, AMD EPYC),
  which a training run, evaluating every few hundred steps, hardly sees.
  """
  names = list(connections)
  samples = {
      name: {op: {"wall": [], "cpu": [], "peak_rss": []} for op in OPERATIONS} for name in names
  }
  loads = []
  for operation in OPERATIONS:
    for name in names:
      connections[name].send(operation)
      connections[name].recv()
    for round_index in range(rounds):
      loads.append(round(os.getloadavg()[0], 2))
      order = names[round_index % len(names) :] + names[: round_index % len(names)]
      for name in order:
        connections[name].send(operation)
        wall, cpu, peak_rss = connections[name].recv()
        samples[name][operation]["wall"].append(wall)
        samples[name][operation]["cpu"].append(cpu)
        samples[name][operation]["peak_rss"].append(peak_rss)
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
      peaks = samples[name][operation]["peak_rss"]
      rows[operation] = {
          "timing": timing.to_json(),
          # the process's resident memory at its highest during one call, the largest over calls
          "peak_rss_bytes": max(peaks) if None not in peaks else None,
          "images_per_second": timing.rate(batch_size),
          "cores_busy": sum(samples[name][operation]["cpu"]) / sum(timing.seconds),
          "flops": flops,
          "flops_per_second": flops / timing.median if flops else None,
          "fraction_of_matmul_rate": flops / timing.median / matmul if flops else None,
      }
    table[name] = rows
  ratios = {}
  for name in infos:
    reference = jax_reference(name)
    if name != reference and reference in table:
      ratios[name] = {
          op: table[reference][op]["images_per_second"]["median"]
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
              f"{row['peak_rss_bytes'] / 2**30:.2f}" if row["peak_rss_bytes"] else "-",
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
              "peak RSS (GiB)",
              "jax (same dtype) / this",
          ],
          rows,
      )
  )
  print(f"1-minute load per round: {list(loads)}")


def _start(context, name: str, settings: dict[str, Any]):
  """A ready worker for one contender: (connection, process, info)."""
  parent, child = context.Pipe()
  process = context.Process(target=worker, args=(child, name, settings), daemon=True)
  process.start()
  status, info = parent.recv()
  if status != "ready":
    raise SystemExit(f"error: contender {name} could not start: {info}")
  print(
      f"{name}: ready ({info['framework']}, compiled in "
      f"{info['compile_seconds']['train']:.0f} s + {info['compile_seconds']['forward']:.0f} s)",
      flush=True,
  )
  return parent, process, info


def _stop(workers: dict[str, tuple[Any, Any]]) -> None:
  for connection, _ in workers.values():
    connection.send(None)
  for _, process in workers.values():
    process.join(timeout=60)


def run(
    contenders: Sequence[str],
    settings: dict[str, Any],
    rounds: int,
    tolerances: dict[str, float],
    *,
    alone: bool = False,
) -> dict[str, Any]:
  """Times every contender; interleaved (all workers alive, one call each in turn, round after
  round) or, with `alone`, one contender at a time with no other worker alive."""
  context = multiprocessing.get_context("spawn")
  infos = {}
  if alone:
    measured = {"samples": {}, "load_per_round": []}
    for name in contenders:
      connection, process, infos[name] = _start(context, name, settings)
      try:
        one = timed_rounds({name: connection}, rounds)
      finally:
        _stop({name: (connection, process)})
      measured["samples"].update(one["samples"])
      measured["load_per_round"] += one["load_per_round"]
    agreement = check_agreement(infos, tolerances)
  else:
    workers = {}
    try:
      for name in contenders:
        connection, process, infos[name] = _start(context, name, settings)
        workers[name] = (connection, process)
      agreement = check_agreement(infos, tolerances)
      measured = timed_rounds({name: worker[0] for name, worker in workers.items()}, rounds)
    finally:
      _stop(workers)
  for info in infos.values():
    del info["probabilities"]
  summary = summarise(infos, measured["samples"], settings["config"].batch_size)
  return {
      "settings": {
          "batch_size": settings["config"].batch_size,
          "image_size": settings["config"].dataset.image_size,
          "rounds": rounds,
          "one_contender_at_a_time": alone,
          "warmup": settings["warmup"],
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
  if unknown or not {"jax", "jax" + BFLOAT16_SUFFIX} & set(options.contenders):
    raise app.UsageError(f"--contenders must include jax or jax_bf16 and name only {CONTENDERS}")
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
  tolerances = {"float32": options.tolerance, "bfloat16": options.bf16_tolerance}
  result = run(options.contenders, settings, options.rounds, tolerances, alone=options.alone)
  print_table(result, result["load_per_round"])
  print(f"wrote {common.write_result(options.output, 'pytorch_comparison', result)}")


if __name__ == "__main__":
  define_flags()
  cli.run(main, huge_pages=True)
