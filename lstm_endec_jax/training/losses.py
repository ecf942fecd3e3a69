"""Pixel-wise training losses for two-class forgery localisation.

The paper (Bappy et al. 2019, section 3.4) trains with a softmax cross entropy
whose class weights are inversely proportional to the class frequencies of the
training set, normalised into [0, 1]. The authors' code (HLED) instead uses an
unweighted sigmoid binary cross entropy on the one-hot target. Both are offered
and selected by `config.loss` (docs/method.md section 4), as is ours: unweighted
cross entropy plus a soft Dice term, which balances the classes per image
instead of through weights that make the model over-predict.
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

LOSSES = ("weighted_softmax_ce", "softmax_ce", "sigmoid_bce", "softmax_ce_dice")
DICE_SMOOTHING = 1.0  # in pixels: an authentic image's Dice term is sum(p) / (sum(p) + 1)


def class_frequencies(masks: Sequence[np.ndarray]) -> np.ndarray:
  """Fraction of pristine (0) and manipulated (1) pixels over `masks`."""
  counts = np.zeros(2, np.int64)
  for mask in masks:
    positives = int(np.count_nonzero(mask))
    counts += (mask.size - positives, positives)
  total = counts.sum()
  if total == 0:
    raise ValueError("No pixels to count class frequencies from.")
  return counts / total


def inverse_frequency_weights(frequencies: np.ndarray) -> np.ndarray:
  """Class weights proportional to 1 / frequency, normalised to sum to one.

  Summing to one keeps every weight in [0, 1] as the paper asks; for two
  classes it gives w_c = 1 - f_c. A class absent from the measured pixels
  would get an infinite weight, so the caller must handle that case.
  """
  frequencies = np.asarray(frequencies, np.float64)
  if np.any(frequencies <= 0):
    raise ValueError(f"Every class needs a non-zero frequency, got {frequencies.tolist()}.")
  inverse = 1.0 / frequencies
  return (inverse / inverse.sum()).astype(np.float32)


def weighted_softmax_cross_entropy(
    logits: jax.Array, masks: jax.Array, class_weights: jax.Array
) -> jax.Array:
  """Mean over pixels of w[y] * CE(softmax(logits), y) (paper eq. 4)."""
  labels = masks.astype(jnp.int32)
  losses = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels)
  return jnp.mean(losses * class_weights[labels])


def sigmoid_binary_cross_entropy(logits: jax.Array, masks: jax.Array) -> jax.Array:
  """HLED's loss: mean sigmoid BCE of both logit channels on one-hot targets."""
  targets = jax.nn.one_hot(masks.astype(jnp.int32), logits.shape[-1])
  return jnp.mean(optax.sigmoid_binary_cross_entropy(logits.astype(jnp.float32), targets))


def soft_dice_loss(logits: jax.Array, masks: jax.Array) -> jax.Array:
  """Mean over images of 1 - (2 sum(p y) + s) / (sum(p) + sum(y) + s), p = P(manipulated)."""
  probabilities = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)[..., 1]
  targets = masks.astype(jnp.float32)
  axes = tuple(range(1, targets.ndim))
  overlap = jnp.sum(probabilities * targets, axis=axes)
  total = jnp.sum(probabilities, axis=axes) + jnp.sum(targets, axis=axes)
  return jnp.mean(1.0 - (2.0 * overlap + DICE_SMOOTHING) / (total + DICE_SMOOTHING))


def compute_loss(
    name: str, logits: jax.Array, masks: jax.Array, class_weights: jax.Array
) -> jax.Array:
  """The loss `name` (one of `LOSSES`) of logits (B, H, W, 2), masks (B, H, W)."""
  if name == "weighted_softmax_ce":
    return weighted_softmax_cross_entropy(logits, masks, class_weights)
  if name == "softmax_ce":
    return weighted_softmax_cross_entropy(logits, masks, jnp.ones(2))
  if name == "sigmoid_bce":
    return sigmoid_binary_cross_entropy(logits, masks)
  if name == "softmax_ce_dice":
    unweighted = weighted_softmax_cross_entropy(logits, masks, jnp.ones(2))
    return unweighted + soft_dice_loss(logits, masks)
  raise ValueError(f"Unknown loss {name!r}; expected one of {LOSSES}.")
