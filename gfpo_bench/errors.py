"""Errors that mean "the user's input is wrong": reported as one line, never a deep traceback."""


class ConfigError(ValueError):
    """A config value is unknown or out of range."""
