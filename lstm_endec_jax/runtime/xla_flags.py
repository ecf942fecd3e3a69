"""XLA settings the package chooses for speed, applied before JAX starts its backend.

XLA reads `XLA_FLAGS` once, when the first computation starts its backend, so setting the variable
at import time of this package works even when JAX itself was imported first. A flag the user has
already set in `XLA_FLAGS` is left as the user set it.

On CPU, jaxlib 0.10 hands every convolution to a YNNPACK fusion that runs on one core, while
Eigen's convolution uses them all: taking convolutions out of that fusion makes the train step
several times faster on a 2-core CPU with the same results (README, Speed). The flag is set only
for the jaxlib versions where it was measured, since XLA refuses to start on a flag it does not
know.
"""

import os

import jaxlib

ENV_VAR = "XLA_FLAGS"
# flag name -> value, by the jaxlib minor versions (major.minor) on which each was measured.
CPU_DEFAULTS = {
    "xla_cpu_experimental_ynn_fusion_type": ("-individual_convolution", ("0.10",)),
}


def defaults_for(jaxlib_version: str) -> dict[str, str]:
  """The flags this package sets for one jaxlib version."""
  minor = ".".join(jaxlib_version.split(".")[:2])
  return {name: value for name, (value, versions) in CPU_DEFAULTS.items() if minor in versions}


def with_defaults(xla_flags: str, defaults: dict[str, str]) -> str:
  """`xla_flags` plus each default whose flag it does not already set."""
  present = {flag.lstrip("-").split("=")[0] for flag in xla_flags.split()}
  added = [f"--{name}={value}" for name, value in defaults.items() if name not in present]
  return " ".join([xla_flags.strip(), *added]).strip()


def apply_defaults() -> str:
  """Adds the package's defaults to the environment's XLA_FLAGS; returns the result."""
  flags = with_defaults(os.environ.get(ENV_VAR, ""), defaults_for(jaxlib.__version__))
  os.environ[ENV_VAR] = flags
  return flags
