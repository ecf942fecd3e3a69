"""Transparent huge pages for the memory XLA allocates on the CPU (README, Speed).

XLA's CPU runtime takes every step's buffers from malloc (2.6 GB of temporaries for the `base`
train step at batch 16, and Eigen's patch buffers of up to 1.1 GB per convolution), and glibc
serves allocations that large with fresh mmap'd memory: each train step then takes about 660,000
page faults, and the memory-bound passes (BatchNorm, ReLU, pooling, elementwise gradients) move
2-3 GB/s. glibc's tunable `glibc.malloc.hugetlb=1` (glibc 2.35 and newer) asks the kernel for
transparent huge pages on that memory: 2 MiB pages, 300 times fewer faults, and a train step about
10% faster on a 2-core CPU (benchmarks/cpu_settings.py). glibc reads tunables only when a process
starts, so a command that wants them starts itself once more with the tunable set
(`relaunch_with_huge_pages`); the same command line, the same process id.

Set `GLIBC_TUNABLES` yourself (any value naming `glibc.malloc.hugetlb`, e.g. `=0` to turn this
off) and the command runs as it was started.
"""

import os
import pathlib
import platform
import sys
from collections.abc import Mapping

ENV_VAR = "GLIBC_TUNABLES"
TUNABLE = "glibc.malloc.hugetlb"
MINIMUM_GLIBC = (2, 35)
THP_MODE_FILE = pathlib.Path("/sys/kernel/mm/transparent_hugepage/enabled")


def _glibc_supports_tunable() -> bool:
  library, version = platform.libc_ver()
  if library != "glibc" or not version:
    return False
  return tuple(int(part) for part in version.split(".")[:2]) >= MINIMUM_GLIBC


def _kernel_offers_huge_pages() -> bool:
  """The kernel gives transparent huge pages to memory that asks (mode `always` or `madvise`)."""
  try:
    mode = THP_MODE_FILE.read_text()
  except OSError:
    return False
  return "[always]" in mode or "[madvise]" in mode


def with_tunable(environ: Mapping[str, str]) -> dict[str, str] | None:
  """`environ` with huge pages asked of glibc, or None where that would change nothing: not Linux
  with glibc 2.35+, no transparent huge pages in the kernel, or `GLIBC_TUNABLES` already says."""
  tunables = environ.get(ENV_VAR, "")
  if TUNABLE in tunables or sys.platform != "linux":
    return None
  if not (_glibc_supports_tunable() and _kernel_offers_huge_pages()):
    return None
  setting = f"{TUNABLE}=1"
  return {**environ, ENV_VAR: f"{tunables}:{setting}" if tunables else setting}


def relaunch_with_huge_pages() -> None:
  """Replaces this process by the same command line with the tunable set, where it is missing.

  Called first thing by the commands that run long XLA computations (training, evaluation); the
  modules they imported are imported once more by the new process (a few seconds).
  """
  environ = with_tunable(os.environ)
  if environ is None:
    return
  sys.stdout.flush()
  sys.stderr.flush()
  os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environ)
