"""Metrics against scikit-learn, edge cases, and the box AP on hand-drawn masks."""

import numpy as np
import pytest
from sklearn import metrics as skm

from lstm_endec_jax.evaluation import metrics

SIZE = 24


def _random_batch(seed: int, *, quantize: bool):
  """Blob masks (image 0 authentic, image 1 all positive) and noisy probabilities."""
  rng = np.random.default_rng(seed)
  masks = np.zeros((7, SIZE, SIZE), np.uint8)
  masks[1] = 1
  for mask in masks[2:]:
    top, left = rng.integers(0, SIZE - 8, 2)
    mask[top : top + rng.integers(3, 12), left : left + rng.integers(3, 12)] = 1
  probs = np.clip(0.35 * masks + 0.75 * rng.random(masks.shape), 0.0, 1.0)
  if quantize:  # Few distinct values: many ties, and every value sits on a histogram bin edge.
    probs = np.round(probs * 16) / 16
  return probs.astype(np.float32), masks


def _sklearn_best_f1(y, scores):
  precision, recall, _ = skm.precision_recall_curve(y, scores)
  with np.errstate(invalid="ignore"):
    return np.nanmax(2 * precision * recall / (precision + recall))


def _sklearn_per_image(probs, masks):
  """Per-image metrics averaged over manipulated images, the way the module documents them."""
  values = {name: [] for name in ("pixel_accuracy", "f1", "iou", "mcc", "best_f1", "pixel_auc")}
  for prob, mask in zip(probs, masks):
    y, s = mask.ravel(), prob.ravel()
    if not y.any():
      continue
    pred = s >= 0.5
    values["pixel_accuracy"].append(skm.accuracy_score(y, pred))
    values["f1"].append(skm.f1_score(y, pred))
    values["iou"].append(skm.jaccard_score(y, pred))
    values["mcc"].append(skm.matthews_corrcoef(y, pred))
    values["best_f1"].append(_sklearn_best_f1(y, s))
    if not y.all():
      values["pixel_auc"].append(skm.roc_auc_score(y, s))
  return {f"per_image/{name}": np.mean(v) for name, v in values.items()}


@pytest.mark.parametrize("quantize", [False, True])
def test_per_image_metrics_match_sklearn(quantize):
  probs, masks = _random_batch(0, quantize=quantize)
  result = metrics.compute_metrics(probs, masks)
  for name, expected in _sklearn_per_image(probs, masks).items():
    assert result[name] == pytest.approx(expected, rel=1e-9, abs=1e-12), name
  assert result["num_manipulated_images"] == 6
  assert result["per_image/num_auc_images"] == 5  # the all-positive image has no AUC


def test_pooled_metrics_match_sklearn_exactly_at_threshold():
  probs, masks = _random_batch(1, quantize=False)
  result = metrics.compute_metrics(probs, masks)
  y, pred = masks.ravel(), probs.ravel() >= 0.5
  assert result["pooled/pixel_accuracy"] == pytest.approx(skm.accuracy_score(y, pred), rel=1e-12)
  assert result["pooled/f1"] == pytest.approx(skm.f1_score(y, pred), rel=1e-12)
  assert result["pooled/iou"] == pytest.approx(skm.jaccard_score(y, pred), rel=1e-12)
  assert result["pooled/mcc"] == pytest.approx(skm.matthews_corrcoef(y, pred), rel=1e-12)


def test_pooled_histogram_auc_and_best_f1_within_binning_tolerance():
  # Continuous probabilities: the 4096-bin histogram ties pixels within a bin, so the AUC may be
  # off by at most half the share of positive/negative pairs in the same bin (~1/8192 here).
  probs, masks = _random_batch(2, quantize=False)
  result = metrics.compute_metrics(probs, masks, num_bins=4096)
  y, s = masks.ravel(), probs.ravel()
  assert abs(result["pooled/pixel_auc"] - skm.roc_auc_score(y, s)) < 2e-4
  exact_best_f1 = _sklearn_best_f1(y, s)
  assert exact_best_f1 - 2e-3 < result["pooled/best_f1"] <= exact_best_f1 + 1e-12


def test_pooled_histogram_metrics_exact_when_values_sit_on_bin_edges():
  probs, masks = _random_batch(3, quantize=True)
  result = metrics.compute_metrics(probs, masks, num_bins=1024)
  y, s = masks.ravel(), probs.ravel()
  assert result["pooled/pixel_auc"] == pytest.approx(skm.roc_auc_score(y, s), rel=1e-12)
  assert result["pooled/best_f1"] == pytest.approx(_sklearn_best_f1(y, s), rel=1e-12)


def test_roc_curve_contains_sklearn_points_and_integrates_to_auc():
  probs, masks = _random_batch(4, quantize=True)
  accumulator = metrics.MetricAccumulator(num_bins=256)
  accumulator.update(probs, masks)
  fpr, tpr, thresholds = accumulator.roc_curve()
  assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
  assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
  assert np.all(np.diff(thresholds) < 0)
  assert np.trapezoid(tpr, fpr) == pytest.approx(accumulator.result()["pooled/pixel_auc"])
  sk_fpr, sk_tpr, sk_thresholds = skm.roc_curve(masks.ravel(), probs.ravel())
  for f, t, threshold in zip(sk_fpr[1:], sk_tpr[1:], sk_thresholds[1:]):
    # Probability 1.0 falls in the top bin [255/256, 1], whose lower edge is its threshold.
    i = np.flatnonzero(thresholds == min(threshold, 255 / 256))[0]
    assert (fpr[i], tpr[i]) == pytest.approx((f, t))


def test_streaming_in_batches_equals_one_batch():
  probs, masks = _random_batch(5, quantize=False)
  labels = np.array([0, 1, 1, 1, 0, 1, 1])
  whole = metrics.compute_metrics(probs, masks, labels)
  accumulator = metrics.MetricAccumulator()
  for start in range(0, len(probs), 3):
    accumulator.update(
        probs[start : start + 3], masks[start : start + 3], labels[start : start + 3]
    )
  accumulator.update(probs[:0], masks[:0], labels[:0])  # an empty batch changes nothing
  streamed = accumulator.result()
  assert accumulator.num_images == len(probs)
  assert streamed.keys() == whole.keys()
  for name in whole:
    assert streamed[name] == pytest.approx(whole[name], nan_ok=True), name


def test_image_level_metrics_use_max_score_and_labels():
  probs, masks = _random_batch(6, quantize=False)
  probs[0] *= 0.4  # the authentic image scores low
  labels = np.array([0, 1, 1, 0, 1, 1, 1])  # a label may disagree with its mask
  result = metrics.compute_metrics(probs, masks, labels)
  scores = probs.reshape(len(probs), -1).max(-1)
  assert result["image/auc"] == pytest.approx(skm.roc_auc_score(labels, scores))
  assert result["image/accuracy"] == pytest.approx(skm.accuracy_score(labels, scores >= 0.5))
  default_labels = metrics.compute_metrics(probs, masks)
  assert default_labels["image/auc"] == pytest.approx(
      skm.roc_auc_score(masks.reshape(len(masks), -1).any(-1), scores)
  )


def test_all_negative_data_has_no_per_image_metrics_and_no_auc():
  probs = np.random.default_rng(7).random((3, 16, 16)).astype(np.float32)
  result = metrics.compute_metrics(probs, np.zeros_like(probs, np.uint8))
  assert result["num_manipulated_images"] == 0
  assert np.isnan(result["per_image/pixel_auc"]) and np.isnan(result["per_image/f1"])
  assert np.isnan(result["pooled/pixel_auc"]) and np.isnan(result["image/auc"])
  assert result["pooled/f1"] == 0.0  # false positives only
  assert result["pooled/pixel_accuracy"] == pytest.approx(np.mean(probs < 0.5))


def test_constant_prediction():
  masks = np.zeros((2, 16, 16), np.uint8)
  masks[:, 4:8, 4:12] = 1
  result = metrics.compute_metrics(np.full(masks.shape, 0.7, np.float32), masks)
  positive_share = masks.mean()
  assert result["per_image/pixel_auc"] == 0.5
  assert result["pooled/pixel_auc"] == pytest.approx(0.5)
  assert result["per_image/mcc"] == 0.0 == skm.matthews_corrcoef(masks.ravel(), np.ones(512))
  assert result["per_image/f1"] == pytest.approx(2 * positive_share / (1 + positive_share))
  assert result["per_image/best_f1"] == pytest.approx(result["per_image/f1"])
  assert result["per_image/pixel_accuracy"] == pytest.approx(positive_share)


def test_perfect_prediction():
  masks = np.zeros((2, 16, 16), np.uint8)
  masks[0, 2:12, 3:9] = 1
  masks[1, :, :5] = 1
  result = metrics.compute_metrics(masks.astype(np.float32), masks)
  for name in ("pixel_accuracy", "f1", "iou", "mcc", "best_f1", "pixel_auc"):
    assert result[f"per_image/{name}"] == 1.0, name
    assert result[f"pooled/{name}"] == pytest.approx(1.0), name


def test_rank_auc_handles_ties_like_sklearn():
  scores = np.array([0.1, 0.4, 0.4, 0.4, 0.8, 0.8, 0.2, 0.4])
  labels = np.array([0, 1, 0, 1, 1, 0, 0, 0], bool)
  assert metrics.rank_auc(scores, labels) == pytest.approx(skm.roc_auc_score(labels, scores))


def test_bad_input_is_rejected_with_a_clear_error():
  accumulator = metrics.MetricAccumulator()
  with pytest.raises(ValueError, match="same shape"):
    accumulator.update(np.zeros((1, 4, 4)), np.zeros((1, 4, 5)))
  with pytest.raises(ValueError, match=r"\[0, 1\]"):
    accumulator.update(np.full((1, 4, 4), 1.5), np.zeros((1, 4, 4)))
  with pytest.raises(ValueError, match="only 0 and 1"):
    accumulator.update(np.zeros((1, 4, 4)), np.full((1, 4, 4), 255))
  with pytest.raises(ValueError, match="No batch"):
    accumulator.result()


def test_mask_boxes_follow_outer_contours():
  mask = np.zeros((40, 40), bool)
  mask[2:14, 2:14] = True  # a ring with an island in its hole: one outer contour
  mask[5:11, 5:11] = False
  mask[7:9, 7:9] = True
  mask[20:26, 20:26] = True  # two squares touching at a corner: one 8-connected component
  mask[26:32, 26:32] = True
  mask[35:39, 2:6] = True  # 4x4 = 16 pixels < 64: dropped
  boxes = metrics.mask_boxes(mask, min_area=64)
  assert sorted(map(tuple, boxes)) == [(2, 2, 14, 14), (20, 20, 32, 32)]
  assert len(metrics.mask_boxes(mask, min_area=1)) == 3


def test_box_ap_on_hand_drawn_masks():
  masks = np.zeros((3, 64, 64), np.uint8)
  probs = np.zeros((3, 64, 64), np.float32)
  # Image 0: a true box found with score 0.9, plus a tiny false blob (area 9 < 64, dropped).
  masks[0, 10:30, 10:30] = 1
  probs[0, 11:30, 10:30] = 0.9
  probs[0, 50:53, 50:53] = 0.99
  # Image 1: the prediction misses the true box (IoU 100/700 < 0.5) with score 0.95, ranked first.
  masks[1, 0:20, 0:20] = 1
  probs[1, 10:30, 10:30] = 0.95
  # Image 2: authentic, a false box with score 0.6 ranked last.
  probs[2, 40:50, 40:50] = 0.6
  # Ranking: FP (0.95), TP (0.9), FP (0.6); 2 true boxes. Precision at the TP = 1/2, recall 1/2;
  # all-point AP = 1/2 * 1/2.
  result = metrics.compute_metrics(probs, masks)
  assert result["box/ap"] == pytest.approx(0.25)
  # Keeping the small true region of image 2 (36 pixels) adds an unmatched true box: 3 in all.
  masks[2, 0:6, 0:6] = 1
  assert metrics.compute_metrics(probs, masks)["box/ap"] == pytest.approx(0.25)
  kept = metrics.compute_metrics(probs, masks, min_truth_box_area=1)
  assert kept["box/ap"] == pytest.approx(1 / 3 * 1 / 2)
  assert metrics.average_precision(np.array([0.9, 0.5]), np.array([True, True]), 2) == 1.0
  assert np.isnan(metrics.average_precision(np.array([0.9]), np.array([False]), 0))


def test_box_matching_uses_each_true_box_once():
  mask = np.zeros((64, 64), np.uint8)
  mask[0:32, 0:32] = 1
  prob = np.zeros((64, 64), np.float32)
  prob[0:32, 0:30] = 0.8  # IoU 30/32
  scores, hits, num_truth = metrics.match_image_boxes(prob, mask)
  assert num_truth == 1 and list(hits) == [True] and scores[0] == pytest.approx(0.8)
  assert metrics.box_iou(np.array([[0, 0, 32, 32]]), np.array([[0, 0, 32, 30]]))[0, 0] == 30 / 32


def _border_band(mask: np.ndarray, width: int) -> np.ndarray:
  """Pixels within `width` (Chebyshev distance) of a pixel of the other class: a brute-force
  reference for the band the TruFor-style metrics leave out."""
  padded = np.pad(mask, width, mode="edge")
  band = np.zeros(mask.shape, bool)
  for dy in range(-width, width + 1):
    for dx in range(-width, width + 1):
      shifted = padded[
          width + dy : width + dy + mask.shape[0], width + dx : width + dx + mask.shape[1]
      ]
      band |= shifted != mask
  return band


@pytest.mark.parametrize("width", [0, 2])
def test_inverse_and_border_band_f1_match_sklearn(width):
  """TruFor's reading: the better of map and inverse, outside a band around the mask border."""
  probs, masks = _random_batch(1, quantize=True)
  probs[3] = 1.0 - probs[3]  # an inverted map: its inverse scores better
  result = metrics.compute_metrics(probs, masks, border_band=width)
  f1s, ious = [], []
  for prob, mask in zip(probs, masks):
    if not mask.any():
      continue
    kept = (
        ~_border_band(mask.astype(bool), width)
        if width and not mask.all()
        else np.ones_like(mask, bool)
    )
    y = mask[kept]
    f1s.append(max(skm.f1_score(y, prob[kept] >= 0.5), skm.f1_score(y, prob[kept] <= 0.5)))
    ious.append(
        max(skm.jaccard_score(y, prob[kept] >= 0.5), skm.jaccard_score(y, prob[kept] <= 0.5))
    )
  assert result["per_image/f1_or_inverse_border_band"] == pytest.approx(np.mean(f1s), rel=1e-12)
  assert result["per_image/iou_or_inverse_border_band"] == pytest.approx(np.mean(ious), rel=1e-12)
  if width == 0:  # without the band it can only beat the plain per-image F1
    assert result["per_image/f1_or_inverse_border_band"] > result["per_image/f1"]


def test_image_level_metrics_match_sklearn():
  rng = np.random.default_rng(2)
  probs = rng.random((12, SIZE, SIZE)).astype(np.float32) * 0.6
  labels = np.array([1, 0] * 6)
  probs[labels == 1, :2, :2] += 0.35  # manipulated images tend to score higher
  masks = np.zeros(probs.shape, np.uint8)
  result = metrics.compute_metrics(probs, masks, labels)
  scores = probs.reshape(12, -1).max(-1)
  assert result["image/auc"] == pytest.approx(skm.roc_auc_score(labels, scores), rel=1e-12)
  predicted = scores >= 0.5
  assert result["image/accuracy"] == pytest.approx(skm.accuracy_score(labels, predicted))
  assert result["image/balanced_accuracy"] == pytest.approx(
      skm.balanced_accuracy_score(labels, predicted)
  )
  assert result["image/f1"] == pytest.approx(skm.f1_score(labels, predicted))
