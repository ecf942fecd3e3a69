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
  """The authors' test vectors: `../shared/reference/hled` beside the checkout."""
  path = REPO_ROOT.parent / "shared" / "reference" / "hled"
  if not path.is_dir():
    raise FileNotFoundError(f"HLED reference vectors not found at {path}")
  return path
