"""Shared test fixtures.

Tests see two simulated CPU devices so the data-parallel code paths run in CI without a GPU.
"""

import os
import pathlib

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
# The commands' settings, for the tests' own process and the commands they start: the package's
# XLA flags, and huge pages asked already (so that no command starts itself a second time).
os.environ.setdefault("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1")

import pytest  # noqa: E402

from lstm_endec_jax.runtime import xla_flags  # noqa: E402

xla_flags.apply_defaults()

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def hled_reference_dir() -> pathlib.Path:
  """The authors' test vectors, kept in the repository (`tests/data/hled/README.md`)."""
  return REPO_ROOT / "tests" / "data" / "hled"
