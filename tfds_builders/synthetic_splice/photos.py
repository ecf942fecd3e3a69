"""The real photographs the offline synthetic forgeries are made from, grouped by scene.

Three pip-installed sources (docs/datasets.md lists their licences):
  skimage  the true-colour photographs inside the scikit-image wheel (BSD-3-Clause);
  mvtb     `mvtb-data`, the image set of the Machine Vision Toolbox for Python (MIT);
  sporco   the five test photographs inside the `sporco` wheel (BSD-3-Clause).

A scene is every photograph of one place or subject (a stereo pair, a campus sequence, an aerial
mosaic): splits are disjoint by scene, so validation and test measure unseen scenes. `sporco` is
never used for training or validation: it is the cross-source test. Left out on purpose: grey-level,
synthetic, marker, calibration and sequence images, the Corel image `58060.png`, `lena`,
`monalisa`, `rocks2-*`; and never scikit-learn's or matplotlib's sample images (kept for outside
tests). Photographs smaller than a crop serve only as donors of objects.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import pathlib
from collections.abc import Mapping, Sequence

import numpy as np
import PIL.Image


@dataclasses.dataclass(frozen=True)
class Source:
  package: str  # the importable package whose folder holds the photographs
  folder: str  # inside that package
  licence: str


SOURCES: Mapping[str, Source] = {
    "skimage": Source("skimage", "data", "BSD-3-Clause (scikit-image)"),
    "mvtb": Source("mvtbdata", "images", "MIT (mvtb-data)"),
    "sporco": Source("sporco", "data", "BSD-3-Clause (sporco)"),
}


@dataclasses.dataclass(frozen=True)
class Scene:
  name: str
  source: str
  split: str  # "train", "validation", "test" or "test_cross_source"
  files: tuple[str, ...]  # relative to the source's folder


def _campus() -> tuple[str, ...]:
  numbers = [491, 493, 494, 495, 496, 497, 498, 499, 500, 501, 503, 504, 505, 506, 507]
  numbers += [509, 510, 512, 514, 515]
  held = [492, 502, 508, 511, 513]  # the package's own hold-out folder: same campus, same scene
  return tuple(f"campus/P1070{n}.png" for n in numbers) + tuple(
      f"campus/holdout/P1070{n}.png" for n in held
  )


SCENES: tuple[Scene, ...] = (
    # Training scenes.
    Scene("astronaut", "skimage", "train", ("astronaut.png",)),
    Scene("coffee", "skimage", "train", ("coffee.png",)),
    Scene("hubble", "skimage", "train", ("hubble_deep_field.jpg",)),
    Scene("motorcycle", "skimage", "train", ("motorcycle_left.png", "motorcycle_right.png")),
    Scene("campus", "mvtb", "train", _campus()),
    Scene("eiffel", "mvtb", "train", ("eiffel-1.png", "eiffel-2.png")),
    Scene("flowers", "mvtb", "train", tuple(f"flowers{i}.png" for i in range(1, 10))),
    Scene("lab", "mvtb", "train", ("lab-scene.png",)),
    Scene(
        "aerial_mosaic",
        "mvtb",
        "train",
        ("mosaic/aerial-08.png", "mosaic/aerial-09.png", "mosaic/aerial-10.png"),
    ),
    Scene("parks", "mvtb", "train", ("parks.png",)),
    Scene("roof", "mvtb", "train", ("roof.png",)),
    Scene("walls", "mvtb", "train", ("walls-l.png", "walls-r.png")),
    Scene(
        "tomato",
        "mvtb",
        "train",
        ("tomato_54.png", "tomato_14.png", "tomato_35.png", "tomato_124.png"),
    ),
    Scene("butterfly", "mvtb", "train", ("butterfly.jpg",)),
    # Validation scenes.
    Scene("chelsea", "skimage", "validation", ("chelsea.png",)),
    Scene("retina", "skimage", "validation", ("retina.jpg",)),
    Scene("notre_dame", "mvtb", "validation", ("notre-dame.png",)),
    Scene("greenscreen", "mvtb", "validation", ("greenscreen.png",)),
    Scene("road", "mvtb", "validation", ("road.png",)),
    # Test scenes (same sources as training, unseen scenes).
    Scene("rocket", "skimage", "test", ("rocket.jpg",)),
    Scene("ihc", "skimage", "test", ("ihc.png",)),
    Scene("church", "mvtb", "test", ("church.jpg",)),
    Scene("street_market", "mvtb", "test", ("image3.jpg",)),
    Scene("aerial_city", "mvtb", "test", ("mosaic/aerialphoto.png",)),
    # Cross-source test: a source training never sees.
    Scene("barbara", "sporco", "test_cross_source", ("barbara.png",)),
    Scene("kodim23", "sporco", "test_cross_source", ("kodim23.png",)),
    Scene("monarch", "sporco", "test_cross_source", ("monarch.png",)),
    Scene("sail", "sporco", "test_cross_source", ("sail.png",)),
    Scene("tulips", "sporco", "test_cross_source", ("tulips.png",)),
)

SCENE_SPLITS = ("train", "validation", "test", "test_cross_source")


def source_dir(source: str) -> pathlib.Path:
  """The folder of one source's photographs, found without importing its package."""
  spec = importlib.util.find_spec(SOURCES[source].package)
  if spec is None or not spec.submodule_search_locations:
    raise FileNotFoundError(
        f"photo source {source!r} needs the package {SOURCES[source].package!r}: "
        'pip install -e "." installs it'
    )
  return pathlib.Path(list(spec.submodule_search_locations)[0]) / SOURCES[source].folder


def load_photo(path: pathlib.Path) -> np.ndarray:
  """A photograph as (H, W, 3) uint8 RGB (alpha dropped); raises naming the file if unreadable."""
  try:
    with PIL.Image.open(path) as image:
      return np.asarray(image.convert("RGB"))
  except (OSError, ValueError) as error:
    raise OSError(f"cannot read photograph {path}: {error}") from error


def photo_key(scene: Scene, file: str) -> str:
  """`scene:file`: the scene is recoverable from the key (crops sample a scene, then a photo)."""
  return f"{scene.name}:{file}"


def scene_of(key: str) -> str:
  return key.split(":", 1)[0]


def scenes_of_split(split: str) -> list[Scene]:
  if split not in SCENE_SPLITS:
    raise ValueError(f"unknown photo split {split!r}; expected one of {SCENE_SPLITS}")
  return [scene for scene in SCENES if scene.split == split]


def load_split(split: str, sources: Sequence[str] = tuple(SOURCES)) -> dict[str, np.ndarray]:
  """Every photograph of a split's scenes from `sources`, keyed `scene:file`."""
  return {
      photo_key(scene, file): load_photo(source_dir(scene.source) / file)
      for scene in scenes_of_split(split)
      if scene.source in sources
      for file in scene.files
  }
