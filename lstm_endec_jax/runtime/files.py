"""Writing files: whole or not at all (`replace_atomically`), and what made a write fail
(`write_failure`), the one place that sorts failed writes for every command's error line.

A crash, a kill or a full disk in the middle of a write leaves the old file or the new one, never a
torn one, and no temporary file behind. Imports nothing of the package, so the image decoder (which
the dataset builders import) can use it too.
"""

import errno
import os
import pathlib
import re
from collections.abc import Callable

# The failures of a write that the user mends outside the program (room, limits, permissions).
_WRITE_FAILURES = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EFBIG: "a file-size limit was reached",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}
# How TensorStore (Orbax's writer) quotes the errno of a failed write in its errors' text.
_QUOTED_ERRNO = re.compile(r"os_error_code='(\d+)'")


def write_failure(error: BaseException) -> str | None:
  """What made a write fail, in a few words, when `error` is a write that failed for want of room
  or permission; None for any other error.

  Libraries that write through their own C++ code raise no OSError but quote one in their text:
  TensorStore as `[os_error_code='28']`, TFDS's record writers as the OS's message or "write()
  failed".
  """
  if isinstance(error, OSError) and error.errno is not None:
    return _WRITE_FAILURES.get(error.errno)
  text = str(error)
  quoted = _QUOTED_ERRNO.search(text)
  if quoted:
    return _WRITE_FAILURES.get(int(quoted.group(1)))
  for number, reason in _WRITE_FAILURES.items():
    if os.strerror(number) in text:
      return reason
  return "a write failed" if "write() failed" in text else None


def replace_atomically(path: str | os.PathLike[str], write: Callable[[pathlib.Path], None]) -> None:
  """Calls `write(temporary)` for a temporary file beside `path`, then renames it to `path`."""
  path = pathlib.Path(path)
  temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
  try:
    write(temporary)
    os.replace(temporary, path)
  except BaseException as error:
    temporary.unlink(missing_ok=True)
    if isinstance(error, OSError) and not error.filename:  # e.g. raised by a library's writer
      error.filename = str(path)
    raise
