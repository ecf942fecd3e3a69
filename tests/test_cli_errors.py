"""Every mistake a user can make on the command line ends in one `error:` line, no traceback,
and a non-zero exit, before any compile or data work (issue: reliability)."""

import os
import pathlib
import subprocess
import sys

import pytest

from configs import smoke
from lstm_endec_jax.runtime.errors import ConfigError
from lstm_endec_jax.training import train
from tfds_builders.synthetic_splice import synthetic_splice_dataset_builder as builder_lib
import console

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def _run(*args: str, cwd=REPO_ROOT, timeout: int = 120) -> subprocess.CompletedProcess:
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
  return subprocess.run(
      [sys.executable, "-m", *args],
      cwd=cwd,
      env=env,
      capture_output=True,
      text=True,
      timeout=timeout,
  )


@pytest.mark.parametrize(
    "override, expected",
    [
        ("log_every_steps=0", "config.log_every_steps=0 is not allowed: a whole number > 0"),
        (
            "batch_size=3",
            "The batch size (3) must be a positive multiple of the number of devices (2",
        ),
        ("learning_rate=nan", "config.learning_rate=nan is not allowed: a finite number >= 0"),
        (
            "dataset.name=nist17",
            "config.dataset.name='nist17' is not a dataset of this project; "
            "known: casia (v1, v2)",
        ),
    ],
)
def test_bad_config_fields_fail_in_one_short_line(tmp_path, override, expected):
  """The command line's path: a field check, the device check, a value parsed from text, and the
  dataset registry, each as one `error:` line in a short stderr, exit status 2."""
  result = _run(
      "lstm_endec_jax.main",
      "--config=configs/smoke.py",
      f"--workdir={tmp_path}/run",
      f"--config.{override}",
  )
  assert result.returncode == 2
  assert expected in console.one_error_line(result.stderr)
  assert len(result.stderr.splitlines()) < 5, result.stderr
  assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("eval_every_steps", 0, "config.eval_every_steps=0 is not allowed"),
        ("checkpoint_every_steps", 0, "config.checkpoint_every_steps=0 is not allowed"),
        ("num_train_steps", -5, "0 = no training: evaluate the workdir's checkpoint"),
        ("batch_size", 0, "config.batch_size=0 is not allowed"),
        ("batch_size", -4, "config.batch_size=-4 is not allowed"),
        ("loss", "focal", "config.loss='focal' is not allowed: one of weighted_softmax_ce"),
        ("schedule", "linear", "config.schedule='linear' is not allowed"),
        ("model.dtype", "float16", "config.model.dtype='float16' is not allowed"),
        ("num_test_batches", 0, "config.num_test_batches=0 is not allowed: -1 (the whole split)"),
        ("dataset.name", "synthetic_splice/huge", "synthetic_splice has no config 'huge'"),
        ("dataset.mixture", "nist16", "config.dataset.mixture='nist16': expected 'name:value'"),
        ("init_from", "/no/such/run", "config.init_from='/no/such/run' is not allowed"),
    ],
)
def test_bad_config_fields_are_refused_before_any_work(tmp_path, field, value, expected):
  """Every other field, through the same `train_and_evaluate` the command calls (in this process:
  the command line's printing of a `ConfigError` is the test above)."""
  config = smoke.get_config()
  config.update_from_flattened_dict({field: value})
  with pytest.raises(ConfigError) as error:
    train.train_and_evaluate(config, str(tmp_path / "run"))
  assert expected in str(error.value)
  assert not (tmp_path / "run" / "checkpoints").exists()


def test_missing_config_file(tmp_path):
  result = _run("lstm_endec_jax.main", "--config=configs/no_such.py", f"--workdir={tmp_path}")
  assert result.returncode == 2
  assert "--config=configs/no_such.py: no such config file" in console.one_error_line(result.stderr)


def test_evaluate_only_on_a_fresh_workdir(tmp_path):
  data_dir = tmp_path / "tfds"
  result = _run(
      "lstm_endec_jax.main",
      "--config=configs/smoke.py",
      f"--workdir={tmp_path}/run",
      "--config.num_train_steps=0",
      f"--config.dataset.data_dir={data_dir}",
      timeout=300,
  )
  assert result.returncode == 1
  line = console.one_error_line(result.stderr)
  assert "No checkpoint found" in line and "num_train_steps=0 evaluates an existing" in line


def test_build_dataset_without_its_manual_dir(tmp_path):
  result = _run(
      "lstm_endec_jax.build_dataset",
      "--name=coverage",
      f"--data_dir={tmp_path}/tfds",
      f"--manual_dir={tmp_path}/missing",
  )
  assert result.returncode == 1
  assert "Traceback" not in result.stderr
  first = result.stderr.split("error: ", 1)[1].splitlines()[0]
  assert first.startswith("coverage: ") and "--manual_dir" in first


def test_build_dataset_unknown_name(tmp_path):
  result = _run("lstm_endec_jax.build_dataset", "--name=cocoa", f"--data_dir={tmp_path}")
  assert result.returncode == 2
  assert "--name='cocoa' is not a dataset of this project" in console.one_error_line(result.stderr)


def test_build_dataset_twice_says_it_is_built_and_force_rebuilds(tmp_path):
  args = ("lstm_endec_jax.build_dataset", "--name=synthetic_splice/tiny", f"--data_dir={tmp_path}")
  version_dir = tmp_path / "synthetic_splice" / "tiny"
  version = builder_lib.Builder.VERSION
  leftover = version_dir / f"incomplete.ABC123_{version}"  # what a killed build leaves
  leftover.mkdir(parents=True)
  first = _run(*args, timeout=300)
  assert first.returncode == 0 and "built in" in first.stdout, first.stderr[-2000:]
  assert not leftover.exists()
  again = _run(*args)
  assert again.returncode == 0 and "already built" in again.stdout and "--force" in again.stdout
  marker = version_dir / str(version) / "marker"
  marker.write_text("old build")
  forced = _run(*args, "--force", timeout=300)
  assert forced.returncode == 0 and "built in" in forced.stdout
  assert not marker.exists()


def test_no_command_turns_errors_into_exit_codes_by_hand():
  """`cli.run` is the one map from errors to exit codes (lstm_endec_jax/runtime/errors.py)."""
  commands = []
  for path in sorted((REPO_ROOT / "lstm_endec_jax").glob("*.py")):
    text = path.read_text()
    if path.name == "cli.py":
      continue
    assert "exit_with(" not in text and "sys.exit(" not in text, path
    if 'if __name__ == "__main__":' in text:
      commands.append(path.stem)
      assert "cli.run(main" in text and "app.run(" not in text, path
  assert {"main", "evaluate", "predict", "protocol", "build_dataset", "pretrained"} <= set(commands)


@pytest.mark.parametrize(
    "args, code, expected",
    [
        (("lstm_endec_jax.main",), 2, "--config is required"),
        (("lstm_endec_jax.evaluate",), 2, "--config is required"),
        (("lstm_endec_jax.predict", "--output=OUT/file", "IMAGE"), 1, "OUT/file"),
    ],
)
def test_usage_and_output_mistakes_end_in_one_line(tmp_path, args, code, expected):
  """No --config is a usage error (2); an --output under an existing file names that place."""
  (tmp_path / "file").write_text("a file, not a folder")
  image = REPO_ROOT / "docs" / "images" / "predict_sample.png"
  args = [a.replace("OUT", str(tmp_path)).replace("IMAGE", str(image)) for a in args]
  result = _run(*args, timeout=300)
  assert result.returncode == code, result.stderr[-3000:]
  assert expected.replace("OUT", str(tmp_path)) in console.one_error_line(result.stderr)
