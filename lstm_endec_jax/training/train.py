"""Training loop for LSTM-EnDec and its baselines.

`train_and_evaluate(config, workdir)` trains data-parallel over all devices
(a `shard_map`-ped step over the `data` mesh axis), evaluates on the
validation split, checkpoints with Orbax (resuming after a kill, bit for bit
on CPU) and finally evaluates the test split into `eval.json` (through
`evaluation`, as every other command does).
"""

import enum
import functools
import sys
from typing import Any

from absl import logging
from flax.training import train_state
import jax
from jax import lax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P
import ml_collections
import numpy as np
import optax

from lstm_endec_jax.data import input_pipeline
from lstm_endec_jax.evaluation import evaluator
from lstm_endec_jax.model import models
from lstm_endec_jax.runs import checkpointing
from lstm_endec_jax.runs import layout
from lstm_endec_jax.runs import reporting
from lstm_endec_jax.runs import shipped
from lstm_endec_jax.runs import weights
from lstm_endec_jax.runtime import parallel
from lstm_endec_jax.runtime.errors import UserError
from lstm_endec_jax.training import config_checks
from lstm_endec_jax.training import interrupts
from lstm_endec_jax.training import losses
from lstm_endec_jax.training import optimizers

DATA_AXIS = parallel.DATA_AXIS


class TrainState(train_state.TrainState):
  """Everything a resumed run needs besides the input iterator.

  `rng` is raw key data so that Orbax stores it like any array; `class_weights`
  are the loss weights measured at the start of the run (kept so that a
  resumed run uses the same ones).
  """

  batch_stats: Any
  rng: jax.Array
  class_weights: jax.Array


def create_train_state(
    config: ml_collections.ConfigDict,
    variables: dict[str, Any],
    rng: jax.Array,
    class_weights: np.ndarray,
    learning_rate_fn: optax.Schedule,
) -> TrainState:
  model = models.create_model(config.model, axis_name=DATA_AXIS)
  return TrainState.create(
      apply_fn=model.apply,
      params=variables["params"],
      batch_stats=variables["batch_stats"],
      tx=optimizers.create_optimizer(config, learning_rate_fn),
      rng=jax.random.key_data(rng),
      class_weights=jnp.asarray(class_weights, jnp.float32),
  )


class TrainingDivergedError(UserError, RuntimeError):
  """Training cannot go on: steps keep being skipped as non-finite, or the
  model's predictions are no longer finite."""


def all_finite(tree: Any) -> jax.Array:
  """True when every floating-point value in `tree` is finite."""
  leaves = [
      jnp.all(jnp.isfinite(leaf))
      for leaf in jax.tree.leaves(tree)
      if jnp.issubdtype(jnp.asarray(leaf).dtype, jnp.inexact)
  ]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def train_step(
    state: TrainState,
    batch: dict[str, jax.Array],
    *,
    loss_name: str,
    learning_rate_fn: optax.Schedule,
) -> tuple[TrainState, dict[str, jax.Array]]:
  """One step on this device's slice of the batch (run under shard_map).

  Gradients, loss and BatchNorm statistics are averaged over `DATA_AXIS`. A
  step is applied only if its loss, its gradient norm and everything it would
  store (new params, optimizer state and batch statistics) are finite: a finite
  gradient can still make a non-finite update (a NaN or huge learning rate).
  Otherwise params, optimizer state and batch statistics stay as they were
  (the step counter still advances, so data and dropout keys stay in step with
  an uninterrupted run).
  """
  dropout_rng = jax.random.fold_in(
      jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step), lax.axis_index(DATA_AXIS)
  )

  def loss_fn(params):
    logits, updates = state.apply_fn(
        {"params": params, "batch_stats": state.batch_stats},
        batch["image"],
        train=True,
        rngs={"dropout": dropout_rng},
        mutable=["batch_stats"],
    )
    loss = losses.compute_loss(loss_name, logits, batch["mask"], state.class_weights)
    return loss, (logits, updates["batch_stats"])

  (loss, (logits, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  grads = lax.pmean(grads, DATA_AXIS)
  loss = lax.pmean(loss, DATA_AXIS)
  grad_norm = optax.global_norm(grads)
  updated = state.apply_gradients(grads=grads, batch_stats=batch_stats)
  is_finite = (
      jnp.isfinite(loss)
      & jnp.isfinite(grad_norm)
      & all_finite((updated.params, updated.opt_state, updated.batch_stats))
  )
  skipped = state.replace(step=state.step + 1)
  new_state = jax.tree.map(lambda new, old: jnp.where(is_finite, new, old), updated, skipped)
  accuracy = jnp.mean(jnp.argmax(logits, -1) == batch["mask"])
  metrics = {
      "loss": loss,
      "pixel_accuracy": lax.pmean(accuracy, DATA_AXIS),
      "grad_norm": grad_norm,
      "learning_rate": learning_rate_fn(state.step),
      "is_finite": is_finite,
  }
  return new_state, metrics


def make_parallel_train_step(
    config: ml_collections.ConfigDict, mesh, learning_rate_fn: optax.Schedule
):
  """`train_step` over the mesh: replicated state, batch split on `data`."""
  step = functools.partial(train_step, loss_name=config.loss, learning_rate_fn=learning_rate_fn)
  # check_vma=False: flax's nn.RNN starts the LSTM scan from a device-invariant
  # zero carry, which the varying-axis checker rejects. Every output here is
  # pmean-ed explicitly, and tests check that 1 and 2 devices take the same
  # step, so the check is not needed for correctness.
  sharded = jax.shard_map(
      step, mesh=mesh, in_specs=(P(), P(DATA_AXIS)), out_specs=(P(), P()), check_vma=False
  )
  return jax.jit(sharded, donate_argnums=0)


def measure_class_weights(config: ml_collections.ConfigDict) -> tuple[np.ndarray, np.ndarray]:
  """Class frequencies over `class_weight_batches` training batches, and weights.

  Uses its own loader (seed + 1) so that the training iterator is untouched.
  """
  loader = input_pipeline.create_train_loader(config, seed=config.seed + 1)
  masks = [batch["mask"] for _, batch in zip(range(config.class_weight_batches), loader)]
  frequencies = losses.class_frequencies(masks)
  if np.any(frequencies == 0):
    logging.warning(
        "Class frequencies %s measured over %d batches leave a class without "
        "pixels; using equal class weights.",
        frequencies.tolist(),
        len(masks),
    )
    return frequencies, np.full(2, 0.5, np.float32)
  return frequencies, losses.inverse_frequency_weights(frequencies)


def _summarize_train_metrics(history: list[dict[str, Any]], first_step: int) -> dict[str, float]:
  """Averages over the finite steps; reports every skipped one by step."""
  history = jax.device_get(history)
  for offset, metrics in enumerate(history):
    if not metrics["is_finite"]:
      logging.warning(
          "Step %d: non-finite loss (%s) or gradient norm (%s); the update was skipped.",
          first_step + offset + 1,
          metrics["loss"],
          metrics["grad_norm"],
      )
  finite = [m for m in history if m["is_finite"]]
  summary = (
      {
          name: float(np.mean([m[name] for m in finite]))
          for name in ("loss", "pixel_accuracy", "grad_norm")
      }
      if finite
      else {}
  )
  summary["learning_rate"] = float(history[-1]["learning_rate"])
  summary["skipped_steps"] = float(len(history) - len(finite))
  return summary


class Start(enum.Enum):
  """How a run begins, chosen once from the config and the workdir (`choose_start`)."""

  RESUME = "resume"  # the workdir has checkpoints: continue from the newest readable one
  INIT_FROM = "init_from"  # a new run from `config.init_from`'s weights
  FRESH = "fresh"  # a new run from random weights
  EVALUATE_ONLY = "evaluate_only"  # no training steps: score the workdir's or init_from's weights


def choose_start(config: ml_collections.ConfigDict, run: layout.Run) -> Start:
  if config.num_train_steps == 0:
    return Start.EVALUATE_ONLY
  if run.steps():
    return Start.RESUME
  return Start.INIT_FROM if config.init_from else Start.FRESH


def create_checkpoint_manager(config: ml_collections.ConfigDict, run: layout.Run):
  checkpointing.set_aside_damaged_metrics(run.checkpoints_dir, run.quarantine_dir)
  return checkpointing.create_checkpoint_manager(
      run.checkpoints_dir,
      keep=config.keep_checkpoints,
      best_metric=config.best_metric,
      best_mode=config.best_mode,
      asynchronous=config.async_checkpointing,
  )


def _fresh_state(config, mesh, learning_rate_fn) -> TrainState:
  init_rng, dropout_rng = jax.random.split(jax.random.key(config.seed))
  variables = models.initial_variables(config.model, init_rng, image_size=config.dataset.image_size)
  state = create_train_state(config, variables, dropout_rng, np.zeros(2), learning_rate_fn)
  return jax.device_put(state, parallel.replicated(mesh))


def _with_weights_of(
    state: TrainState, source: str, model_config: ml_collections.ConfigDict, sharding
) -> TrainState:
  """`state` with the params and batch statistics of `source`: "pretrained:<name>", or a run's
  workdir, checkpoints folder or step folder (its latest step); they must be `model_config`'s."""
  like = {"params": state.params, "batch_stats": state.batch_stats}
  loaded = weights.load(source, model_config=model_config, like=like, sharding=sharding)
  return state.replace(**loaded.variables)


def _with_measured_class_weights(
    state: TrainState, config, run: layout.Run, sharding
) -> TrainState:
  frequencies, weights = measure_class_weights(config)
  logging.info(
      "Pixel class frequencies (pristine, manipulated) over %d training batches: %s "
      "-> class weights %s.",
      config.class_weight_batches,
      frequencies.tolist(),
      weights.tolist(),
  )
  layout.write_json(
      run.class_weights_path,
      {
          "frequencies": frequencies.tolist(),
          "weights": weights.tolist(),
          "num_batches": config.class_weight_batches,
      },
  )
  return state.replace(class_weights=jax.device_put(jnp.asarray(weights), sharding))


def starting_state(
    start: Start,
    config: ml_collections.ConfigDict,
    run: layout.Run,
    mesh,
    manager,
    train_iter,
    learning_rate_fn,
) -> TrainState:
  """The state the run begins from. RESUME restores `train_iter` too; when every checkpoint
  turns out unreadable the run starts over as INIT_FROM or FRESH."""
  state = _fresh_state(config, mesh, learning_rate_fn)
  sharding = parallel.replicated(mesh)
  if start is Start.RESUME:
    restored = checkpointing.restore_latest(
        manager,
        checkpointing.abstract_like(state, sharding),
        train_iter,
        quarantine_dir=run.quarantine_dir,
    )
    if restored is not None:
      reporting.announce(f"Resuming from step {int(restored.step)}.")
      return restored
    start = Start.INIT_FROM if config.init_from else Start.FRESH
  if start is Start.EVALUATE_ONLY:
    return _with_weights_of(state, config.init_from or str(run.workdir), config.model, sharding)
  if start is Start.INIT_FROM:
    state = _with_weights_of(state, config.init_from, config.model, sharding)
  return _with_measured_class_weights(state, config, run, sharding)


class TrainingEvaluation:
  """Scores a train state's model on a split and reports it: metrics.jsonl, TensorBoard, the
  console, the ROC curve and a sample grid."""

  def __init__(self, config: ml_collections.ConfigDict, mesh, writer: reporting.MetricWriter):
    self._config, self._writer = config, writer
    self._evaluator = evaluator.Evaluator(models.create_model(config.model), config, mesh=mesh)

  def __call__(
      self, state: TrainState, split: str, max_batches: int, output_dir
  ) -> dict[str, float]:
    step = int(state.step)
    variables = {"params": state.params, "batch_stats": state.batch_stats}
    try:
      accumulator, samples = self._evaluator.run(
          variables, self._evaluator.batches(split), max_batches
      )
    except evaluator.NonFinitePredictionsError as error:
      raise TrainingDivergedError(
          f"On the {split} split at step {step}, {error}. Likely cause: the learning rate "
          f"(config.learning_rate={self._config.learning_rate}) is far too high. This step is "
          "not saved; lower the learning rate and start a new run."
      ) from None
    results = accumulator.result()
    logging.info("%s at step %d: %s", split, step, reporting.format_metrics(results))
    reporting.announce(f"{split} at step {step}: {reporting.headline(results)}")
    self._writer.write_scalars(step, split, results)
    grid = evaluator.write_figures(
        output_dir,
        accumulator,
        samples,
        auc=results["pooled/pixel_auc"],
        title=f"{split}, step {step}",
        samples_name=layout.samples_file(step),
    )
    if grid is not None:
      self._writer.write_image(step, f"{split}/samples", grid)
    return results


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> TrainState:
  """Trains for `config.num_train_steps`, then evaluates the test split.

  Args:
    config: the run's configuration (see `configs/base.py`).
    workdir: the run's working directory (`runs.layout` lists what goes there). A
      run resumes from its checkpoints.

  Returns:
    The final train state.
  """
  config_checks.validate(config)
  run = layout.prepare(workdir)
  with layout.exclusive(run):
    return _train_and_evaluate(config, run)


def _train_and_evaluate(config: ml_collections.ConfigDict, run: layout.Run) -> TrainState:
  start = choose_start(config, run)
  if start is Start.RESUME:
    layout.check_same_structure(run, config)
  if start is Start.EVALUATE_ONLY and not shipped.name_of(config.init_from):
    try:
      layout.resolve(config.init_from or run.workdir)  # fail before any work
    except layout.CheckpointNotFoundError as error:
      raise layout.CheckpointNotFoundError(
          f"{error} (num_train_steps=0 evaluates an existing checkpoint: the workdir's, or "
          "config.init_from's)"
      ) from None
  mesh = parallel.create_mesh(config.num_devices)
  parallel.check_batch_size(config.batch_size, mesh, "batch size")
  parallel.check_batch_size(config.eval_batch_size, mesh, "eval batch size")
  logging.info(
      "Data-parallel over %d device(s): %s; start: %s",
      mesh.size,
      mesh.devices.ravel().tolist(),
      start.value,
  )
  layout.write_config(run, config)
  input_pipeline.ensure_dataset_built(config)

  train_iter = (
      None
      if start is Start.EVALUATE_ONLY
      else iter(input_pipeline.create_train_loader(config, seed=config.seed))
  )
  learning_rate_fn = optimizers.create_learning_rate_schedule(config)
  manager = create_checkpoint_manager(config, run)
  writer = reporting.MetricWriter(run)
  try:
    state = starting_state(start, config, run, mesh, manager, train_iter, learning_rate_fn)
    writer.keep_history_until(int(state.step))
    evaluate_split = TrainingEvaluation(config, mesh, writer)
    if train_iter is not None:
      state = _train(
          config,
          run,
          state,
          train_iter,
          train_step=make_parallel_train_step(config, mesh, learning_rate_fn),
          mesh=mesh,
          manager=manager,
          writer=writer,
          evaluate_split=evaluate_split,
      )
    results = evaluate_split(state, config.test_split, config.num_test_batches, run.workdir)
    step = int(state.step)
    layout.write_json(
        run.eval_path,
        evaluator.record(
            checkpoint=str(run.step_dir(step)),
            step=step,
            variant=config.model.variant,
            dataset=config.dataset.name,
            split=config.test_split,
            max_batches=config.num_test_batches,
            metrics=results,
        ),
    )
    return state
  finally:
    failing = sys.exc_info()[0] is not None  # then that error is the one to report
    writer.close()
    checkpointing.close(manager, failing=failing)


def _train(
    config: ml_collections.ConfigDict,
    run: layout.Run,
    state: TrainState,
    train_iter,
    *,
    train_step,
    mesh,
    manager,
    writer: reporting.MetricWriter,
    evaluate_split: TrainingEvaluation,
) -> TrainState:
  """The step loop: logs, evaluates, checkpoints; stops early on a signal."""
  start_step = int(state.step)
  history = []
  progress = reporting.Progress(
      total_steps=config.num_train_steps, start_step=start_step, batch_size=config.batch_size
  )
  logging.info(
      "Training steps %d..%d (the first one compiles).", start_step + 1, config.num_train_steps
  )
  with interrupts.StopRequest() as stop:
    skipped_in_a_row = 0
    for step in range(start_step + 1, config.num_train_steps + 1):
      batch = parallel.global_batch(next(train_iter), mesh)
      state, metrics = train_step(state, batch)
      history.append(metrics)
      skipped_in_a_row = 0 if metrics["is_finite"] else skipped_in_a_row + 1
      if skipped_in_a_row >= config.max_consecutive_skipped_steps:
        progress.close()
        _summarize_train_metrics(history, step - len(history))  # logs each one
        raise TrainingDivergedError(
            f"The last {skipped_in_a_row} steps (to step {step}) were all "
            "skipped: their loss, gradient or update was not finite. Likely "
            "cause: the learning rate (config.learning_rate="
            f"{config.learning_rate}) is too high, or the data holds broken "
            "images. No checkpoint holds non-finite values; fix the cause, "
            "then run again (it resumes from the last checkpoint)."
        )
      progress.update()
      is_last = step == config.num_train_steps

      if step % config.log_every_steps == 0 or is_last or stop:
        summary = _summarize_train_metrics(history, step - len(history))
        summary.update(progress.throughput())
        history = []
        logging.info(
            "train step %d/%d: %s, ETA %s",
            step,
            config.num_train_steps,
            reporting.format_metrics(summary),
            progress.eta(summary["steps_per_second"]),
        )
        writer.write_scalars(step, "train", summary)
        progress.show(summary.get("loss", float("nan")), summary)

      progress.pause()
      eval_metrics = None
      if step % config.eval_every_steps == 0 or is_last:
        eval_metrics = evaluate_split(
            state,
            config.validation_split,
            config.num_eval_batches,
            run.split_dir(config.validation_split),
        )
      if step % config.checkpoint_every_steps == 0 or is_last or stop or eval_metrics is not None:
        checkpointing.save(manager, step, state, train_iter, metrics=eval_metrics)
      progress.resume()
      if stop:
        progress.close()
        checkpointing.wait_until_finished(manager)
        raise interrupts.Stopped(stop.signal_name, step)
  progress.close()
  checkpointing.wait_until_finished(manager)
  return state
