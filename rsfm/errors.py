"""Exception types. Each says what arrived, what is allowed, and how to fix it."""

from __future__ import annotations

__all__ = [
    "BandError",
    "CardError",
    "ConfigError",
    "DataError",
    "RsfmError",
    "UnknownNameError",
    "WeightsError",
]


class RsfmError(Exception):
    """Base class of every error rsfm raises on purpose."""


class UnknownNameError(RsfmError, LookupError):
    """A backbone, card, head or other registered name does not exist."""

    def __str__(self) -> str:  # KeyError-style quoting would hide the suggestions
        return str(self.args[0]) if self.args else ""


class CardError(RsfmError, ValueError):
    """An adapter card is malformed (the message names the file and the key)."""


class WeightsError(RsfmError, RuntimeError):
    """A checkpoint is missing, corrupt, or does not fit the model (names the file)."""


class BandError(RsfmError, ValueError):
    """A band name is unknown or ambiguous, or bands do not fit the model."""


class ConfigError(RsfmError, ValueError):
    """A bad argument or configuration value (names the argument and the allowed values).

    ``key`` is the field at fault when the error comes from a config class's own check; the
    recipe and ``config.json`` readers prefix it with the section's path (``train.epochs``).
    """

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class DataError(RsfmError, ValueError):
    """Bad input data: missing or corrupt file, mismatched grids, missing band (names the file)."""
