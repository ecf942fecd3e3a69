"""Errors a command reports to its user as one `error:` line and an exit code, not a traceback.

`cli.run` is the one place that turns them into that line: every `UserError` (its own
`exit_code`), every OSError (a full disk, a read-only or missing file), a usage error (2) and a stop
by Ctrl-C or SIGTERM (130 / 143). Commands catch nothing by hand; anything else is a bug and keeps
its traceback.
"""


class UserError(Exception):
  """A failure the user can act on; the message names the file or field and what to do."""

  exit_code = 1


class ConfigError(UserError, ValueError):
  """A config field or command-line flag holds a value the project cannot run with."""

  exit_code = 2
