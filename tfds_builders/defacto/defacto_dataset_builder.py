"""DEFACTO forgeries of MS-COCO images (Mahfoudi et al., EUSIPCO 2019)."""
import pathlib
import re

from tfds_builders import manual

# `<type>-images` / `<type>_img` (with an optional part number: `splicing_1_img`).
IMAGE_DIR = re.compile(r"^(?P<prefix>.+?)[-_](?:img|images)$", re.IGNORECASE)
TYPES = (("copymove", "copy_move"), ("splicing", "splicing"), ("inpainting", "removal"))


def manipulation_type(prefix: str) -> str:
  name = prefix.lower().replace("-", "").replace("_", "")
  return next((kind for key, kind in TYPES if name.startswith(key)), "unknown")


class Builder(manual.ManualForgeryBuilder):
  """DEFACTO: copy-move, splicing, inpainting and face forgeries with JPEG probe masks.

  Images `<type>-images/img/<id>.tif` pair with `<type>-annotations/probe_mask/<id>.jpg`; the JPEG
  mask is thresholded at 127 (white = manipulated). DEFACTO has no authentic images.
  """

  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  DEFACTO (https://defactodataset.github.io/). Extract the parts you want side by side and pass
  their common folder as the manual directory:

    <type>-images/img/<id>.tif                    forged image
    <type>-annotations/probe_mask/<id>.jpg        mask (JPEG, thresholded at 127)

  with <type> e.g. copymove, splicing_1, inpainting, face_morphing (underscores instead of the
  hyphen, as in the Kaggle copy `<type>_img/` / `<type>_annotations/`, also work).
  Type from the folder: copymove -> copy_move, splicing -> splicing, inpainting -> removal,
  others -> unknown. No official split: seeded 70/5/25.
  """

  def _list_candidates(self, manual_dir: pathlib.Path) -> list[manual.Candidate]:
    candidates = []
    for image_dir in sorted(manual_dir.rglob("img")):
      match = IMAGE_DIR.match(image_dir.parent.name)
      if not image_dir.is_dir() or match is None:
        continue
      mask_dir = self._mask_dir(image_dir.parent, match["prefix"])
      for path in manual.image_files(image_dir):
        mask = mask_dir / f"{path.stem}.jpg" if mask_dir else None
        if mask is None or not mask.is_file():
          self._skip(manual.relative_name(path, manual_dir),
                     f"missing mask probe_mask/{path.stem}.jpg")
          continue
        candidates.append(manual.Candidate(
            path, mask, manual.bright_above(127), manipulation_type(match["prefix"]),
            manual.relative_name(path, manual_dir)))
    return candidates

  def _mask_dir(self, image_root: pathlib.Path, prefix: str) -> pathlib.Path | None:
    for separator in ("-", "_"):
      mask_dir = image_root.parent / f"{prefix}{separator}annotations" / "probe_mask"
      if mask_dir.is_dir():
        return mask_dir
    return None
