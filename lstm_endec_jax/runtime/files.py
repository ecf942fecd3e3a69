"""Files written whole or not at all: the one way this package replaces a file.

A crash, a kill or a full disk in the middle of a write leaves the old file or the new one, never a
torn one, and no temporary file behind. Imports nothing of the package, so the image decoder (which
the dataset builders import) can use it too.
"""

import os
import pathlib
from collections.abc import Callable


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
