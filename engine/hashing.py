"""Content hashes: one sha256 of a file, used by ingestion (never twice) and the registry (artifact checks)."""

from __future__ import annotations

import hashlib
from pathlib import Path

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """The hex sha256 of the file's bytes, read in 1 MiB chunks (hashlib releases the GIL on each)."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()
