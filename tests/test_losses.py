"""Loss functions and class weights, checked against direct numpy formulas."""

import numpy as np
import pytest

from lstm_endec_jax.training import losses


def _softmax(logits):
  exp = np.exp(logits - logits.max(-1, keepdims=True))
  return exp / exp.sum(-1, keepdims=True)


def _random_batch(seed=0, shape=(2, 8, 8)):
  rng = np.random.default_rng(seed)
  logits = rng.normal(size=shape + (2,)).astype(np.float32) * 3
  masks = (rng.random(shape) < 0.3).astype(np.uint8)
  return logits, masks


def test_class_frequencies_count_pixels_over_all_masks():
  masks = [
      np.array([[1, 0], [0, 0]], np.uint8),
      np.zeros((2, 2), np.uint8),
      np.ones((1, 4), np.uint8),
  ]
  np.testing.assert_allclose(losses.class_frequencies(masks), [7 / 12, 5 / 12])


def test_weights_are_inverse_frequency_normalised_into_unit_interval():
  frequencies = np.array([0.9, 0.1])
  weights = losses.inverse_frequency_weights(frequencies)
  assert np.all((weights >= 0) & (weights <= 1))
  np.testing.assert_allclose(weights.sum(), 1.0, rtol=1e-6)
  # Inversely proportional: w0 / w1 = f1 / f0; the rare class weighs more.
  np.testing.assert_allclose(weights[0] / weights[1], 0.1 / 0.9, rtol=1e-6)
  np.testing.assert_allclose(weights, [0.1, 0.9], rtol=1e-6)


def test_weights_reject_a_missing_class():
  with pytest.raises(ValueError, match="non-zero frequency"):
    losses.inverse_frequency_weights(np.array([1.0, 0.0]))


def test_weighted_softmax_cross_entropy_matches_formula():
  logits, masks = _random_batch()
  weights = np.array([0.2, 0.8], np.float32)
  probs = _softmax(logits.astype(np.float64))
  picked = np.take_along_axis(probs, masks[..., None].astype(int), -1)[..., 0]
  expected = np.mean(-np.log(picked) * weights[masks])
  got = losses.compute_loss("weighted_softmax_ce", logits, masks, weights)
  np.testing.assert_allclose(got, expected, rtol=1e-5)
  unweighted = losses.compute_loss("softmax_ce", logits, masks, weights)
  np.testing.assert_allclose(unweighted, np.mean(-np.log(picked)), rtol=1e-5)


def test_sigmoid_bce_on_one_hot_matches_formula():
  logits, masks = _random_batch(seed=1)
  targets = np.eye(2)[masks]
  sigmoid = 1 / (1 + np.exp(-logits.astype(np.float64)))
  expected = np.mean(-(targets * np.log(sigmoid) + (1 - targets) * np.log(1 - sigmoid)))
  got = losses.compute_loss("sigmoid_bce", logits, masks, np.ones(2))
  np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_unknown_loss_is_rejected():
  logits, masks = _random_batch()
  with pytest.raises(ValueError, match="Unknown loss"):
    losses.compute_loss("dice", logits, masks, np.ones(2))


def test_cross_entropy_plus_dice_matches_formula():
  logits, masks = _random_batch(seed=2)
  masks[1] = 0  # an authentic image: its Dice term is sum(p) / (sum(p) + 1)
  p = _softmax(logits.astype(np.float64))[..., 1]
  picked = np.where(masks == 1, p, 1 - p)
  cross_entropy = np.mean(-np.log(picked))
  dice = [
      1 - (2 * (p[i] * masks[i]).sum() + 1) / (p[i].sum() + masks[i].sum() + 1)
      for i in range(len(masks))
  ]
  got = losses.compute_loss("softmax_ce_dice", logits, masks, np.ones(2))
  np.testing.assert_allclose(got, cross_entropy + np.mean(dice), rtol=1e-5)
  assert dice[1] == pytest.approx(p[1].sum() / (p[1].sum() + 1))
