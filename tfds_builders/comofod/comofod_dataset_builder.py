"""CoMoFoD: image database for copy-move forgery detection (Tralic et al., ELMAR 2013)."""

import collections
import pathlib
import re

from tfds_builders import manual

# NNN_F forged, NNN_O original, NNN_B binary mask, NNN_M colour mask; post-processed copies carry
# a suffix: _JC1.._JC9 (JPEG), _IB (blur), _NA (noise), _BC (brightness), _CR (colour reduction),
# _CA (contrast), each with its level.
FILE_NAME = re.compile(r"^(?P<set>\d+)_(?P<kind>[FOBM])(?:_(?P<post>[A-Z]{2}\d*))?$")


class Builder(manual.ManualForgeryBuilder):
  """CoMoFoD: each set NNN has a forgery, its original, a binary mask and post-processed copies.

  Every forged copy `NNN_F*` uses the set's mask `NNN_B` (white = forged); originals `NNN_O*` are
  authentic. All files of a set are near duplicates, so a set stays in one split.
  """

  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  CoMoFoD (https://www.vcl.fer.hr/comofod/), small (512x512, CoMoFoD_small_v2) or large set.
  Extract it and pass the folder holding the images (searched recursively) as the manual
  directory:

    NNN_F.png                     forged (copy-move)
    NNN_O.png                     original (authentic)
    NNN_B.png                     binary mask, white = forged
    NNN_M.png                     colour mask (not used)
    NNN_F_JC1..9, _IB1.., _NA1.., _BC1.., _CR1.., _CA1..   post-processed forged copies
    NNN_O_JC1.. etc.              post-processed originals

  Any image extension (.png, .jpg, .bmp, .tif). No official split: seeded 70/5/25 by set number.
  """

  def _list_candidates(self, manual_dir: pathlib.Path) -> list[manual.Candidate]:
    files_by_set = collections.defaultdict(list)
    for path in manual.image_files(manual_dir, recursive=True):
      match = FILE_NAME.match(path.stem)
      if match is None:
        self._skip(manual.relative_name(path, manual_dir), "not a CoMoFoD file name")
      else:
        files_by_set[match["set"]].append((path, match))
    candidates = []
    for number, files in sorted(files_by_set.items()):
      masks = [path for path, match in files if match["kind"] == "B" and not match["post"]]
      for path, match in files:
        if match["kind"] == "O":
          candidates.append(manual.Candidate(path, None, None, "none", number))
        elif match["kind"] == "F" and masks:
          candidates.append(
              manual.Candidate(path, masks[0], manual.bright_above(127), "copy_move", number)
          )
        elif match["kind"] == "F":
          self._skip(manual.relative_name(path, manual_dir), f"missing mask {number}_B")
    return candidates
