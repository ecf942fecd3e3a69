"""Shared test fixtures.

Tests see two simulated CPU devices so the data-parallel code paths run in CI without a GPU.
"""

import os
import pathlib

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")

import pytest  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def hled_reference_dir() -> pathlib.Path:
  """The authors' test vectors, kept in the repository (`tests/data/hled/README.md`)."""
  return REPO_ROOT / "tests" / "data" / "hled"


# Modules whose tests run whole training runs or child processes (a minute or more each). They
# are collected first, so that pytest-xdist starts them early and the short tests fill the gaps,
# instead of one worker finishing a long test alone at the end.
LONG_RUNNING_MODULES = (
    "test_train.py",
    "test_benchmarks.py",
    "test_experiments.py",
    "test_multiprocess.py",
    "test_evaluate.py",
    "test_protocol.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
  def rank(item: pytest.Item) -> int:
    name = item.path.name
    return (
        LONG_RUNNING_MODULES.index(name)
        if name in LONG_RUNNING_MODULES
        else len(LONG_RUNNING_MODULES)
    )

  items.sort(key=rank)
