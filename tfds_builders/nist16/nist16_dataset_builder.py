"""NIST Nimble Challenge 2016 (NC2016), read from its manipulation reference table."""

import csv
import pathlib

from tfds_builders import manual

REFERENCE_CSV = "reference/manipulation/NC2016-manipulation-ref.csv"
# Columns of the reference table naming files that show the same scene as the probe.
RELATED_FILE_COLUMNS = ("BaseFileName", "CorrespondingControlFileName", "DonorFileName")
TYPE_COLUMNS = {
    "IsManipulationTypeRemoval": "removal",
    "IsManipulationTypeSplice": "splicing",
    "IsManipulationTypeCopyClone": "copy_move",
}


def manipulation_type(row: dict[str, str]) -> str:
  kinds = [kind for column, kind in TYPE_COLUMNS.items() if row.get(column) == "Y"]
  if len(kinds) > 1:
    return "mixed"
  return kinds[0] if kinds else "unknown"


class Builder(manual.ManualForgeryBuilder):
  """NIST NC2016 probes: 564 manipulated (IsTarget=Y) and the authentic controls (IsTarget=N).

  Near duplicates: a manipulated probe, its base (world) image, its donor and its authentic control
  probe show the same scene, and several probes share one base. Those links come from the reference
  table (`BaseFileName`, `CorrespondingControlFileName`, `DonorFileName`); their connected
  components are the split groups, so no scene is in two splits.
  """

  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  NIST Nimble Challenge 2016 data set (NC2016_Test0613), distributed by NIST on request
  (https://www.nist.gov/itl/iad/mig/nimble-challenge-2017-evaluation, MFC data license). Extract
  it and pass its top folder (or the folder holding it) as the manual directory:

    NC2016_Test0613/
      probe/NC2016_*.jpg
      world/NC2016_*.jpg
      reference/manipulation/NC2016-manipulation-ref.csv   ('|'-separated)
      reference/manipulation/mask/NC2016_*.png             (black = manipulated)

  Columns used: ProbeFileName, ProbeMaskFileName, IsTarget (Y/N), IsManipulationTypeRemoval,
  IsManipulationTypeSplice, IsManipulationTypeCopyClone, BaseFileName,
  CorrespondingControlFileName, DonorFileName. The removal/ and splice/ tables are not needed.
  Splits: seeded 70/5/25 with all probes of one scene in one split.
  """

  def _list_candidates(self, manual_dir: pathlib.Path) -> list[manual.Candidate]:
    root = self._dataset_root(manual_dir)
    with open(root / REFERENCE_CSV, newline="", encoding="utf-8") as table:
      rows = list(csv.DictReader(table, delimiter="|"))
    scenes = manual.UnionFind()
    for row in rows:
      scenes.union([row["ProbeFileName"]] + [row[c] for c in RELATED_FILE_COLUMNS if row.get(c)])
    candidates, seen = [], set()
    for row in rows:
      probe = row["ProbeFileName"]
      name = manual.relative_name(root / probe, manual_dir)
      if probe in seen:
        self._skip(name, "listed twice in the reference table; first row used")
        continue
      seen.add(probe)
      if row["IsTarget"] == "Y":
        if not row.get("ProbeMaskFileName"):
          self._skip(name, "manipulated (IsTarget=Y) but ProbeMaskFileName is empty")
          continue
        mask = root / row["ProbeMaskFileName"]
        if not mask.is_file():
          self._skip(name, f"missing mask {row['ProbeMaskFileName']}")
          continue
        candidates.append(
            manual.Candidate(
                root / probe,
                mask,
                manual.dark_is_manipulated,
                manipulation_type(row),
                scenes.find(probe),
            )
        )
      else:
        candidates.append(manual.Candidate(root / probe, None, None, "none", scenes.find(probe)))
    return candidates

  def _dataset_root(self, manual_dir: pathlib.Path) -> pathlib.Path:
    for root in [manual_dir, *sorted(p for p in manual_dir.iterdir() if p.is_dir())]:
      if (root / REFERENCE_CSV).is_file():
        return root
    raise self.layout_error(manual_dir, f"no {REFERENCE_CSV}")
