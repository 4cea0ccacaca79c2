"""The file registry: `ROOT/NAME/VERSION/{artifact, manifest.json}` plus `ROOT/NAME/history.jsonl`.

- Versions are integers from 1, allocated by an atomic rename of a fully written temporary folder, so two
  trainers registering the same name at once both succeed with different versions and no reader ever sees
  a half-written version.
- The live history is append-only JSON lines. Replaying it gives the live version: `promote` pushes a
  version, `rollback` pops back to the one that was live before. Nothing is rewritten.
- Every artifact is checked against its manifest's sha256 before it is handed out.

Stdlib + msgspec only: the server imports this.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec

from engine.hashing import sha256_file
from engine.registry.errors import HistoryError, RegistryError, UnknownModelError
from engine.registry.manifest import HistoryEntry, Manifest

MANIFEST = "manifest.json"
HISTORY = "history.jsonl"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_manifest_decoder = msgspec.json.Decoder(Manifest)
_history_decoder = msgspec.json.Decoder(HistoryEntry)


def default_registry_path() -> Path:
    """`$TIDEGATE_REGISTRY`, else ./registry (ARCHITECTURE.md conventions)."""
    return Path(os.environ.get("TIDEGATE_REGISTRY", "registry"))


def check_name(name: str) -> str:
    if not _NAME.match(name):
        msg = f"bad model name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        raise UnknownModelError(msg)
    return name


@dataclass(frozen=True, slots=True)
class LiveState:
    """The replayed history: the live version (None before the first promote) and the stack behind it."""

    live: int | None
    stack: tuple[int, ...]
    entries: tuple[HistoryEntry, ...]


class Registry:
    """One registry folder. Cheap to construct; every call reads the files afresh (other processes write too)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # -- reading ----------------------------------------------------------------------------------------
    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and _NAME.match(p.name) and self.versions(p.name)
        )

    def versions(self, name: str) -> list[int]:
        folder = self.root / check_name(name)
        if not folder.is_dir():
            return []
        return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit() and (p / MANIFEST).is_file())

    def manifest(self, name: str, version: int | None = None) -> Manifest:
        """The manifest of `version`, or of the live version (else the latest) when `version` is None."""
        if version is None:
            version = self.live(name) or self._latest(name)
        path = self.root / check_name(name) / str(version) / MANIFEST
        if not path.is_file():
            have = ", ".join(map(str, self.versions(name))) or "none"
            msg = f"model {name!r} has no version {version} (versions: {have}); see 'tidegate models list'"
            raise UnknownModelError(msg)
        try:
            return _manifest_decoder.decode(path.read_bytes())
        except (msgspec.DecodeError, OSError) as exc:
            msg = f"cannot read {path}: {exc}; the registry folder is damaged (restore it from a backup)"
            raise RegistryError(msg) from exc

    def artifact(self, name: str, version: int | None = None) -> tuple[Manifest, Path]:
        """The manifest and artifact path, after checking the artifact's sha256 against the manifest."""
        man = self.manifest(name, version)
        path = self.root / name / str(man.version) / man.artifact
        if not path.is_file() or sha256_file(path) != man.sha256:
            msg = f"artifact {path} is missing or does not match its manifest's sha256: do not serve it; retrain"
            raise RegistryError(msg)
        return man, path

    def state(self, name: str) -> LiveState:
        path = self.root / check_name(name) / HISTORY
        entries: list[HistoryEntry] = []
        if path.is_file():
            for no, line in enumerate(path.read_bytes().splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    entries.append(_history_decoder.decode(line))
                except msgspec.DecodeError as exc:
                    msg = f"{path} line {no} is not a history entry ({exc}); fix or remove that line"
                    raise RegistryError(msg) from exc
        stack: list[int] = []
        for e in entries:
            if e.action == "promote":
                stack.append(e.version)
            elif stack:
                stack.pop()
        return LiveState(stack[-1] if stack else None, tuple(stack), tuple(entries))

    def live(self, name: str) -> int | None:
        return self.state(name).live

    def history(self, name: str) -> list[HistoryEntry]:
        return list(self.state(name).entries)

    def _latest(self, name: str) -> int:
        versions = self.versions(name)
        if not versions:
            msg = f"no model named {name!r} in {self.root}; see 'tidegate models list' or train one"
            raise UnknownModelError(msg)
        return versions[-1]

    # -- writing ----------------------------------------------------------------------------------------
    def register(self, manifest: Manifest, artifact: bytes, *, promote: bool) -> Manifest:
        """Store a new version of `manifest.name`; the version, sha256, size and parent are filled in here.

        `promote=True` makes it live (recorded at `manifest.created_at`).
        """
        name = check_name(manifest.name)
        folder = self.root / name
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            msg = f"cannot create {folder}: {exc}; pass a writable --registry DIR"
            raise RegistryError(msg) from exc
        with self._lock(name):
            parent = self.live(name)
            taken = [int(p.name) for p in folder.iterdir() if p.name.isdigit()]
            final = msgspec.structs.replace(
                manifest,
                version=max(taken, default=0) + 1,
                sha256=hashlib.sha256(artifact).hexdigest(),
                size_bytes=len(artifact),
                parent=parent,
            )
            tmp = Path(tempfile.mkdtemp(prefix=".incoming-", dir=folder))
            try:
                tmp.chmod(0o755)  # mkdtemp makes it private; a version folder is readable like any other
                (tmp / manifest.artifact).write_bytes(artifact)
                (tmp / MANIFEST).write_bytes(msgspec.json.format(msgspec.json.encode(final)) + b"\n")
                tmp.rename(folder / str(final.version))  # atomic: readers see all of a version or none
            except OSError as exc:
                msg = f"cannot write {folder / str(final.version)}: {exc}; check the --registry folder"
                raise RegistryError(msg) from exc
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            if promote:
                entry = HistoryEntry(at=final.created_at, action="promote", version=final.version, previous=parent)
                self._append(name, entry)
        return final

    def promote(self, name: str, version: int, at: dt.datetime) -> HistoryEntry:
        """Make `version` live from `at` on."""
        self.manifest(name, version)  # must exist
        with self._lock(name):
            current = self.live(name)
            if current == version:
                msg = f"{name} version {version} is already live; nothing to do"
                raise HistoryError(msg)
            entry = HistoryEntry(at=at, action="promote", version=version, previous=current)
            self._append(name, entry)
        return entry

    def rollback(self, name: str, at: dt.datetime) -> HistoryEntry:
        """Make the version that was live before the current one live again."""
        self._latest(name)  # must exist
        with self._lock(name):
            st = self.state(name)
            if len(st.stack) < 2:
                msg = f"{name} has no earlier live version to roll back to; promote a version instead"
                raise HistoryError(msg)
            entry = HistoryEntry(at=at, action="rollback", version=st.stack[-2], previous=st.live)
            self._append(name, entry)
        return entry

    def _append(self, name: str, entry: HistoryEntry) -> None:
        line = msgspec.json.encode(entry) + b"\n"
        fd = os.open(self.root / name / HISTORY, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def _lock(self, name: str) -> Iterator[None]:
        """An exclusive lock per model name across processes (promote/rollback read then append)."""
        path = self.root / name / ".lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
