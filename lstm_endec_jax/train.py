"""Training and evaluation loop for LSTM-EnDec and its baselines.

`train_and_evaluate(config, workdir)` trains data-parallel over all devices
(a `shard_map`-ped step over the `data` mesh axis), evaluates on the
validation split, checkpoints with Orbax (resuming after a kill, bit for bit
on CPU) and finally evaluates the test split into `eval.json`.
"""

import functools
import json
import pathlib
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

from lstm_endec_jax import checkpointing
from lstm_endec_jax import config_checks
from lstm_endec_jax import input_pipeline
from lstm_endec_jax import interrupts
from lstm_endec_jax import losses
from lstm_endec_jax import metrics as metrics_lib
from lstm_endec_jax import models
from lstm_endec_jax import optimizers
from lstm_endec_jax import parallel
from lstm_endec_jax import pretrained
from lstm_endec_jax import reporting
from lstm_endec_jax import visualize

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


def initial_variables(config: ml_collections.ConfigDict,
                      rng: jax.Array) -> dict[str, Any]:
  """Params and batch statistics of a fresh model (on the host's first device)."""
  model = models.create_model(config.model)
  size = config.dataset.image_size
  images = jnp.zeros((1, size, size, 3), jnp.uint8)
  return jax.jit(functools.partial(model.init, train=False))(rng, images)


def create_train_state(config: ml_collections.ConfigDict,
                       variables: dict[str, Any], rng: jax.Array,
                       class_weights: np.ndarray,
                       learning_rate_fn: optax.Schedule) -> TrainState:
  model = models.create_model(config.model, axis_name=DATA_AXIS)
  return TrainState.create(
      apply_fn=model.apply, params=variables["params"],
      batch_stats=variables["batch_stats"],
      tx=optimizers.create_optimizer(config, learning_rate_fn),
      rng=jax.random.key_data(rng),
      class_weights=jnp.asarray(class_weights, jnp.float32))


class TrainingDivergedError(RuntimeError):
  """Training cannot go on: steps keep being skipped as non-finite, or the
  model's predictions are no longer finite."""


class NonFinitePredictionsError(ValueError):
  """A model gave NaN or infinite probabilities."""


def all_finite(tree: Any) -> jax.Array:
  """True when every floating-point value in `tree` is finite."""
  leaves = [jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)
            if jnp.issubdtype(jnp.asarray(leaf).dtype, jnp.inexact)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def train_step(state: TrainState, batch: dict[str, jax.Array], *,
               loss_name: str, learning_rate_fn: optax.Schedule
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
      jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step),
      lax.axis_index(DATA_AXIS))

  def loss_fn(params):
    logits, updates = state.apply_fn(
        {"params": params, "batch_stats": state.batch_stats}, batch["image"],
        train=True, rngs={"dropout": dropout_rng}, mutable=["batch_stats"])
    loss = losses.compute_loss(loss_name, logits, batch["mask"],
                               state.class_weights)
    return loss, (logits, updates["batch_stats"])

  (loss, (logits, batch_stats)), grads = jax.value_and_grad(
      loss_fn, has_aux=True)(state.params)
  grads = lax.pmean(grads, DATA_AXIS)
  loss = lax.pmean(loss, DATA_AXIS)
  grad_norm = optax.global_norm(grads)
  updated = state.apply_gradients(grads=grads, batch_stats=batch_stats)
  is_finite = (jnp.isfinite(loss) & jnp.isfinite(grad_norm)
               & all_finite((updated.params, updated.opt_state,
                             updated.batch_stats)))
  skipped = state.replace(step=state.step + 1)
  new_state = jax.tree.map(
      lambda new, old: jnp.where(is_finite, new, old), updated, skipped)
  accuracy = jnp.mean(jnp.argmax(logits, -1) == batch["mask"])
  metrics = {
      "loss": loss,
      "pixel_accuracy": lax.pmean(accuracy, DATA_AXIS),
      "grad_norm": grad_norm,
      "learning_rate": learning_rate_fn(state.step),
      "is_finite": is_finite,
  }
  return new_state, metrics


def eval_step(state: TrainState, images: jax.Array) -> jax.Array:
  """P(manipulated) per pixel, (b, H, W), with BatchNorm running averages."""
  logits = state.apply_fn(
      {"params": state.params, "batch_stats": state.batch_stats}, images,
      train=False)
  return jax.nn.softmax(logits, axis=-1)[..., 1]


def make_parallel_train_step(config: ml_collections.ConfigDict, mesh,
                             learning_rate_fn: optax.Schedule):
  """`train_step` over the mesh: replicated state, batch split on `data`."""
  step = functools.partial(train_step, loss_name=config.loss,
                           learning_rate_fn=learning_rate_fn)
  # check_vma=False: flax's nn.RNN starts the LSTM scan from a device-invariant
  # zero carry, which the varying-axis checker rejects. Every output here is
  # pmean-ed explicitly, and tests check that 1 and 2 devices take the same
  # step, so the check is not needed for correctness.
  sharded = jax.shard_map(step, mesh=mesh, in_specs=(P(), P(DATA_AXIS)),
                          out_specs=(P(), P()), check_vma=False)
  return jax.jit(sharded, donate_argnums=0)


def make_parallel_eval_step(mesh):
  sharded = jax.shard_map(eval_step, mesh=mesh,
                          in_specs=(P(), P(DATA_AXIS)), out_specs=P(DATA_AXIS),
                          check_vma=False)
  return jax.jit(sharded)


def measure_class_weights(config: ml_collections.ConfigDict
                          ) -> tuple[np.ndarray, np.ndarray]:
  """Class frequencies over `class_weight_batches` training batches, and weights.

  Uses its own loader (seed + 1) so that the training iterator is untouched.
  """
  loader = input_pipeline.create_train_loader(config, seed=config.seed + 1)
  masks = [batch["mask"] for _, batch in
           zip(range(config.class_weight_batches), loader)]
  frequencies = losses.class_frequencies(masks)
  if np.any(frequencies == 0):
    logging.warning(
        "Class frequencies %s measured over %d batches leave a class without "
        "pixels; using equal class weights.", frequencies.tolist(),
        len(masks))
    return frequencies, np.full(2, 0.5, np.float32)
  return frequencies, losses.inverse_frequency_weights(frequencies)


def _padded(batch: dict[str, np.ndarray], size: int) -> dict[str, np.ndarray]:
  """Pads a short final batch to `size` rows; `valid` marks the real ones."""
  count = len(batch["image"])
  padding = size - count
  padded = {name: np.concatenate(
      [batch[name], np.zeros((padding,) + batch[name].shape[1:],
                             batch[name].dtype)])
            for name in ("image", "mask", "label")}
  padded["valid"] = np.arange(size) < count
  return padded


def evaluate(p_eval_step, state: TrainState, loader, mesh, *,
             local_batch_size: int, max_batches: int, num_samples: int
             ) -> tuple[metrics_lib.MetricAccumulator, dict[str, np.ndarray]]:
  """Streams a split through the model into a metric accumulator.

  Also returns the first `num_samples` images, masks and heat maps for the
  PNG grid. Every process sees the global batch, so all compute the same
  metrics; with several processes, each one's loader must yield the same
  number of batches (short ones are padded to `local_batch_size`).
  """
  accumulator = metrics_lib.MetricAccumulator()
  samples = {"image": [], "mask": [], "probs": []}
  for index, batch in enumerate(loader):
    if 0 <= max_batches <= index:
      break
    padded = parallel.global_batch(_padded(batch, local_batch_size), mesh)
    probs = p_eval_step(state, padded["image"])
    fetched = {"probs": probs, "mask": padded["mask"],
               "label": padded["label"], "valid": padded["valid"]}
    wants_samples = len(samples["image"]) < num_samples
    if wants_samples:
      fetched["image"] = padded["image"]
    host = parallel.to_host(fetched)
    valid = host["valid"]
    if not np.isfinite(host["probs"][valid]).all():
      raise NonFinitePredictionsError(
          "the model's predictions are not finite: its weights or batch "
          "statistics have diverged")
    accumulator.update(host["probs"][valid], host["mask"][valid],
                       host["label"][valid])
    if wants_samples:
      for name in samples:
        samples[name].extend(host[name][valid][:num_samples])
  if accumulator.num_images == 0:
    raise ValueError("The evaluation split yielded no images.")
  samples = {name: np.stack(values[:num_samples])
             for name, values in samples.items() if values}
  return accumulator, samples


def _report_evaluation(step: int, split: str, accumulator, samples,
                       writer: reporting.MetricWriter,
                       output_dir: pathlib.Path) -> dict[str, float]:
  """Logs and writes a split's metrics, roc.png and the sample grid."""
  results = accumulator.result()
  logging.info("%s at step %d: %s", split, step,
               reporting.format_metrics(results))
  reporting.announce(f"{split} at step {step}: {reporting.headline(results)}")
  writer.write_scalars(step, split, results)
  if jax.process_index() == 0:
    output_dir.mkdir(parents=True, exist_ok=True)
    fpr, tpr, _ = accumulator.roc_curve()
    visualize.write_roc_png(output_dir / "roc.png", fpr, tpr,
                            auc=results["pooled/pixel_auc"],
                            title=f"{split}, step {step}")
    if samples:
      grid = visualize.write_sample_grid(
          output_dir / f"samples_step_{step:07d}.png", samples["image"],
          samples["mask"], samples["probs"], max_images=len(samples["image"]))
      writer.write_image(step, f"{split}/samples", grid)
  return results


def _summarize_train_metrics(history: list[dict[str, Any]], first_step: int
                             ) -> dict[str, float]:
  """Averages over the finite steps; reports every skipped one by step."""
  history = jax.device_get(history)
  for offset, metrics in enumerate(history):
    if not metrics["is_finite"]:
      logging.warning(
          "Step %d: non-finite loss (%s) or gradient norm (%s); the update "
          "was skipped.", first_step + offset + 1, metrics["loss"],
          metrics["grad_norm"])
  finite = [m for m in history if m["is_finite"]]
  summary = {name: float(np.mean([m[name] for m in finite]))
             for name in ("loss", "pixel_accuracy", "grad_norm")} if finite else {}
  summary["learning_rate"] = float(history[-1]["learning_rate"])
  summary["skipped_steps"] = float(len(history) - len(finite))
  return summary


def _restore_or_initialize(config, workdir, mesh, train_iter, learning_rate_fn
                           ) -> tuple[TrainState, Any]:
  """Resumes from the workdir, else starts fresh (optionally from init_from)."""
  rng = jax.random.key(config.seed)
  init_rng, dropout_rng = jax.random.split(rng)
  variables = initial_variables(config, init_rng)
  state = create_train_state(config, variables, dropout_rng, np.zeros(2),
                             learning_rate_fn)
  sharding = parallel.replicated(mesh)
  state = jax.device_put(state, sharding)
  manager = checkpointing.create_checkpoint_manager(workdir, config)
  if train_iter is not None:
    restored = checkpointing.restore_latest(
        manager, checkpointing.abstract_like(state, sharding), train_iter)
    if restored is not None:
      reporting.announce(f"Resuming from step {int(restored.step)}.")
      return restored, manager
  source = config.init_from or (None if train_iter is not None else workdir)
  like = {"params": state.params, "batch_stats": state.batch_stats}
  if source and pretrained.name_of(source):
    state = state.replace(**pretrained.variables_like(
        pretrained.name_of(source), like, sharding))
  elif source:
    state = state.replace(**checkpointing.load_variables(source, like, sharding))
  if train_iter is not None:
    frequencies, weights = measure_class_weights(config)
    logging.info("Pixel class frequencies (pristine, manipulated) over %d "
                 "training batches: %s -> class weights %s.",
                 config.class_weight_batches, frequencies.tolist(),
                 weights.tolist())
    reporting.write_json(pathlib.Path(workdir) / "class_weights.json",
                {"frequencies": frequencies.tolist(),
                 "weights": weights.tolist(),
                 "num_batches": config.class_weight_batches})
    state = state.replace(
        class_weights=jax.device_put(jnp.asarray(weights), sharding))
  return state, manager


def train_and_evaluate(config: ml_collections.ConfigDict,
                       workdir: str) -> TrainState:
  """Trains for `config.num_train_steps`, then evaluates the test split.

  Args:
    config: the run's configuration (see `configs/base.py`).
    workdir: checkpoints, metrics.jsonl, TensorBoard events, roc.png, sample
      grids and eval.json go here. A run resumes from its checkpoints.

  Returns:
    The final train state.
  """
  config_checks.validate(config)
  workdir = reporting.prepare_workdir(workdir)
  if config.num_train_steps == 0 and not pretrained.name_of(config.init_from):
    checkpointing.resolve_step_dir(config.init_from or workdir)  # fail before any work
  mesh = parallel.create_mesh(config.num_devices)
  parallel.check_batch_size(config.batch_size, mesh, "batch size")
  parallel.check_batch_size(config.eval_batch_size, mesh, "eval batch size")
  logging.info("Data-parallel over %d device(s): %s", mesh.size,
               mesh.devices.ravel().tolist())
  reporting.write_json(workdir / "config.json", json.loads(config.to_json_best_effort()))
  input_pipeline.ensure_dataset_built(config)

  training = config.num_train_steps > 0
  train_iter = (iter(input_pipeline.create_train_loader(config, seed=config.seed))
                if training else None)
  learning_rate_fn = optimizers.create_learning_rate_schedule(config)
  state, manager = _restore_or_initialize(config, workdir, mesh, train_iter,
                                          learning_rate_fn)
  writer = reporting.MetricWriter(workdir)
  writer.keep_history_until(int(state.step))
  p_eval_step = make_parallel_eval_step(mesh)
  local_eval_batch = config.eval_batch_size // jax.process_count()

  def run_evaluation(state, split, max_batches, output_dir):
    loader = input_pipeline.create_eval_loader(config, split,
                                               batch_size=local_eval_batch)
    try:
      accumulator, samples = evaluate(
          p_eval_step, state, loader, mesh, local_batch_size=local_eval_batch,
          max_batches=max_batches, num_samples=config.num_sample_images)
    except NonFinitePredictionsError as error:
      raise TrainingDivergedError(
          f"On the {split} split at step {int(state.step)}, {error}. Likely "
          "cause: the learning rate (config.learning_rate="
          f"{config.learning_rate}) is far too high. This step is not saved; "
          "lower the learning rate and start a new run.") from None
    return _report_evaluation(int(state.step), split, accumulator, samples,
                              writer, output_dir)

  try:
    if training:
      state = _train(config, state, train_iter, mesh, manager, writer,
                     learning_rate_fn, run_evaluation)
    results = run_evaluation(state, config.test_split,
                             config.num_test_batches, workdir)
    step = int(state.step)
    reporting.write_json(workdir / "eval.json", reporting.evaluation_record(
        checkpoint=str(pathlib.Path(manager.directory) / str(step)), step=step,
        variant=config.model.variant, dataset=config.dataset.name,
        split=config.test_split, max_batches=config.num_test_batches,
        metrics=results))
    return state
  finally:
    writer.close()
    manager.close()


def _train(config, state, train_iter, mesh, manager, writer, learning_rate_fn,
           run_evaluation) -> TrainState:
  """The step loop: logs, evaluates, checkpoints; stops early on a signal."""
  p_train_step = make_parallel_train_step(config, mesh, learning_rate_fn)
  start_step = int(state.step)
  history = []
  progress = reporting.Progress(total_steps=config.num_train_steps,
                                start_step=start_step,
                                batch_size=config.batch_size)
  logging.info("Training steps %d..%d (the first one compiles).",
               start_step + 1, config.num_train_steps)
  with interrupts.StopRequest() as stop:
    skipped_in_a_row = 0
    for step in range(start_step + 1, config.num_train_steps + 1):
      batch = parallel.global_batch(next(train_iter), mesh)
      state, metrics = p_train_step(state, batch)
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
            "then run again (it resumes from the last checkpoint).")
      progress.update()
      is_last = step == config.num_train_steps

      if step % config.log_every_steps == 0 or is_last or stop:
        summary = _summarize_train_metrics(history, step - len(history))
        summary.update(progress.throughput())
        history = []
        logging.info("train step %d/%d: %s, ETA %s", step,
                     config.num_train_steps, reporting.format_metrics(summary),
                     progress.eta(summary["steps_per_second"]))
        writer.write_scalars(step, "train", summary)
        progress.show(summary.get("loss", float("nan")), summary)

      progress.pause()
      eval_metrics = None
      if step % config.eval_every_steps == 0 or is_last:
        eval_metrics = run_evaluation(
            state, config.validation_split, config.num_eval_batches,
            pathlib.Path(manager.directory).parent / config.validation_split)
      if (step % config.checkpoint_every_steps == 0 or is_last or stop
          or eval_metrics is not None):
        checkpointing.save(manager, step, state, train_iter,
                           metrics=eval_metrics)
      progress.resume()
      if stop:
        progress.close()
        checkpointing.wait_until_finished(manager)
        raise interrupts.Stopped(stop.signal_name, step)
  progress.close()
  checkpointing.wait_until_finished(manager)
  return state
