"""Adam with a configurable learning-rate schedule and gradient clipping."""

import ml_collections
import optax

SCHEDULES = ("constant", "cosine")


def create_learning_rate_schedule(config: ml_collections.ConfigDict) -> optax.Schedule:
  """`config.schedule` after an optional linear warm-up of `warmup_steps`."""
  warmup_steps = config.warmup_steps
  decay_steps = max(config.num_train_steps - warmup_steps, 1)
  if config.schedule == "constant":
    main = optax.constant_schedule(config.learning_rate)
  elif config.schedule == "cosine":
    main = optax.cosine_decay_schedule(config.learning_rate, decay_steps)
  else:
    raise ValueError(f"Unknown schedule {config.schedule!r}; expected one of {SCHEDULES}.")
  if warmup_steps <= 0:
    return main
  warmup = optax.linear_schedule(0.0, config.learning_rate, warmup_steps)
  return optax.join_schedules([warmup, main], boundaries=[warmup_steps])


def create_optimizer(
    config: ml_collections.ConfigDict, learning_rate_fn: optax.Schedule
) -> optax.GradientTransformation:
  """Adam (paper section 3.4), optionally after global-norm clipping."""
  adam = optax.adam(learning_rate_fn, b1=config.adam_b1, b2=config.adam_b2, eps=config.adam_eps)
  if config.grad_clip_norm > 0:
    return optax.chain(optax.clip_by_global_norm(config.grad_clip_norm), adam)
  return adam
