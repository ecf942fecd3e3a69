"""IMD2020 real-life manipulated images (Novozamsky et al., WACV workshops 2020)."""
import pathlib
import re

from tfds_builders import manual

ORIGINAL = re.compile(r"^(?P<base>.+)_orig$")
FAKE = re.compile(r"^(?P<base>.+)_(?P<index>\d+)$")
MASK_SUFFIX = "_mask"


class Builder(manual.ManualForgeryBuilder):
  """IMD2020: 1010 originals and 2010 manipulated images with masks, one folder per original.

  A folder holds `<x>_orig.jpg` and its manipulated versions `<x>_<k>.{jpg,png}`, each with
  `<x>_<k>_mask.png` (> 0 = manipulated). A folder is one split group.
  """

  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  IMD2020 (http://staff.utia.cas.cz/novozada/db/), "IMD2020 real-life manipulated images".
  Extract it and pass the folder holding the per-image folders as the manual directory:

    <folder>/<x>_orig.jpg          original (authentic)
    <folder>/<x>_0.jpg             manipulated (also .png; _1, _2 ... for more versions)
    <folder>/<x>_0_mask.png        mask, > 0 = manipulated

  No official split: seeded 70/5/25, all images of a folder in one split.
  """

  def _list_candidates(self, manual_dir: pathlib.Path) -> list[manual.Candidate]:
    candidates = []
    for path in manual.image_files(manual_dir, recursive=True):
      group = manual.relative_name(path.parent, manual_dir)
      if path.stem.endswith(MASK_SUFFIX):
        if not any(path.parent.glob(f"{path.stem[:-len(MASK_SUFFIX)]}.*")):
          self._skip(manual.relative_name(path, manual_dir), "mask without an image")
      elif ORIGINAL.match(path.stem):
        candidates.append(manual.Candidate(path, None, None, "none", group))
      elif FAKE.match(path.stem):
        mask = path.with_name(f"{path.stem}{MASK_SUFFIX}.png")
        if mask.is_file():
          candidates.append(manual.Candidate(path, mask, manual.bright_above(0), "unknown", group))
        else:
          self._skip(manual.relative_name(path, manual_dir), f"missing mask {mask.name}")
      else:
        self._skip(manual.relative_name(path, manual_dir), "not an IMD2020 file name")
    return candidates
