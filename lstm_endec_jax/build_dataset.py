"""Builds TFDS datasets without TensorFlow (the `tfds build` CLI imports TensorFlow).

  python -m lstm_endec_jax.build_dataset --name=synthetic_splice/default
  python -m lstm_endec_jax.build_dataset --name=nist16 --manual_dir=/data/manual/nist16

Offline: synthetic_splice's configs (except `manual`) need no files at all; the others read
`--manual_dir`. A dataset already built in `--data_dir` is left alone unless `--force` is given.
Exit codes: 0 built or already there; 1 a dataset could not be built; 2 a bad flag.
"""

from absl import flags

from lstm_endec_jax.data import input_pipeline
from lstm_endec_jax.runtime import cli
from lstm_endec_jax.training import config_checks

_NAMES = flags.DEFINE_list("name", ["synthetic_splice/default"], "TFDS names (with config).")
_DATA_DIR = flags.DEFINE_string("data_dir", input_pipeline.default_data_dir(), "TFDS data dir.")
_MANUAL_DIR = flags.DEFINE_string("manual_dir", "", "Manual-download dir; '' = TFDS default.")
_FORCE = flags.DEFINE_bool("force", False, "Delete and rebuild datasets that are already built.")


def main(argv):
  del argv
  cli.quiet_libraries()
  for name in _NAMES.value:
    config_checks.check_dataset_name(name, "--name")
  for name in _NAMES.value:
    built = input_pipeline.build_dataset(
        name, data_dir=_DATA_DIR.value, manual_dir=_MANUAL_DIR.value, force=_FORCE.value
    )
    if built:
      print(f"{name}: built in {_DATA_DIR.value}")
    else:
      print(
          f"{name}: already built in {_DATA_DIR.value}; nothing done (--force rebuilds it, "
          "e.g. from another --manual_dir)"
      )


if __name__ == "__main__":
  cli.run(main)
