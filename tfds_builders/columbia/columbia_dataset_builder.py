"""Columbia Uncompressed Image Splicing Detection Evaluation Dataset (Hsu and Chang, ICME 2006)."""

import pathlib

from tfds_builders import manual


class Builder(manual.ManualForgeryBuilder):
  """Columbia uncompressed: 183 authentic and 180 spliced TIFF/BMP images.

  Each spliced image has a colour JPEG edge mask `edgemask/<stem>_edgemask.jpg` painting the host
  camera's region red and the spliced camera's region green; the green-dominant pixels are the mask
  (`manual.green_dominant`). Other files in edgemask/ (e.g. `<stem>_edgemask_3.jpg`) are ignored.
  """

  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Columbia Uncompressed Image Splicing Detection Evaluation Dataset
  (https://www.ee.columbia.edu/ln/dvmm/downloads/authsplcuncmp/): download 4cam_auth.tar.bz2 and
  4cam_splc.tar.bz2, extract both into one folder and pass it as the manual directory:

    4cam_auth/*.tif                             183 authentic images (TIFF or BMP)
    4cam_splc/*.tif                             180 spliced images
    4cam_splc/edgemask/<stem>_edgemask.jpg      colour edge mask: green = spliced region

  A doubled top folder (4cam_auth/4cam_auth/) also works. No official split: seeded 70/5/25.
  """

  def _list_candidates(self, manual_dir: pathlib.Path) -> list[manual.Candidate]:
    authentic = manual.find_dir(manual_dir, "4cam_auth")
    spliced = manual.find_dir(manual_dir, "4cam_splc")
    if authentic is None or spliced is None:
      raise self.layout_error(manual_dir, "no 4cam_auth/ and 4cam_splc/ folders")
    candidates = [
        manual.Candidate(path, None, None, "none", path.name)
        for path in manual.image_files(authentic)
    ]
    for path in manual.image_files(spliced):
      mask = spliced / "edgemask" / f"{path.stem}_edgemask.jpg"
      if not mask.is_file():
        self._skip(manual.relative_name(path, manual_dir), f"missing mask edgemask/{mask.name}")
        continue
      candidates.append(manual.Candidate(path, mask, manual.green_dominant, "splicing", path.name))
    return candidates
