"""An image folder (one subfolder per class) → uint8 pixels and labels; the stratified train/validation split.

Decoding is the server's (`engine.serve.classify.decode_image`): the same conversion and resize the
network meets in production. A file that cannot be decoded is not fatal: it is skipped with its reason
and listed in the report. Hidden files and folders, and files with other extensions, are ignored.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import msgspec
import numpy as np

from engine.registry import ImageInput
from engine.serve.classify import ImageError, decode_image
from models.images.errors import ImageDataError, ImageUsageError

EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})


class SkippedFile(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    reason: str  # ImageError reason code
    message: str


@dataclass(frozen=True, slots=True)
class ImageSet:
    root: Path
    classes: tuple[str, ...]
    pixels: np.ndarray  # (N, H, W, C) uint8
    labels: np.ndarray  # (N,) int64 class codes (index into classes)
    paths: tuple[str, ...]  # relative to root
    skipped: tuple[SkippedFile, ...]
    fingerprint: str  # sha256 over the relative paths and bytes of the files used

    def counts(self) -> tuple[int, ...]:
        return tuple(int(n) for n in np.bincount(self.labels, minlength=len(self.classes)))


def scan(root: Path) -> dict[str, list[Path]]:
    """Class name → its image files (sorted), for each non-hidden subfolder of `root`."""
    root = Path(root)
    if not root.is_dir():
        msg = f"--data {root}: not a folder; give a folder with one subfolder of images per class"
        raise ImageUsageError(msg)
    found = {
        d.name: sorted(f for f in d.rglob("*") if f.is_file() and f.suffix.lower() in EXTENSIONS and _visible(f, d))
        for d in sorted(root.iterdir())
        if d.is_dir() and not d.name.startswith(".")
    }
    return {k: v for k, v in found.items() if v}


def _visible(path: Path, top: Path) -> bool:
    return not any(part.startswith(".") for part in path.relative_to(top).parts)


def load_folder(root: Path, spec: ImageInput) -> ImageSet:
    """Decode every image under `root` as `spec` says; ImageDataError if it cannot train a classifier."""
    root = Path(root)
    files = scan(root)
    pixels: list[np.ndarray] = []
    labels: list[int] = []
    paths: list[str] = []
    skipped: list[SkippedFile] = []
    digest = hashlib.sha256()
    classes = tuple(files)
    for code, cls in enumerate(classes):
        for f in files[cls]:
            rel = f.relative_to(root).as_posix()
            data = f.read_bytes()
            try:
                pixels.append(decode_image(data, spec))
            except ImageError as exc:
                skipped.append(SkippedFile(path=rel, reason=exc.reason, message=exc.message))
                continue
            labels.append(code)
            paths.append(rel)
            digest.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
    y = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(y, minlength=len(classes)) if len(classes) else np.zeros(0, dtype=np.int64)
    if len(classes) < 2:
        msg = f"--data {root}: found {len(classes)} class folder(s) with images; a classifier needs at least 2"
        raise ImageDataError(msg)
    few = [f"{c} ({n})" for c, n in zip(classes, counts, strict=True) if n < 2]
    if few:
        msg = f"--data {root}: each class needs at least 2 readable images; too few in {', '.join(few)}"
        raise ImageDataError(msg)
    return ImageSet(
        root=root,
        classes=classes,
        pixels=np.stack(pixels),
        labels=y,
        paths=tuple(paths),
        skipped=tuple(skipped),
        fingerprint=digest.hexdigest(),
    )


def stratified_split(labels: np.ndarray, val_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation indices with each class split in the same proportion (at least one of each per side)."""
    rng = np.random.default_rng(seed)
    train: list[np.ndarray] = []
    val: list[np.ndarray] = []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = min(max(1, round(len(idx) * val_size)), len(idx) - 1)
        val.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))
