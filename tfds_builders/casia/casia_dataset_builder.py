"""CASIA tampered image detection evaluation database, v1.0 and v2.0, with community masks."""

import collections
import pathlib
import re

from absl import logging
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
  mask is named `_gt3.png`, and some masks carry a corrected name that only shares the final tamper
  index with their image (paired when that index is unambiguous). A tampered image without a mask
  or with a mask of another size (v2 has 17 of those, some transposed) is skipped and listed.
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
    images = manual.image_files(tampered, recursive=True)
    masks = self._masks_by_stem(manual_dir)
    renamed = self._renamed_masks(images, masks)
    candidates = [
        manual.Candidate(path, None, None, "none", path.stem)
        for path in manual.image_files(authentic)
    ]
    for path in images:
      mask_stem = renamed.get(path.stem, path.stem)  # the corrected name, where there is one
      mask = masks.pop(mask_stem, None)
      if mask is None:
        self._skip(manual.relative_name(path, manual_dir), f"missing mask {path.stem}_gt.png")
        continue
      candidates.append(
          manual.Candidate(
              path, mask, manual.bright_above(0), manipulation_type(mask_stem), path.stem
          )
      )
    for mask in sorted(masks.values()):
      self._skip(manual.relative_name(mask, manual_dir), "mask without a tampered image")
    return candidates

  def _renamed_masks(
      self, images: list[pathlib.Path], masks: dict[str, pathlib.Path]
  ) -> dict[str, str]:
    """Image stem -> mask stem for images whose mask carries a corrected name.

    The revised ground truth names some masks after the corrected file name (e.g. D -> S) while
    the image keeps the original one; both still end in the same tamper index (`_10647`). Such a
    pair is accepted only when that index belongs to exactly one unpaired image and one unpaired
    mask, and it is logged.
    """
    unpaired_images = [path.stem for path in images if path.stem not in masks]
    unpaired_masks = masks.keys() - {path.stem for path in images}
    images_by_index, masks_by_index = collections.defaultdict(list), collections.defaultdict(list)
    for stem in unpaired_images:
      images_by_index[stem.rsplit("_", 1)[-1]].append(stem)
    for stem in unpaired_masks:
      masks_by_index[stem.rsplit("_", 1)[-1]].append(stem)
    renamed = {}
    for index, stems in images_by_index.items():
      if len(stems) == 1 and len(masks_by_index.get(index, [])) == 1:
        renamed[stems[0]] = masks_by_index[index][0]
        logging.info(
            "%s: pairing %s with the renamed mask %s_gt.png", self.name, stems[0], renamed[stems[0]]
        )
    return renamed

  def _masks_by_stem(self, manual_dir: pathlib.Path) -> dict[str, pathlib.Path]:
    """Masks by image stem; a plain `_gt.png` wins over a numbered one for the same stem."""
    masks = {}
    for path in sorted(manual_dir.rglob("*_gt*.png"), key=lambda p: (p.name.lower(), p)):
      match = MASK_NAME.match(path.name)
      if match and (match["stem"] not in masks or not match["suffix"]):
        masks[match["stem"]] = path
    return masks
