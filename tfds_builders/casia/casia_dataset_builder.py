"""CASIA tampered image detection evaluation database, v1.0 and v2.0, with community masks."""
import pathlib
import re

import tensorflow_datasets as tfds

from tfds_builders import manual

# `<stem>_gt.png`; CASIA v2 ships one mask as `..._gt3.png`, matched by the optional digits.
MASK_NAME = re.compile(r"^(?P<stem>.+)_gt(?P<suffix>\d*)\.png$", re.IGNORECASE)


def manipulation_type(stem: str) -> str:
  """`Tp_D_...` / `Sp_D_...` splicing, `Tp_S_...` / `Sp_S_...` copy-move.

  The two source ids before the final index name the donor and target images; when they are equal
  the forgery is a copy-move whatever the letter says (the CASIA v2 authors mislabelled some of
  those as D, per the revised ground truth's notes).
  """
  tokens = stem.split("_")
  if len(tokens) >= 4 and tokens[-3] == tokens[-2]:
    return "copy_move"
  return {"D": "splicing", "S": "copy_move"}.get(tokens[1] if len(tokens) > 1 else "", "unknown")


class Builder(manual.ManualForgeryBuilder):
  """CASIA v1.0 (800 Au, 921 Tp) and v2.0 (7491 Au, 5123 Tp) with the community pixel masks.

  Masks are `<stem>_gt.png` (> 0 = tampered) wherever they sit under the manual directory; one v2
  mask is named `_gt3.png`. A tampered image without a mask or with a mask of another size (v2 has
  17 of those, some transposed) is skipped and listed.
  """

  BUILDER_CONFIGS = [
      tfds.core.BuilderConfig(name="v1", description="CASIA v1.0 with casia1groundtruth."),
      tfds.core.BuilderConfig(name="v2", description="CASIA v2.0 revised with casia2groundtruth."),
  ]
  DEFAULT_CONFIG_NAME = "v2"

  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  CASIA v1.0 / v2.0 (images: http://forensics.idealtest.org or the mirrors linked below; masks:
  https://github.com/CauchyComplete/casia1groundtruth and
  https://github.com/namtpham/casia2groundtruth,
  which also host the revised v2 images). Keep the versions apart: one manual directory per
  config, or `casia/v1/` and `casia/v2/` inside a shared one:

    v1 (--config=v1):
      CASIA 1.0 dataset/Au/Au_*.jpg
      CASIA 1.0 dataset/Modified Tp/Tp/{CM,Sp}/Sp_{S,D}_*.jpg
      CASIA 1.0 groundtruth/{CM,Sp}/<stem>_gt.png
    v2 (--config=v2):
      CASIA2.0_revised/Au/Au_*.{jpg,bmp}
      CASIA2.0_revised/Tp/Tp_{D,S}_*.{jpg,tif}
      CASIA 2 Groundtruth/<stem>_gt.png            (one file is <stem>_gt3.png)

  Folder names of the mask set do not matter: every `*_gt.png` / `*_gt<digits>.png` under the
  manual directory is used. `Au` and `Tp` are found up to 3 levels deep. D = splicing,
  S = copy-move. No official split: seeded 70/5/25.
  """

  def _list_candidates(self, manual_dir: pathlib.Path) -> list[manual.Candidate]:
    authentic = manual.find_dir(manual_dir, "Au")
    tampered = manual.find_dir(manual_dir, "Tp")
    if authentic is None or tampered is None:
      raise self.layout_error(manual_dir, "no Au/ and Tp/ folders")
    masks = self._masks_by_stem(manual_dir)
    candidates = [manual.Candidate(path, None, None, "none", path.stem)
                  for path in manual.image_files(authentic)]
    for path in manual.image_files(tampered, recursive=True):
      mask = masks.pop(path.stem, None)
      if mask is None:
        self._skip(manual.relative_name(path, manual_dir), f"missing mask {path.stem}_gt.png")
        continue
      candidates.append(manual.Candidate(
          path, mask, manual.bright_above(0), manipulation_type(path.stem), path.stem))
    for mask in sorted(masks.values()):
      self._skip(manual.relative_name(mask, manual_dir), "mask without a tampered image")
    return candidates

  def _masks_by_stem(self, manual_dir: pathlib.Path) -> dict[str, pathlib.Path]:
    """Masks by image stem; a plain `_gt.png` wins over a numbered one for the same stem."""
    masks = {}
    for path in sorted(manual_dir.rglob("*_gt*.png"), key=lambda p: (p.name.lower(), p)):
      match = MASK_NAME.match(path.name)
      if match and (match["stem"] not in masks or not match["suffix"]):
        masks[match["stem"]] = path
    return masks
