"""The registry's errors (all `engine.errors.TidegateError`s, so the CLI prints one line).

RegistryError              the registry folder cannot be read or written, or an artifact fails its sha256
├── UnknownModelError      no such model name or version (a usage error: exit 2)
└── HistoryError           promote/rollback asked for something the history does not allow (exit 2)
"""

from __future__ import annotations

from engine.errors import TidegateError, UsageError


class RegistryError(TidegateError):
    """The registry cannot be read or written, or an artifact does not match its manifest."""


class UnknownModelError(RegistryError, UsageError):
    """A model name or version that the registry does not hold."""

    exit_code = 2


class HistoryError(RegistryError, UsageError):
    """A promote or rollback that the live history does not allow (e.g. nothing to roll back to)."""

    exit_code = 2
