"""`own_forgeries`: a user's own forgery dataset, in one of the two layouts the field already uses.

Images are paired with their masks **by file stem**, never by sorted order: pairing two sorted
listings silently mis-pairs every image after the first missing or extra file.
"""

import json
import pathlib

from absl import logging
import numpy as np

from tfds_builders import manual

# Mask file stems accepted for image stem `s`: s, s_gt, s_mask, s_edgemask (CASIA, IMD2020,
# Columbia and most repackaged datasets use one of them).
MASK_SUFFIXES = ("", "_gt", "_mask", "_edgemask")
NEGATIVE = "Negative"  # IMDL-BenCo's mask entry for an authentic image
OPTIONS_FILE = "options.json"
DEFAULT_OPTIONS = {"manipulated": "white", "threshold": 127}
SPLITS = ("train", "validation", "test")
# A "manipulated" region over this share of its image is almost always an inverted mask.
MOSTLY_MANIPULATED = 0.5


def binarizer(options: dict) -> manual.Binarizer:
  """Mask pixels -> manipulated, by the dataset's polarity and threshold (options.json)."""
  threshold = int(options["threshold"])
  if options["manipulated"] == "white":
    return manual.bright_above(threshold)
  if options["manipulated"] == "black":
    return lambda mask: manual.gray_array(mask) <= threshold
  raise ValueError(
      f"{OPTIONS_FILE}: 'manipulated' must be 'white' or 'black', got "
      f"{options['manipulated']!r}"
  )


class Builder(manual.ManualForgeryBuilder):
  """A forgery dataset of your own, from Tp/Gt/Au folders or an IMDL-BenCo JSON list."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Your own dataset, in either layout (put it in `<manual_dir>/own_forgeries/` or pass its folder):

    Folders:
      Tp/<stem>.<ext>     manipulated images
      Gt/<stem>[_gt|_mask|_edgemask].<ext>   their masks, paired by file stem
      Au/<stem>.<ext>     authentic images (optional)
    or train/, validation/, test/ folders each holding Tp/, Gt/ (and Au/) for your own splits.

    IMDL-BenCo JSON list: <name>.json holding [[image_path, mask_path or "Negative"], ...], paths
    absolute or relative to the JSON file; train.json / validation.json / test.json give splits.

  Optional options.json: {"manipulated": "white" | "black", "threshold": 127}: mask pixels brighter
  than the threshold (white, the default) or not brighter (black) are manipulated. A mask of
  another size than its image is skipped and reported, never resized. Without split folders or
  files: a seeded 70/5/25 split.
  """

  def _list_candidates(self, manual_dir: pathlib.Path) -> list[manual.Candidate]:
    options = self._options(manual_dir)
    binarize = self._checked(binarizer(options))
    self._split_of: dict[pathlib.Path, str] = {}
    split_dirs = [manual_dir / split for split in SPLITS if (manual_dir / split / "Tp").is_dir()]
    split_lists = [manual_dir / f"{split}.json" for split in SPLITS]
    if split_dirs:
      return [c for d in split_dirs for c in self._from_folders(manual_dir, d, binarize, d.name)]
    if any(path.is_file() for path in split_lists):
      return [
          c
          for path in split_lists
          if path.is_file()
          for c in self._from_list(manual_dir, path, binarize, path.stem)
      ]
    if (manual_dir / "Tp").is_dir():
      return self._from_folders(manual_dir, manual_dir, binarize, None)
    lists = sorted(manual_dir.glob("*.json"))
    lists = [path for path in lists if path.name != OPTIONS_FILE]
    if len(lists) == 1:
      return self._from_list(manual_dir, lists[0], binarize, None)
    raise self.layout_error(
        manual_dir,
        "no Tp/ folder, no split folders and not exactly one JSON list"
        + (f" (found {[p.name for p in lists]})" if lists else ""),
    )

  def _official_split(self, candidate: manual.Candidate) -> str | None:
    return self._split_of.get(candidate.image)

  def _options(self, manual_dir: pathlib.Path) -> dict:
    path = manual_dir / OPTIONS_FILE
    if not path.is_file():
      return dict(DEFAULT_OPTIONS)
    try:
      given = json.loads(path.read_text())
    except json.JSONDecodeError as error:
      raise self.layout_error(manual_dir, f"{OPTIONS_FILE} is not valid JSON ({error})") from None
    unknown = set(given) - set(DEFAULT_OPTIONS)
    if unknown:
      raise self.layout_error(manual_dir, f"{OPTIONS_FILE} has unknown keys {sorted(unknown)}")
    return {**DEFAULT_OPTIONS, **given}

  def _checked(self, binarize: manual.Binarizer) -> manual.Binarizer:
    """`binarize`, warning when a mask marks most of its image (likely the wrong polarity)."""

    def checked(mask: np.ndarray) -> np.ndarray:
      manipulated = binarize(mask)
      if manipulated.mean() > MOSTLY_MANIPULATED:
        logging.warning(
            "%s: a mask marks %.0f%% of its image as manipulated; if the dataset's masks are "
            'inverted, set {"manipulated": "black"} in %s.',
            self.name,
            100 * manipulated.mean(),
            OPTIONS_FILE,
        )
      return manipulated

    return checked

  def _from_folders(
      self,
      manual_dir: pathlib.Path,
      root: pathlib.Path,
      binarize: manual.Binarizer,
      split: str | None,
  ) -> list[manual.Candidate]:
    masks_by_stem: dict[str, list[pathlib.Path]] = {}
    gt = root / "Gt"
    for mask in manual.image_files(gt) if gt.is_dir() else []:
      masks_by_stem.setdefault(mask.stem, []).append(mask)
    candidates, used = [], set()
    for image in manual.image_files(root / "Tp"):
      found = [m for suffix in MASK_SUFFIXES for m in masks_by_stem.get(image.stem + suffix, [])]
      name = manual.relative_name(image, manual_dir)
      if not found:
        self._skip(name, f"missing mask: no Gt/{image.stem}{{,_gt,_mask,_edgemask}}.<ext>")
        continue
      if len(found) > 1:
        self._skip(
            name, f"several masks fit: {[manual.relative_name(m, manual_dir) for m in found]}"
        )
        used.update(found)
        continue
      used.add(found[0])
      candidates.append(manual.Candidate(image, found[0], binarize, "unknown", name))
    for mask in sorted({m for masks in masks_by_stem.values() for m in masks} - used):
      self._skip(manual.relative_name(mask, manual_dir), "mask without an image in Tp/")
    au = root / "Au"
    for image in manual.image_files(au) if au.is_dir() else []:
      name = manual.relative_name(image, manual_dir)
      candidates.append(manual.Candidate(image, None, None, "none", name))
    if split is not None:
      self._split_of.update({candidate.image: split for candidate in candidates})
    return candidates

  def _from_list(
      self,
      manual_dir: pathlib.Path,
      path: pathlib.Path,
      binarize: manual.Binarizer,
      split: str | None,
  ) -> list[manual.Candidate]:
    try:
      entries = json.loads(path.read_text())
    except json.JSONDecodeError as error:
      raise self.layout_error(manual_dir, f"{path.name} is not valid JSON ({error})") from None
    if not isinstance(entries, list):
      raise self.layout_error(manual_dir, f"{path.name} is not a list of [image, mask] pairs")
    candidates = []
    for index, entry in enumerate(entries):
      if not (
          isinstance(entry, list) and len(entry) == 2 and all(isinstance(e, str) for e in entry)
      ):
        self._skip(f"{path.name}[{index}]", f"not an [image path, mask path or {NEGATIVE!r}] pair")
        continue
      image = (path.parent / entry[0]).resolve()
      name = manual.relative_name(image, manual_dir)
      if not image.is_file():
        self._skip(name, f"no such image file (entry {index} of {path.name})")
        continue
      if entry[1] == NEGATIVE:
        candidates.append(manual.Candidate(image, None, None, "none", name))
        continue
      mask = (path.parent / entry[1]).resolve()
      if not mask.is_file():
        self._skip(name, f"missing mask {entry[1]} (entry {index} of {path.name})")
        continue
      candidates.append(manual.Candidate(image, mask, binarize, "unknown", name))
    if split is not None:
      self._split_of.update({candidate.image: split for candidate in candidates})
    return candidates
