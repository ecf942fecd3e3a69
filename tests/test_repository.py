"""The repository is self-contained: a fresh clone has everything its tests read."""
import pathlib
import re

from tests import conftest

# A path that climbs out of the checkout to a sibling folder such as the "shared" one beside it.
OUTSIDE_PATH = re.compile(r"""(\.\./|parents?\[\d\]\s*/\s*["'])shared|REPO_ROOT\.parent""")


def test_reference_vectors_live_in_the_repository(hled_reference_dir):
  assert hled_reference_dir.resolve().is_relative_to(conftest.REPO_ROOT)
  assert sorted(p.name for p in hled_reference_dir.glob("*.hdf5")) == [
      "test_imgs_feat_v2.hdf5", "test_imgs_v2.hdf5"]


def test_no_code_reads_outside_the_repository():
  offenders = []
  for path in conftest.REPO_ROOT.rglob("*.py"):
    relative = path.relative_to(conftest.REPO_ROOT)
    if relative.parts[0].startswith(".") or "site-packages" in relative.parts:
      continue
    text = path.read_text(encoding="utf-8")
    if path.name != "test_repository.py" and OUTSIDE_PATH.search(text):
      offenders.append(str(relative))
  assert not offenders, f"code that reads outside the repository: {offenders}"
