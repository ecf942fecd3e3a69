"""Pixel-, image- and box-level forgery-localization metrics, streamed batch by batch.

Evaluation runs on the host after every eval batch, so everything is vectorised numpy and the
state that outlives a batch is small: a few numbers per image, two fixed-bin histograms of the
pixel probabilities, and the scored boxes.

Conventions (docs/method.md section 6):

* A pixel is predicted manipulated when `prob >= threshold` (0.5 by default), the convention of
  `sklearn.metrics.roc_curve`.
* `per_image/*`: each metric is computed on each image and averaged over the *manipulated*
  images (ground truth with at least one positive pixel). Authentic images have no AUC and no
  F1/IoU (0/0) and are left out of every per-image average, accuracy and MCC included, so that
  all per-image numbers describe the same images. A manipulated image whose mask is all positive
  has no AUC (one class) and is also left out of the AUC average only
  (`per_image/num_auc_images` counts the images that have one). MCC of an image whose prediction
  or ground truth is constant is 0, as in `sklearn.metrics.matthews_corrcoef`.
* `pooled/*`: one confusion matrix / ROC curve over every pixel of every image, authentic images
  included. Accuracy, F1, IoU and MCC at the threshold are exact. AUC, best-threshold F1 and the
  ROC curve come from histograms with `num_bins` equal-width bins over [0, 1]: thresholds are the
  bin edges and pixels sharing a bin count as tied, so the AUC differs from the exact one by at
  most half the fraction of positive/negative pairs that share a bin (about 1e-4 for 4096 bins
  and spread-out probabilities), and best F1 is the best over the bin-edge thresholds.
* `per_image/f1_or_inverse_border_band`, `per_image/iou_or_inverse_border_band`: TruFor's
  reading (Guillaro et al., CVPR 2023): per manipulated image, the better of the map and its
  inverse (`prob <= threshold`), with the pixels within `border_band` pixels (default 3, a square
  neighbourhood) of the mask's boundary left out of the count; averaged over manipulated images.
* `image/*`: the image score is the maximum of its probability map; the label is the dataset
  label if given, else "the mask has a positive pixel". Accuracy, balanced accuracy and F1
  predict manipulated when the score is >= threshold.

docs/metrics.md names every key's definition, which projects use it, and which the README shows.
* `box/ap`: the paper's box AP (section 4.2.3): boxes around the outer contours of the
  thresholded prediction and of the ground truth, boxes of area < 64 dropped from both (a switch
  keeps small true boxes), predicted boxes scored by their mean probability and matched at
  IoU >= 0.5 (`match_image_boxes`), AP over all predicted boxes of the split
  (`average_precision`).

Undefined values (e.g. image AUC when every image has the same label) are NaN.
"""

from collections.abc import Sequence
import dataclasses

import numpy as np
import scipy.ndimage

# 8-connected foreground, as traced by OpenCV's contour following.
_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def _check_batch(probs: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Validates a batch and returns (float probs, bool masks) of shape (B, H, W)."""
  probs = np.asarray(probs)
  masks = np.asarray(masks)
  if probs.ndim != 3 or probs.shape != masks.shape:
    raise ValueError(
        f"Expected probabilities and masks of the same shape (B, H, W); got {probs.shape} and "
        f"{masks.shape}."
    )
  if not np.issubdtype(probs.dtype, np.floating):
    raise ValueError(f"Probabilities must be floating point, got {probs.dtype}.")
  if probs.size and not (probs.min() >= 0.0 and probs.max() <= 1.0):
    raise ValueError(
        "Probabilities must lie in [0, 1] (no NaN); got values in "
        f"[{probs.min()}, {probs.max()}]."
    )
  if masks.dtype != bool:
    if np.any((masks != 0) & (masks != 1)):
      raise ValueError(f"Masks must contain only 0 and 1; got values {np.unique(masks)[:10]}.")
    masks = masks.astype(bool)
  return probs, masks


def confusion_metrics(tp, fp, fn, tn) -> dict[str, np.ndarray]:
  """Accuracy, F1, IoU and MCC from confusion counts (scalars or arrays, broadcast).

  F1 and IoU are NaN where they are 0/0 (no positive pixel predicted or true); MCC is 0 where
  a marginal is empty, as in scikit-learn.
  """
  tp, fp, fn, tn = (np.asarray(x, dtype=np.float64) for x in (tp, fp, fn, tn))
  with np.errstate(divide="ignore", invalid="ignore"):
    mcc_denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return {
        "pixel_accuracy": (tp + tn) / (tp + fp + fn + tn),
        "f1": 2 * tp / (2 * tp + fp + fn),
        "iou": tp / (tp + fp + fn),
        "mcc": np.where(mcc_denominator > 0, (tp * tn - fp * fn) / mcc_denominator, 0.0),
    }


def _tie_groups(sorted_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """First and last index of the run of equal values each element of a sorted row belongs to."""
  n = sorted_scores.shape[-1]
  index = np.broadcast_to(np.arange(n), sorted_scores.shape)
  differs = sorted_scores[..., 1:] != sorted_scores[..., :-1]
  edge = np.ones(sorted_scores.shape[:-1] + (1,), dtype=bool)
  starts = np.concatenate([edge, differs], axis=-1)
  ends = np.concatenate([differs, edge], axis=-1)
  first = np.maximum.accumulate(np.where(starts, index, 0), axis=-1)
  last = np.minimum.accumulate(np.where(ends, index, n - 1)[..., ::-1], axis=-1)[..., ::-1]
  return first, last


def _rank_rows(scores: np.ndarray, labels: np.ndarray):
  """Sorts each row ascending; returns the sorted labels and each element's tie-group bounds.

  Sorting one integer key per element is faster than argsort (benchmarks/metrics_speed.py): the
  bit pattern of a non-negative float below 2 orders like the float and leaves the top bit free,
  so the label rides in the lowest bit.
  """
  if scores.dtype not in (np.float32, np.float64):
    scores = scores.astype(np.float32)
  key_dtype = np.uint32 if scores.dtype == np.float32 else np.uint64
  keys = ((scores + 0.0).view(key_dtype) << 1) | labels.astype(key_dtype)  # +0.0: no -0.0
  keys.sort(axis=-1)
  first, last = _tie_groups(keys >> 1)
  return (keys & 1).astype(bool), first, last


def _auc_from_ranks(sorted_labels: np.ndarray, first: np.ndarray, last: np.ndarray) -> np.ndarray:
  """Mann-Whitney U with mid-ranks for ties, normalised to [0, 1]; NaN for one class."""
  positives = sorted_labels.sum(-1, dtype=np.float64)
  negatives = sorted_labels.shape[-1] - positives
  positive_rank_sum = np.sum(((first + last) / 2.0 + 1.0) * sorted_labels, axis=-1)
  with np.errstate(divide="ignore", invalid="ignore"):
    auc = (positive_rank_sum - positives * (positives + 1) / 2) / (positives * negatives)
  return np.where((positives > 0) & (negatives > 0), auc, np.nan)


def _best_f1_from_ranks(sorted_labels: np.ndarray, first: np.ndarray) -> np.ndarray:
  """Best F1 over every distinct threshold (0 for a row without positives)."""
  n = sorted_labels.shape[-1]
  positives = sorted_labels.sum(-1, dtype=np.float64)[..., None]
  # Thresholding at the value of tie group g predicts positive every element from the group's
  # first index upwards; positives among them = all positives - positives strictly below.
  true_positives = positives - (np.cumsum(sorted_labels, axis=-1) - sorted_labels)
  f1 = 2 * true_positives / (positives + (n - np.arange(n)))
  return np.max(np.where(first == np.arange(n), f1, 0.0), axis=-1)


def rank_auc(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
  """Exact ROC AUC of each row of (..., N) scores against (..., N) boolean labels."""
  sorted_labels, first, last = _rank_rows(scores, labels)
  return _auc_from_ranks(sorted_labels, first, last)


def _histogram_roc(positive_hist: np.ndarray, negative_hist: np.ndarray):
  """ROC points (fpr, tpr) at the bin edges, from the highest threshold down to 0."""
  tp = np.concatenate([[0], np.cumsum(positive_hist[::-1])])
  fp = np.concatenate([[0], np.cumsum(negative_hist[::-1])])
  with np.errstate(divide="ignore", invalid="ignore"):
    return fp / fp[-1], tp / tp[-1], tp, fp


def mask_boxes(mask: np.ndarray, min_area: int = 64) -> np.ndarray:
  """Bounding boxes of the outer contours of a binary mask, as OpenCV would draw them.

  `cv2.findContours(RETR_EXTERNAL)` + `cv2.boundingRect` bound each 8-connected component and
  ignore anything inside its holes; labelling the hole-filled mask with 8-connectivity gives the
  same boxes without OpenCV.

  Args:
    mask: (H, W) boolean mask.
    min_area: boxes with `height * width < min_area` pixels are dropped (paper: 64).

  Returns:
    (n, 4) int array of half-open boxes (top, left, bottom, right).
  """
  filled = _fill_holes(mask)
  labelled, _ = scipy.ndimage.label(filled, structure=_EIGHT_CONNECTED)
  boxes = [
      (rows.start, cols.start, rows.stop, cols.stop)
      for rows, cols in scipy.ndimage.find_objects(labelled)
  ]
  boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
  return boxes[_box_area(boxes) >= min_area]


def _fill_holes(mask: np.ndarray) -> np.ndarray:
  """`scipy.ndimage.binary_fill_holes`, twice as fast: holes are the 4-connected background
  components that do not touch the border."""
  background, _ = scipy.ndimage.label(~mask)
  border = np.unique(
      np.concatenate([background[0], background[-1], background[:, 0], background[:, -1]])
  )
  return mask | ~np.isin(background, border)


def _box_area(boxes: np.ndarray) -> np.ndarray:
  return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
  """IoU matrix (len(a), len(b)) of half-open (top, left, bottom, right) boxes."""
  top = np.maximum(boxes_a[:, None, 0], boxes_b[None, :, 0])
  left = np.maximum(boxes_a[:, None, 1], boxes_b[None, :, 1])
  bottom = np.minimum(boxes_a[:, None, 2], boxes_b[None, :, 2])
  right = np.minimum(boxes_a[:, None, 3], boxes_b[None, :, 3])
  intersection = np.clip(bottom - top, 0, None) * np.clip(right - left, 0, None)
  union = _box_area(boxes_a)[:, None] + _box_area(boxes_b)[None, :] - intersection
  return intersection / np.maximum(union, 1)


def match_image_boxes(
    prob: np.ndarray,
    mask: np.ndarray,
    *,
    threshold: float = 0.5,
    min_area: int = 64,
    min_truth_area: int = 64,
    iou_threshold: float = 0.5,
):
  """Scores one image's predicted boxes and matches them to its ground-truth boxes.

  Predicted boxes come from `mask_boxes(prob >= threshold)`, ground-truth boxes from
  `mask_boxes(mask)`, without boxes of area < `min_area` (predicted) and < `min_truth_area`
  (ground truth). A box's score is the mean
  probability inside it. In order of decreasing score, each predicted box is matched to the
  not-yet-matched ground-truth box with the highest IoU; it is a true positive if that IoU is
  >= `iou_threshold`.

  Returns:
    (scores, is_true_positive, number of ground-truth boxes).
  """
  predicted = mask_boxes(prob >= threshold, min_area)
  truth = mask_boxes(mask, min_truth_area)
  scores = np.array([prob[t:b, l:r].mean() for t, l, b, r in predicted], dtype=np.float64)
  order = np.argsort(-scores, kind="stable")
  scores, predicted = scores[order], predicted[order]
  iou = box_iou(predicted, truth)
  unmatched = np.ones(len(truth), dtype=bool)
  is_true_positive = np.zeros(len(predicted), dtype=bool)
  for i in range(len(predicted)):
    candidates = np.where(unmatched, iou[i], -1.0)
    if len(truth) and candidates.max() >= iou_threshold:
      unmatched[np.argmax(candidates)] = False
      is_true_positive[i] = True
  return scores, is_true_positive, len(truth)


def average_precision(scores: np.ndarray, is_true_positive: np.ndarray, num_truth: int) -> float:
  """All-point interpolated AP (PASCAL VOC 2010+) of detections pooled over a dataset.

  Detections are ranked by decreasing score (stable for ties); AP is the area under the
  precision-recall curve after replacing each precision by the best precision at equal or
  higher recall. NaN when there is no ground-truth box.
  """
  if num_truth == 0:
    return float("nan")
  order = np.argsort(-np.asarray(scores), kind="stable")
  hits = np.asarray(is_true_positive, dtype=np.float64)[order]
  true_positives = np.cumsum(hits)
  precision = true_positives / np.arange(1, len(hits) + 1)
  recall = true_positives / num_truth
  envelope = np.maximum.accumulate(precision[::-1])[::-1]
  recall_step = np.diff(np.concatenate([[0.0], recall]))
  return float(np.sum(recall_step * envelope))


@dataclasses.dataclass
class _PerImage:
  """What the accumulator keeps of each batch (one entry per image)."""

  confusion: np.ndarray  # (B, 4) int64: tp, fp, fn, tn at the threshold.
  auc: np.ndarray
  best_f1: np.ndarray
  inverse_confusion: np.ndarray  # (B, 2, 4): map and inverse map, outside the border band
  manipulated: np.ndarray  # mask has a positive pixel
  score: np.ndarray  # max probability
  label: np.ndarray


class MetricAccumulator:
  """Streams evaluation batches and reports all metrics at the end.

  Usage:
    acc = MetricAccumulator()
    for batch in loader:
      acc.update(probs, batch["mask"], batch["label"])
    metrics = acc.result()          # dict[str, float]
    fpr, tpr, thresholds = acc.roc_curve()
  """

  def __init__(
      self,
      *,
      num_bins: int = 4096,
      threshold: float = 0.5,
      box_ap: bool = True,
      min_box_area: int = 64,
      min_truth_box_area: int = 64,
      box_iou_threshold: float = 0.5,
      border_band: int = 3,
  ):
    if num_bins < 2:
      raise ValueError(f"num_bins must be >= 2, got {num_bins}.")
    self.num_bins = num_bins
    self.threshold = threshold
    self.box_ap = box_ap
    self.min_box_area = min_box_area
    # The paper (4.2.3) drops its predicted boxes under 64 pixels to remove false positives and does
    # not say whether small true boxes were kept; docs/method.md section 6 drops "boxes smaller than
    # 64 pixels" without distinction. Both by default; min_truth_box_area=1 keeps every true region.
    self.min_truth_box_area = min_truth_box_area
    self.box_iou_threshold = box_iou_threshold
    self.border_band = border_band
    self._positive_hist = np.zeros(num_bins, dtype=np.int64)
    self._negative_hist = np.zeros(num_bins, dtype=np.int64)
    self._per_image: list[_PerImage] = []
    self._box_scores: list[np.ndarray] = []
    self._box_hits: list[np.ndarray] = []
    self._num_truth_boxes = 0

  @property
  def num_images(self) -> int:
    return sum(len(p.auc) for p in self._per_image)

  def update(self, probs: np.ndarray, masks: np.ndarray, labels: np.ndarray | None = None) -> None:
    """Adds a batch.

    Args:
      probs: (B, H, W) float probability that each pixel is manipulated.
      masks: (B, H, W) ground truth in {0, 1} (1 = manipulated).
      labels: optional (B,) image labels (nonzero = manipulated); default: mask has a positive.
    """
    probs, masks = _check_batch(probs, masks)
    batch = probs.shape[0]
    if batch == 0:
      return
    flat_probs = probs.reshape(batch, -1)
    flat_masks = masks.reshape(batch, -1)
    manipulated = flat_masks.any(-1)
    if labels is None:
      labels = manipulated
    labels = np.asarray(labels).reshape(-1).astype(bool)
    if labels.shape != (batch,):
      raise ValueError(f"Expected {batch} labels, got {labels.shape}.")

    predicted = flat_probs >= self.threshold
    tp = np.sum(predicted & flat_masks, -1)
    fp = np.sum(predicted, -1) - tp
    positives = np.sum(flat_masks, -1)
    fn = positives - tp
    tn = flat_masks.shape[-1] - tp - fp - fn
    sorted_masks, first, last = _rank_rows(flat_probs, flat_masks)
    auc = _auc_from_ranks(sorted_masks, first, last)
    best_f1 = _best_f1_from_ranks(sorted_masks, first)
    self._per_image.append(
        _PerImage(
            confusion=np.stack([tp, fp, fn, tn], -1).astype(np.int64),
            auc=auc,
            best_f1=best_f1,
            inverse_confusion=self._border_band_confusion(probs, masks),
            manipulated=manipulated,
            score=flat_probs.max(-1, initial=0.0),
            label=labels,
        )
    )

    bins = np.minimum((flat_probs * self.num_bins).astype(np.int64), self.num_bins - 1)
    counts = np.bincount((bins + self.num_bins * flat_masks).ravel(), minlength=2 * self.num_bins)
    self._negative_hist += counts[: self.num_bins]
    self._positive_hist += counts[self.num_bins :]

    if self.box_ap:
      for prob, mask in zip(probs, masks):
        scores, hits, num_truth = match_image_boxes(
            prob,
            mask,
            threshold=self.threshold,
            min_area=self.min_box_area,
            min_truth_area=self.min_truth_box_area,
            iou_threshold=self.box_iou_threshold,
        )
        self._box_scores.append(scores)
        self._box_hits.append(hits)
        self._num_truth_boxes += num_truth

  def _border_band_confusion(self, probs: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """(B, 2, 4) tp, fp, fn, tn of the map and of its inverse, outside each mask's border band."""
    counts = np.zeros((len(probs), 2, 4), np.int64)
    structure = np.ones((3, 3), bool)
    for index, (prob, mask) in enumerate(zip(probs, masks)):
      if self.border_band > 0 and mask.any() and not mask.all():
        grown = scipy.ndimage.binary_dilation(mask, structure, iterations=self.border_band)
        shrunk = scipy.ndimage.binary_erosion(
            mask, structure, iterations=self.border_band, border_value=1
        )
        kept = ~(grown & ~shrunk)
      else:
        kept = np.ones(mask.shape, bool)
      truth = mask[kept]
      for side, predicted in enumerate(
          (prob[kept] >= self.threshold, prob[kept] <= self.threshold)
      ):
        tp = np.count_nonzero(predicted & truth)
        fp = np.count_nonzero(predicted) - tp
        fn = np.count_nonzero(truth) - tp
        counts[index, side] = tp, fp, fn, truth.size - tp - fp - fn
    return counts

  def roc_curve(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pooled pixel ROC curve (fpr, tpr, thresholds), thresholds decreasing as in sklearn.

    Point i predicts positive when prob >= thresholds[i]; the first threshold is +inf.
    """
    fpr, tpr, _, _ = _histogram_roc(self._positive_hist, self._negative_hist)
    edges = np.arange(self.num_bins, -1, -1) / self.num_bins
    return fpr, tpr, np.concatenate([[np.inf], edges[1:]])

  def result(self) -> dict[str, float]:
    """All metrics as plain floats, keyed `per_image/...`, `pooled/...`, `image/...`, `box/...`."""
    if not self._per_image:
      raise ValueError("No batch was added to the MetricAccumulator.")
    per_image = _PerImage(
        *(
            np.concatenate([getattr(p, f.name) for p in self._per_image])
            for f in dataclasses.fields(_PerImage)
        )
    )
    metrics = {
        "num_images": len(per_image.auc),
        "num_manipulated_images": int(per_image.manipulated.sum()),
    }
    metrics.update(self._per_image_metrics(per_image))
    metrics.update(self._pooled_metrics(per_image.confusion.sum(0)))
    metrics.update(self._image_metrics(per_image.score, per_image.label))
    if self.box_ap:
      metrics["box/ap"] = average_precision(
          np.concatenate(self._box_scores), np.concatenate(self._box_hits), self._num_truth_boxes
      )
    return {name: float(value) for name, value in metrics.items()}

  def _per_image_metrics(self, per_image: _PerImage) -> dict[str, float]:
    keep = per_image.manipulated
    values = confusion_metrics(*per_image.confusion[keep].T)
    values["best_f1"] = per_image.best_f1[keep]
    values["pixel_auc"] = per_image.auc[keep]
    metrics = {f"per_image/{name}": _mean_or_nan(v) for name, v in values.items()}
    metrics["per_image/num_auc_images"] = np.sum(~np.isnan(values["pixel_auc"]))
    # The better of map and inverse map, per image, outside the border band (TruFor).
    both = confusion_metrics(*np.moveaxis(per_image.inverse_confusion[keep], -1, 0))
    for name in ("f1", "iou"):
      best = np.nanmax(np.nan_to_num(both[name], nan=-1.0), axis=-1)
      metrics[f"per_image/{name}_or_inverse_border_band"] = _mean_or_nan(
          np.where(best < 0, np.nan, best)
      )
    return metrics

  def _pooled_metrics(self, confusion: np.ndarray) -> dict[str, float]:
    metrics = {f"pooled/{name}": v for name, v in confusion_metrics(*confusion).items()}
    fpr, tpr, tp, fp = _histogram_roc(self._positive_hist, self._negative_hist)
    metrics["pooled/pixel_auc"] = np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
      f1 = 2 * tp / (tp[-1] + tp + fp)
    metrics["pooled/best_f1"] = np.nanmax(f1) if tp[-1] > 0 else np.nan
    return metrics

  def _image_metrics(self, scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    predicted = scores >= self.threshold
    tp, fp = np.sum(predicted & labels), np.sum(predicted & ~labels)
    fn, tn = np.sum(~predicted & labels), np.sum(~predicted & ~labels)
    with np.errstate(divide="ignore", invalid="ignore"):
      balanced = (tp / (tp + fn) + tn / (tn + fp)) / 2
    return {
        "image/auc": rank_auc(scores, labels),
        "image/accuracy": np.mean(predicted == labels),
        "image/balanced_accuracy": balanced,
        "image/f1": confusion_metrics(tp, fp, fn, tn)["f1"],
    }


def _mean_or_nan(values: Sequence[float]) -> float:
  values = np.asarray(values, dtype=np.float64)
  values = values[~np.isnan(values)]
  return float(values.mean()) if values.size else float("nan")


def compute_metrics(
    probs: np.ndarray, masks: np.ndarray, labels: np.ndarray | None = None, **kwargs
) -> dict[str, float]:
  """All metrics of one in-memory batch (a convenience wrapper over `MetricAccumulator`)."""
  accumulator = MetricAccumulator(**kwargs)
  accumulator.update(probs, masks, labels)
  return accumulator.result()
