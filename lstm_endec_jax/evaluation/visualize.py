"""Pictures of results: heat maps, overlays, ROC curves, sample grids and robustness plots.

Figures are drawn with matplotlib's object API on an Agg canvas (no pyplot, no display, no global
backend switch), rendered to uint8 RGB arrays and written as PNG by `image_io.write_png`, so the
arrays returned (e.g. for TensorBoard) are exactly the pictures on disk.
"""

from collections.abc import Mapping, Sequence
import functools
import os

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
import numpy as np

from lstm_endec_jax.data import distortions
from lstm_endec_jax.data import image_io

# The paper's heat maps (Figs. 6, 7) run from blue (authentic) to red (manipulated).
DEFAULT_COLORMAP = "jet"
COLORMAP_ENTRIES = 256
OVERLAY_ROWS = 512


def colorize_heatmap(probabilities: np.ndarray, *, cmap: str = DEFAULT_COLORMAP) -> np.ndarray:
  """(H, W) P(manipulated) -> (H, W, 3) uint8 RGB, on the fixed range [0, 1] (values clipped)."""
  probabilities = np.asarray(probabilities, dtype=np.float32)
  if probabilities.ndim != 2:
    raise ValueError(f"Expected an (H, W) probability map, got shape {probabilities.shape}.")
  if np.isnan(probabilities).any():
    raise ValueError("The probability map contains NaN.")
  return _colormap_table(cmap)[_colormap_index(probabilities)]


@functools.lru_cache(maxsize=8)
def _colormap_table(cmap: str) -> np.ndarray:
  """The colour map's 256 RGB entries, uint8 (what matplotlib looks floats up in)."""
  colormap = matplotlib.colormaps[cmap].resampled(COLORMAP_ENTRIES)
  return colormap(np.arange(COLORMAP_ENTRIES), bytes=True)[:, :3]


def _colormap_index(probabilities: np.ndarray) -> np.ndarray:
  """Matplotlib's float -> entry rule, floor(p * N) with 1.0 in the last entry, as uint8, so a
  large map is coloured in uint8 (1 byte a pixel) instead of float64 RGBA (32 bytes)."""
  index = np.clip(probabilities, 0.0, 1.0)  # one float32 copy, then in place
  index *= COLORMAP_ENTRIES
  np.minimum(index, COLORMAP_ENTRIES - 1, out=index)
  return index.astype(np.uint8)


def _as_rgb(image: np.ndarray) -> np.ndarray:
  """uint8 (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) -> (H, W, 3); alpha is dropped."""
  image = np.asarray(image)
  if image.dtype != np.uint8:
    raise ValueError(f"Expected a uint8 image, got {image.dtype}.")
  if image.ndim == 2:
    image = image[..., None]
  if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
    raise ValueError(f"Expected an (H, W[, 1|3|4]) image, got shape {image.shape}.")
  return np.broadcast_to(image[..., :3], image.shape[:2] + (3,))


def overlay_heatmap(
    image: np.ndarray,
    probabilities: np.ndarray,
    *,
    alpha: float = 0.5,
    cmap: str = DEFAULT_COLORMAP,
) -> np.ndarray:
  """The image blended with its heat map: (1 - alpha) * image + alpha * heat map, uint8 RGB."""
  rgb = _as_rgb(image)
  if rgb.shape[:2] != np.shape(probabilities):
    raise ValueError(
        f"Image {rgb.shape[:2]} and probability map {np.shape(probabilities)} differ in size."
    )
  return blend(rgb, colorize_heatmap(probabilities, cmap=cmap), alpha=alpha)


def blend(image: np.ndarray, heat: np.ndarray, *, alpha: float = 0.5) -> np.ndarray:
  """(1 - alpha) * image + alpha * heat, rounded, for a uint8 image and its coloured heat map."""
  rgb = _as_rgb(image)
  out = np.empty(heat.shape, np.uint8)
  for start in range(0, len(out), OVERLAY_ROWS):  # in row blocks: float32 copies stay small
    rows = slice(start, start + OVERLAY_ROWS)
    blended = (1.0 - alpha) * rgb[rows].astype(np.float32) + alpha * heat[rows]
    out[rows] = np.clip(np.rint(blended), 0, 255)
  return out


def _render(figure: Figure) -> np.ndarray:
  canvas = FigureCanvasAgg(figure)
  canvas.draw()
  return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _save(figure: Figure, path: str | os.PathLike[str]) -> np.ndarray:
  pixels = _render(figure)
  image_io.write_png(path, pixels)
  return pixels


def write_roc_png(
    path: str | os.PathLike[str],
    fpr: np.ndarray,
    tpr: np.ndarray,
    *,
    auc: float,
    title: str | None = None,
    size_inches: float = 5.0,
    dpi: int = 100,
) -> np.ndarray:
  """Plots a ROC curve with its AUC in the legend; returns the (H, W, 3) picture written."""
  figure = Figure(figsize=(size_inches, size_inches), dpi=dpi)
  axes = figure.add_subplot()
  axes.plot(fpr, tpr, color="tab:red", linewidth=2, label=f"AUC = {auc:.4f}")
  axes.plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=1, label="chance")
  axes.set(
      xlim=(0, 1),
      ylim=(0, 1.01),
      xlabel="False positive rate",
      ylabel="True positive rate",
      title=title or "Pixel ROC (pooled)",
  )
  axes.set_aspect("equal")
  axes.grid(alpha=0.3)
  axes.legend(loc="lower right")
  figure.tight_layout()
  return _save(figure, path)


def write_sample_grid(
    path: str | os.PathLike[str],
    images: np.ndarray,
    masks: np.ndarray,
    probabilities: np.ndarray,
    *,
    threshold: float = 0.5,
    max_images: int = 4,
    cmap: str = DEFAULT_COLORMAP,
    panel_inches: float = 2.5,
    dpi: int = 100,
) -> np.ndarray:
  """One row per image: image | ground truth | heat map (with colour bar) | binary mask.

  Args:
    images: (B, H, W[, C]) uint8.
    masks: (B, H, W) ground truth in {0, 1}.
    probabilities: (B, H, W) P(manipulated).
    threshold: the binary mask is `probabilities >= threshold`.
    max_images: rows drawn (the first images).

  Returns:
    The (rows * panel_inches * dpi, 4 * panel_inches * dpi, 3) uint8 picture written.
  """
  rows = min(len(images), max_images)
  if rows == 0 or not len(images) == len(masks) == len(probabilities):
    raise ValueError(
        f"Need the same positive number of images ({len(images)}), masks "
        f"({len(masks)}) and probability maps ({len(probabilities)})."
    )
  figure = Figure(figsize=(4 * panel_inches, rows * panel_inches), dpi=dpi)
  axes = figure.subplots(rows, 4, squeeze=False)
  for row in range(rows):
    heat = axes[row, 2].imshow(probabilities[row], cmap=cmap, vmin=0.0, vmax=1.0)
    figure.colorbar(heat, ax=axes[row, 2], fraction=0.046, pad=0.04)
    axes[row, 0].imshow(_as_rgb(images[row]))
    axes[row, 1].imshow(masks[row], cmap="gray", vmin=0, vmax=1)
    axes[row, 3].imshow(probabilities[row] >= threshold, cmap="gray", vmin=0, vmax=1)
  for column, name in enumerate(
      ("image", "ground truth", "P(manipulated)", f"mask (P >= {threshold:g})")
  ):
    axes[0, column].set_title(name, fontsize=10)
  for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
  figure.tight_layout()
  return _save(figure, path)


def write_robustness_plot(
    path: str | os.PathLike[str],
    results: Mapping[str, Mapping[float, Mapping[str, float]]],
    *,
    metrics: Sequence[str] = ("pooled/pixel_auc", "per_image/f1"),
    clean: Mapping[str, float] | None = None,
    panel_inches: float = 4.0,
    dpi: int = 100,
) -> np.ndarray:
  """Metrics against distortion strength, one panel per distortion.

  Args:
    results: distortion name -> {strength: metrics}, strengths weakest first (the order of
      `distortions.ROBUSTNESS_LEVELS`); the x axis runs from weakest to strongest.
    metrics: the metric keys drawn, one line each.
    clean: metrics without distortion, drawn as dashed lines.

  Returns:
    The (panel_inches * dpi, len(results) * panel_inches * dpi, 3) uint8 picture written.
  """
  if not results:
    raise ValueError("No robustness results to plot.")
  figure = Figure(figsize=(len(results) * panel_inches, panel_inches), dpi=dpi)
  axes = figure.subplots(1, len(results), squeeze=False)[0]
  for ax, (name, by_strength) in zip(axes, results.items()):
    strengths = list(by_strength)
    for index, metric in enumerate(metrics):
      color = f"C{index}"
      ax.plot(
          strengths,
          [by_strength[s][metric] for s in strengths],
          marker="o",
          color=color,
          label=metric,
      )
      if clean is not None:
        ax.axhline(clean[metric], color=color, linestyle="--", linewidth=1)
    if len(strengths) > 1 and strengths[0] > strengths[-1]:
      ax.invert_xaxis()  # JPEG: quality falls as the distortion grows.
    ax.set(xlabel=distortions.STRENGTH_NAMES.get(name, name), title=name)
    ax.set_xticks(strengths)
    ax.grid(alpha=0.3)
  axes[0].set_ylabel("metric (dashed: undistorted)" if clean is not None else "metric")
  axes[0].legend(loc="best", fontsize=8)
  figure.tight_layout()
  return _save(figure, path)
