"""IEEE IFS-TC Image Forensics Challenge, phase 1 training set (the only part with masks)."""

import pathlib

from tfds_builders import manual

MASK_SUFFIX = ".mask.png"


class Builder(manual.ManualForgeryBuilder):
  """IEEE IFS-TC phase 1 training: 1050 pristine and 450 fake images with `<name>.mask.png` masks.

  Mask polarity varies between files: dark is taken as tampered and flipped when it covers more
  than half of the image (`manual.dark_unless_majority`).
  """

  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  IEEE IFS-TC Image Forensics Challenge, phase 1 training set (http://ifc.recod.ic.unicamp.br/,
  file dataset-dist/phase-01-training). Extract it and pass the folder holding `training/` (or any
  folder above it, up to 4 levels) as the manual directory:

    .../training/
      pristine/<name>.png              1050 authentic images
      fake/<name>.png                  450 forged images
      fake/<name>.mask.png             mask of each fake (dark = tampered, polarity varies)

  No official split: seeded 70/5/25.
  """

  def _list_candidates(self, manual_dir: pathlib.Path) -> list[manual.Candidate]:
    pristine = manual.find_dir(manual_dir, "pristine", max_depth=4)
    fake = manual.find_dir(manual_dir, "fake", max_depth=4)
    if pristine is None or fake is None:
      raise self.layout_error(manual_dir, "no training/pristine and training/fake folders")
    candidates = [
        manual.Candidate(path, None, None, "none", path.name)
        for path in manual.image_files(pristine)
    ]
    files = manual.image_files(fake)
    masks = {path.name for path in files if path.name.endswith(MASK_SUFFIX)}
    images = [path for path in files if path.name not in masks]
    for orphan in sorted(masks - {path.stem + MASK_SUFFIX for path in images}):
      self._skip(manual.relative_name(fake / orphan, manual_dir), "mask without a fake image")
    for path in images:
      mask_name = path.stem + MASK_SUFFIX
      if mask_name not in masks:
        self._skip(manual.relative_name(path, manual_dir), f"missing mask {mask_name}")
        continue
      candidates.append(
          manual.Candidate(
              path, path.with_name(mask_name), manual.dark_unless_majority, "unknown", path.name
          )
      )
    return candidates
