"""The `synthetic_splice/tiny` build shared by the synthetic and input-pipeline tests.

Imported by both test modules; the build goes to one folder under the session's base temp dir and
is skipped when already prepared, so it happens once per test process.
"""

import pathlib

import pytest
import tensorflow_datasets as tfds

import tfds_builders  # noqa: F401  (registers synthetic_splice)

TINY = "synthetic_splice/tiny"
OFFLINE = tfds.download.DownloadConfig(try_download_gcs=False)


def build(name: str, data_dir: pathlib.Path) -> pathlib.Path:
  builder = tfds.builder(name, data_dir=data_dir)
  if not builder.is_prepared():
    builder.download_and_prepare(download_config=OFFLINE)
  return data_dir


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
  return build(TINY, tmp_path_factory.getbasetemp() / "tfds_tiny")
