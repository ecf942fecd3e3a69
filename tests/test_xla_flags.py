"""The package's XLA defaults: set where measured, never over a user's own flag."""

import os
import subprocess
import sys

from lstm_endec_jax.runtime import huge_pages
from lstm_endec_jax.runtime import xla_flags


def test_defaults_are_added_to_other_flags():
  flags = xla_flags.with_defaults("--xla_force_host_platform_device_count=2", {"xla_a": ""})
  assert flags.split() == ["--xla_force_host_platform_device_count=2", "--xla_a="]


def test_a_users_own_setting_wins():
  assert xla_flags.with_defaults("--xla_a=individual", {"xla_a": ""}) == "--xla_a=individual"
  assert xla_flags.with_defaults("xla_a=1", {"xla_a": ""}) == "xla_a=1"


def test_only_measured_jaxlib_versions_get_the_ynnpack_flag():
  assert "xla_cpu_experimental_ynn_fusion_type" in xla_flags.defaults_for("0.10.2")
  assert xla_flags.defaults_for("0.99.0") == {}


def test_importing_the_package_changes_no_environment_variable():
  # The libraries first: some set variables of their own on import (TF_CPP_MIN_LOG_LEVEL,
  # CRC32C_SW_MODE, ...), so that what changes after them is ours.
  script = (
      "import os, cv2, jax, orbax.checkpoint, tensorboardX, tensorflow_datasets; "
      "before = dict(os.environ); "
      "import lstm_endec_jax, lstm_endec_jax.main, lstm_endec_jax.predict, lstm_endec_jax.inference.localizer; "
      "assert dict(os.environ) == before, set(os.environ.items()) ^ set(before.items())"
  )
  subprocess.run([sys.executable, "-c", script], check=True, timeout=120)


def test_a_command_sets_the_flags_before_the_backend_starts():
  """`cli.run` (every command's start) adds the defaults before any computation."""
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  script = (
      "import jax, jaxlib, os; from lstm_endec_jax.runtime import cli, xla_flags as f\n"
      "def main(argv):\n"
      "  jax.numpy.ones(2).block_until_ready()\n"
      "  assert os.environ['XLA_FLAGS'].split() == [f'--{k}={v}' for k, v in "
      "f.defaults_for(jaxlib.__version__).items()], os.environ['XLA_FLAGS']\n"
      "cli.run(main)"
  )
  subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=120)


def test_huge_pages_are_asked_once_and_never_over_a_users_setting():
  asked = huge_pages.with_tunable({"PATH": "/bin"})
  if asked is None:  # Not Linux with glibc 2.35+ and transparent huge pages: nothing to ask.
    return
  assert asked == {"PATH": "/bin", "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}
  assert huge_pages.with_tunable({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}) == {
      "GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"
  }
  assert huge_pages.with_tunable(asked) is None
  assert huge_pages.with_tunable({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}) is None


def test_a_long_running_command_starts_again_with_huge_pages(tmp_path):
  """The same process (pid) and arguments, with the tunable, and the command runs once."""
  env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
  if huge_pages.with_tunable(env) is None:
    return
  script = tmp_path / "command.py"
  script.write_text(
      "import os, sys\n"
      "from lstm_endec_jax.runtime import cli\n"
      "print('started', os.getpid(), flush=True)\n"
      "def main(argv):\n"
      "  print('ran', os.getpid(), os.environ['GLIBC_TUNABLES'], argv[1:])\n"
      "cli.run(main, huge_pages=True)\n"
  )
  result = subprocess.run(
      [sys.executable, str(script), "a", "b c"],
      env=env,
      capture_output=True,
      text=True,
      check=True,
      timeout=120,
  )
  lines = result.stdout.splitlines()
  (first_pid,), (second_pid,) = [line.split()[1:] for line in lines if line.startswith("started")]
  assert first_pid == second_pid
  assert [line for line in lines if line.startswith("ran")] == [
      f"ran {first_pid} glibc.malloc.hugetlb=1 ['a', 'b c']"
  ]
