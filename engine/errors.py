"""The exception tree, drawn once.

    TidegateError              base: every error we raise on purpose carries a message a user can act on
    ├── UsageError             the command line or config is wrong (exit code 2)
    ├── UnreadableFileError    a whole file cannot be read (empty, unknown format, truncated); a file-level reject
    ├── SchemaError            a schema name is unknown or a schema is declared wrongly
    └── StorageError           the database cannot be opened or written

Bad *records* are not exceptions: they are data (`engine.records.Reject`) and go to the dead letter.
"""


class TidegateError(Exception):
    """Base of every error tidegate raises on purpose."""

    exit_code = 1


class UsageError(TidegateError):
    """The command line, a path or a config value is wrong; the message says which and how to fix it."""

    exit_code = 2


class SchemaError(UsageError):
    """A schema name is unknown or a schema declaration is inconsistent."""


class UnreadableFileError(TidegateError):
    """A file cannot be read at all; it becomes one file-level reject with `reason`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class StorageError(TidegateError):
    """The database cannot be opened or written."""
