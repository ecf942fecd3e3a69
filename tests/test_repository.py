"""The repository is self-contained: a fresh clone has everything its tests read."""

import ast
import pathlib
import re
import subprocess
import sys

from lstm_endec_jax.runs import layout
from tests import conftest

# A path that climbs out of the checkout to a sibling folder such as the "shared" one beside it.
OUTSIDE_PATH = re.compile(r"""(\.\./|parents?\[\d\]\s*/\s*["'])shared|REPO_ROOT\.parent""")


def test_reference_vectors_live_in_the_repository(hled_reference_dir):
  assert hled_reference_dir.resolve().is_relative_to(conftest.REPO_ROOT)
  assert sorted(p.name for p in hled_reference_dir.glob("*.hdf5")) == [
      "test_imgs_feat_v2.hdf5",
      "test_imgs_v2.hdf5",
  ]


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


def test_code_is_formatted():
  """pyink, configured in pyproject.toml, has nothing to change."""
  result = subprocess.run(
      [sys.executable, "-m", "pyink", "--check", "--quiet", "."],
      cwd=conftest.REPO_ROOT,
      capture_output=True,
      text=True,
      check=False,
  )
  assert result.returncode == 0, result.stderr[-2000:]


def _string_constants(path: pathlib.Path) -> set[str]:
  tree = ast.parse(path.read_text(encoding="utf-8"))
  return {
      node.value
      for node in ast.walk(tree)
      if isinstance(node, ast.Constant) and isinstance(node.value, str)
  }


def test_only_runs_names_the_files_of_a_working_directory():
  names = {
      value
      for name, value in vars(layout).items()
      if name.endswith(("_FILE", "_DIR", "_JSON", "_TABLE", "_PLOT")) and isinstance(value, str)
  }
  assert {"config.json", "eval.json", "metrics.jsonl", "checkpoints"} <= names
  offenders = {}
  for folder in ("lstm_endec_jax", "experiments", "benchmarks"):
    for path in (conftest.REPO_ROOT / folder).rglob("*.py"):
      if path.name != "layout.py" and (found := names & _string_constants(path)):
        offenders[str(path.relative_to(conftest.REPO_ROOT))] = sorted(found)
  assert not offenders, f"workdir file names outside layout.py: {offenders}"


def _imported_modules(path: pathlib.Path) -> set[str]:
  imported = set()
  for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
    if isinstance(node, ast.ImportFrom) and node.module:
      imported |= {f"{node.module}.{alias.name}" for alias in node.names} | {node.module}
    elif isinstance(node, ast.Import):
      imported |= {alias.name for alias in node.names}
  return imported


def test_evaluation_and_inference_do_not_reach_into_training():
  package = conftest.REPO_ROOT / "lstm_endec_jax"
  for module, forbidden in (
      ("evaluate.py", {"lstm_endec_jax.training.train", "lstm_endec_jax.inference.localizer"}),
      ("inference/localizer.py", {"lstm_endec_jax.training.train", "lstm_endec_jax.evaluate"}),
      ("evaluation/evaluator.py", {"lstm_endec_jax.training.train", "lstm_endec_jax.evaluate"}),
  ):
    assert not _imported_modules(package / module) & forbidden, module


def test_the_builders_import_only_a_leaf_of_the_package():
  """tfds_builders may use the image decoder, which imports only `runtime.files` (which imports
  nothing of ours), so that no import climbs back from the builders into the package that
  imports them."""
  package = conftest.REPO_ROOT / "lstm_endec_jax"
  ours = lambda path: {n for n in _imported_modules(path) if n.startswith("lstm_endec_jax")}
  assert ours(package / "data" / "image_io.py") <= {
      "lstm_endec_jax.runtime",
      "lstm_endec_jax.runtime.files",
  }
  assert not ours(package / "runtime" / "files.py")
  used = set()
  for path in (conftest.REPO_ROOT / "tfds_builders").rglob("*.py"):
    used |= {name for name in _imported_modules(path) if name.startswith("lstm_endec_jax")}
  assert used <= {"lstm_endec_jax.data", "lstm_endec_jax.data.image_io"}, used


def test_prediction_imports_neither_tfds_nor_grain():
  """The inference API predicts with the shipped weights without the data stack."""
  script = (
      "import sys\n"
      "import numpy as np\n"
      "from lstm_endec_jax.inference import localizer\n"
      "heatmap = localizer.Localizer.from_pretrained().predict(np.zeros((64, 80, 3), np.uint8))\n"
      "assert heatmap.shape == (64, 80), heatmap.shape\n"
      "loaded = {m for m in sys.modules if m.split('.')[0] in "
      "('tensorflow_datasets', 'grain', 'tensorflow', 'tfds_builders')}\n"
      "assert not loaded, sorted(loaded)[:5]\n"
  )
  subprocess.run([sys.executable, "-c", script], check=True, timeout=300, cwd=conftest.REPO_ROOT)
