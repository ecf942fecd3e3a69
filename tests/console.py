"""What a command printed: the checks shared by the tests that run commands as real processes."""


def one_error_line(stderr: str) -> str:
  """The single `error:` line of a failed command's stderr, which must hold no traceback."""
  assert "Traceback" not in stderr, stderr[-3000:]
  errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
  assert len(errors) == 1, stderr[-3000:]
  return errors[0]
