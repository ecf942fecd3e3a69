"""COVERAGE copy-move forgery database (Wen et al., ICIP 2016)."""

import pathlib
import re

import tensorflow_datasets as tfds

from tfds_builders import manual

IMAGE_NAME = re.compile(r"^(?P<number>\d+)(?P<tampered>t?)$")


class Builder(manual.ManualForgeryBuilder):
  """COVERAGE: 100 originals `N.tif` and 100 copy-move forgeries `Nt.tif`; test split only.

  The forged-region mask `mask/Nforged.tif` is > 125 where forged. Images 41, 48, 55-59, 61 and 95
  are distributed with masks of another size; they are skipped and listed in the build log.
  """

  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  COVERAGE (https://github.com/wenbihan/coverage). Extract it and pass the folder holding `image/`
  and `mask/` (or its parent) as the manual directory:

    COVERAGE/
      image/{N}.tif          original (authentic), N = 1..100
      image/{N}t.tif         copy-move forgery
      mask/{N}forged.tif     forged region (> 125), used as the mask
      mask/{N}copy.tif, mask/{N}paste.tif   (not used)

  The paper uses COVERAGE for testing only: every image goes to the `test` split.
  """

  def _list_candidates(self, manual_dir: pathlib.Path) -> list[manual.Candidate]:
    image_dir = manual.find_dir(manual_dir, "image")
    if image_dir is None or not (image_dir.parent / "mask").is_dir():
      raise self.layout_error(manual_dir, "no image/ and mask/ folders")
    candidates = []
    for path in manual.image_files(image_dir):
      match = IMAGE_NAME.match(path.stem)
      if match is None:
        self._skip(manual.relative_name(path, manual_dir), "not named N.tif or Nt.tif")
        continue
      if not match["tampered"]:
        candidates.append(manual.Candidate(path, None, None, "none", match["number"]))
        continue
      mask = image_dir.parent / "mask" / f"{match['number']}forged.tif"
      if not mask.is_file():
        self._skip(manual.relative_name(path, manual_dir), f"missing mask {mask.name}")
        continue
      candidates.append(
          manual.Candidate(path, mask, manual.bright_above(125), "copy_move", match["number"])
      )
    return candidates

  def _official_split(self, candidate: manual.Candidate) -> str:
    return tfds.Split.TEST
