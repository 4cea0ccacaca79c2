"""Which files in a folder still need ingesting: new or changed content (by sha256), settled on disk."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine.ingest.files import discover, sha256_file


@dataclass
class Pending:
    """Remembers each file's (size, mtime) -> sha256 so a scan hashes only what changed."""

    root: Path
    settle_s: float = 1.0
    _hashes: dict[Path, tuple[int, int, str]] = field(default_factory=dict)

    def scan(self, ingested: set[str], now: Callable[[], float] = time.time) -> list[Path]:
        """Files whose content hash is not in `ingested`, skipping files modified in the last settle_s
        (a writer may still be busy) and duplicates of content already picked in this scan."""
        picked: list[Path] = []
        seen: set[str] = set()
        for path in discover([self.root]):
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            if now() - st.st_mtime < self.settle_s:
                continue
            cached = self._hashes.get(path)
            if cached and cached[:2] == (st.st_size, st.st_mtime_ns):
                digest = cached[2]
            else:
                digest = sha256_file(path)
                self._hashes[path] = (st.st_size, st.st_mtime_ns, digest)
            if digest in ingested or digest in seen:
                continue
            seen.add(digest)
            picked.append(path)
        return picked
