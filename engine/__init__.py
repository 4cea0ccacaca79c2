"""tidegate's runtime: record schemas, validation, readers, storage, the CLI.

`engine` imports nothing else of ours; `models` and `flows` stand on it (see ARCHITECTURE.md).
"""

__version__ = "0.1.0"
