"""The synthetic splicing / copy-move sets released with the HLED code (Bappy et al.)."""

import pathlib

from tfds_builders import manual

RGB_SUFFIX = "_rgb"
MASK_SUFFIX = "_mask"


def manipulation_type(set_name: str) -> str:
  return "copy_move" if "copymove" in set_name.lower().replace("_", "") else "splicing"


class Builder(manual.ManualForgeryBuilder):
  """HLED synthetic sets: `N_rgb.png` images with `N_mask.png` masks (mask = 255 - alpha).

  Dark mask pixels are spliced (soft edges, thresholded at 128). The set folder decides the type:
  `copymove_*` copy-move, anything else splicing.
  """

  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Synthetic sets released with https://github.com/jawadbappy/forgery_localization_HLED
  (spliced_nist ~27K, copymove_nist ~27K, dresden_spliced_mscoco ~71K; links in its README).
  Put each extracted set in its own folder under --manual_dir:

    spliced_nist/N_rgb.png, spliced_nist/N_mask.png
    copymove_nist/N_rgb.png, copymove_nist/N_mask.png
    dresden_spliced_mscoco/N_rgb.png, dresden_spliced_mscoco/N_mask.png

  Masks: 255 - alpha, dark = manipulated. No official split: seeded 70/5/25.
  """

  def _list_candidates(self, manual_dir: pathlib.Path) -> list[manual.Candidate]:
    candidates = []
    for path in manual.image_files(manual_dir, recursive=True):
      if path.stem.endswith(MASK_SUFFIX):
        if not path.with_name(path.stem[: -len(MASK_SUFFIX)] + RGB_SUFFIX + path.suffix).is_file():
          self._skip(manual.relative_name(path, manual_dir), "mask without an N_rgb image")
        continue
      if not path.stem.endswith(RGB_SUFFIX):
        continue
      mask = path.with_name(path.stem[: -len(RGB_SUFFIX)] + MASK_SUFFIX + path.suffix)
      name = manual.relative_name(path, manual_dir)
      if not mask.is_file():
        self._skip(name, f"missing mask {mask.name}")
        continue
      set_name = path.relative_to(manual_dir).parts[0]
      candidates.append(
          manual.Candidate(
              path, mask, manual.dark_is_manipulated, manipulation_type(set_name), name
          )
      )
    return candidates
