"""Errors a command reports to its user as one `error:` line, not as a traceback."""


class ConfigError(ValueError):
  """A config field or command-line flag holds a value the project cannot run with."""
