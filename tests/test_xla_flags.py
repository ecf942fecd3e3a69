"""The package's XLA defaults: set where measured, never over a user's own flag."""

import os
import subprocess
import sys

from lstm_endec_jax import xla_flags


def test_defaults_are_added_to_other_flags():
  flags = xla_flags.with_defaults("--xla_force_host_platform_device_count=2", {"xla_a": ""})
  assert flags.split() == ["--xla_force_host_platform_device_count=2", "--xla_a="]


def test_a_users_own_setting_wins():
  assert xla_flags.with_defaults("--xla_a=individual", {"xla_a": ""}) == "--xla_a=individual"
  assert xla_flags.with_defaults("xla_a=1", {"xla_a": ""}) == "xla_a=1"


def test_only_measured_jaxlib_versions_get_the_ynnpack_flag():
  assert "xla_cpu_experimental_ynn_fusion_type" in xla_flags.defaults_for("0.10.2")
  assert xla_flags.defaults_for("0.99.0") == {}


def test_importing_the_package_sets_the_environment_before_the_backend_starts():
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  script = (
      "import jax, lstm_endec_jax, os, jaxlib; jax.numpy.ones(2).block_until_ready(); "
      "from lstm_endec_jax import xla_flags as f; "
      "assert os.environ['XLA_FLAGS'].split() == [f'--{k}={v}' for k, v in "
      "f.defaults_for(jaxlib.__version__).items()], os.environ['XLA_FLAGS']"
  )
  subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=120)
