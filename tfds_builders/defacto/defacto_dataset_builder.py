"""DEFACTO forgeries of MS-COCO images (Mahfoudi et al., EUSIPCO 2019)."""

import pathlib
import re

from tfds_builders import manual

# `copymove_img`, `splicing_1_img` ... `splicing_7_img`, `inpainting_img`; also `<type>-images`.
IMAGE_DIR = re.compile(r"^(?P<prefix>.+?)[-_](?:img|images)$", re.IGNORECASE)
TYPES = (("copymove", "copy_move"), ("splicing", "splicing"), ("inpainting", "removal"))
MASK_SUFFIXES = (".jpg", ".tif", ".png")


def manipulation_type(prefix: str) -> str:
  name = prefix.lower().replace("-", "").replace("_", "")
  return next((kind for key, kind in TYPES if name.startswith(key)), "unknown")


def coco_image(stem: str) -> str:
  """`<n>_<COCO id>`: forgeries made from one COCO photograph share its id."""
  return stem.split("_", 1)[-1]


class Builder(manual.ManualForgeryBuilder):
  """DEFACTO: copy-move, splicing and inpainting forgeries of MS-COCO photographs.

  Images `<type>_img/img/<n>_<COCO id>.tif` pair with `<type>_annotations/probe_mask/<same>.jpg`,
  a JPEG mask thresholded at 127 (white = manipulated). DEFACTO has no authentic images. Forgeries
  of one COCO photograph are near duplicates and share a split.
  """

  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  DEFACTO (https://defactodataset.github.io/). Extract the parts you want side by side and pass
  their common folder as the manual directory:

    copymove_img/img/<n>_<COCO id>.tif               forged image
    copymove_annotations/probe_mask/<same>.jpg       mask (JPEG, thresholded at 127)
    splicing_1_img/img/ ... splicing_7_img/img/      with splicing_<k>_annotations/probe_mask/
    inpainting_img/img/                              with inpainting_annotations/probe_mask/

  `<type>-images/` / `<type>-annotations/` folder names and .tif/.png probe masks also work;
  donor_mask/, inpaint_mask/ and graph/ are not used. Type from the folder: copymove ->
  copy_move, splicing -> splicing, inpainting -> removal, others -> unknown. No official split:
  seeded 70/5/25, forgeries of one COCO photograph in one split.
  """

  def _list_candidates(self, manual_dir: pathlib.Path) -> list[manual.Candidate]:
    candidates = []
    for image_dir in sorted(manual_dir.rglob("img")):
      match = IMAGE_DIR.match(image_dir.parent.name)
      if not image_dir.is_dir() or match is None:
        continue
      mask_dir = self._mask_dir(image_dir.parent, match["prefix"])
      for path in manual.image_files(image_dir):
        masks = [mask_dir / f"{path.stem}{suffix}" for suffix in MASK_SUFFIXES] if mask_dir else []
        mask = next((mask for mask in masks if mask.is_file()), None)
        if mask is None:
          self._skip(
              manual.relative_name(path, manual_dir), f"missing mask probe_mask/{path.stem}.jpg"
          )
          continue
        candidates.append(
            manual.Candidate(
                path,
                mask,
                manual.bright_above(127),
                manipulation_type(match["prefix"]),
                coco_image(path.stem),
            )
        )
    return candidates

  def _mask_dir(self, image_root: pathlib.Path, prefix: str) -> pathlib.Path | None:
    for separator in ("_", "-"):
      mask_dir = image_root.parent / f"{prefix}{separator}annotations" / "probe_mask"
      if mask_dir.is_dir():
        return mask_dir
    return None
