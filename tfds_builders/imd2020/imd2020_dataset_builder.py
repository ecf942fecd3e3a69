"""IMD2020 real-life manipulated images (Novozamsky et al., WACV workshops 2020)."""

import pathlib

from tfds_builders import manual

ORIGINAL_SUFFIX = "_orig"
MASK_SUFFIX = "_mask"


class Builder(manual.ManualForgeryBuilder):
  """IMD2020: 1010 originals and 2010 manipulated images with masks, one folder per original.

  A folder holds the original `<folder>_orig.jpg` and manipulated versions (`<x>_0.png`,
  `<x>_1.jpg`, `<n>_fake.jpg`, ...), each with `<its stem>_mask.png` (> 0 = manipulated). Every
  image that is neither `*_orig` nor `*_mask` is manipulated. A folder is one split group.
  """

  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  IMD2020 (http://staff.utia.cas.cz/novozada/db/), "IMD2020 real-life manipulated images".
  Extract it and pass the folder holding the per-image folders as the manual directory:

    1a1ogs/1a1ogs_orig.jpg         original (authentic), named after its folder
    1a1ogs/c8tf5mq_0.png           manipulated (.jpg or .png; _1, _2 ... for more versions)
    1a1ogs/c8tf5mq_0_mask.png      its mask, > 0 = manipulated
    z41/00109_fake.jpg, z41/00109_fake_mask.png, z41/00109_orig.jpg   (also found)

  No official split: seeded 70/5/25, all images of a folder in one split.
  """

  def _list_candidates(self, manual_dir: pathlib.Path) -> list[manual.Candidate]:
    candidates = []
    for path in manual.image_files(manual_dir, recursive=True):
      name = manual.relative_name(path, manual_dir)
      group = manual.relative_name(path.parent, manual_dir)
      if path.stem.endswith(MASK_SUFFIX):
        if not any(
            manual.is_image_file(image)
            for image in path.parent.glob(f"{path.stem[:-len(MASK_SUFFIX)]}.*")
        ):
          self._skip(name, "mask without an image")
      elif path.stem.endswith(ORIGINAL_SUFFIX):
        candidates.append(manual.Candidate(path, None, None, "none", group))
      else:
        mask = path.with_name(f"{path.stem}{MASK_SUFFIX}.png")
        if mask.is_file():
          candidates.append(manual.Candidate(path, mask, manual.bright_above(0), "unknown", group))
        else:
          self._skip(name, f"missing mask {mask.name}")
    return candidates
