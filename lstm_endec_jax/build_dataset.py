"""Builds TFDS datasets without TensorFlow (the `tfds build` CLI imports TensorFlow).

  python -m lstm_endec_jax.build_dataset --name=synthetic_splice/default
  python -m lstm_endec_jax.build_dataset --name=nist16 --manual_dir=/data/manual/nist16

Offline: synthetic_splice's configs (except `manual`) need no files at all; the others read
`--manual_dir`. Datasets already built in `--data_dir` are left alone.
"""
from absl import app
from absl import flags
import ml_collections

from lstm_endec_jax import input_pipeline

_NAMES = flags.DEFINE_list("name", ["synthetic_splice/default"], "TFDS names (with config).")
_DATA_DIR = flags.DEFINE_string("data_dir", input_pipeline.default_data_dir(), "TFDS data dir.")
_MANUAL_DIR = flags.DEFINE_string("manual_dir", "", "Manual-download dir; '' = TFDS default.")


def main(argv):
  del argv
  for name in _NAMES.value:
    config = ml_collections.ConfigDict()
    config.dataset = input_pipeline.default_dataset_config()
    config.dataset.update(name=name, data_dir=_DATA_DIR.value, manual_dir=_MANUAL_DIR.value)
    input_pipeline.ensure_dataset_built(config)
    print(f"{name}: built in {_DATA_DIR.value}")


if __name__ == "__main__":
  app.run(main)
