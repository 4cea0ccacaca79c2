"""Real, public image sets that ship inside installed packages (nothing is downloaded), written as a
class-per-folder tree for `tidegate train-images --data DIR`.

faces     scikit-image's LFW subset: 100 faces and 100 non-face patches from Labeled Faces in the Wild,
          25 × 25 grayscale (classes face / background) — the "faces vs background" case
textures  scikit-image's brick, grass and gravel photographs (512 × 512 grayscale) cut into non-overlapping
          64 × 64 tiles: 64 tiles per class (no pixel is in two images, so no split leaks)
digits    scikit-learn's copy of the UCI optical handwritten digits: 1 797 grayscale 8 × 8 images, 10 classes
          (dark ink on white, 8 × 8 PNGs; a stratified, seeded sample of `per_class` per digit)

    python -m models.images.datasets NAME OUT_DIR [PER_CLASS]     # PER_CLASS: digits only (default 40)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

NAMES = ("faces", "textures", "digits")


def write_digits(root: Path, per_class: int | None = 40, *, seed: int = 0) -> Path:
    """Write `per_class` images of each digit (None: all 1 797) under root/0 … root/9; returns root."""
    from PIL import Image
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.asarray(bunch.images)  # (1797, 8, 8) values 0..16, ink high
    target = np.asarray(bunch.target)
    rng = np.random.default_rng(seed)
    root = Path(root)
    for digit in range(10):
        idx = np.flatnonzero(target == digit)
        if per_class is not None:
            idx = np.sort(rng.choice(idx, size=min(per_class, len(idx)), replace=False))
        folder = root / str(digit)
        folder.mkdir(parents=True, exist_ok=True)
        for i in idx:
            pixels = (255 - images[i] * (255 / 16)).round().astype(np.uint8)
            Image.fromarray(pixels, "L").save(folder / f"digit_{i:04d}.png")
    return root


def write_faces(root: Path) -> Path:
    """LFW subset: root/face (100) and root/background (100), 25 × 25 grayscale PNGs."""
    from PIL import Image
    from skimage import data

    images = (np.asarray(data.lfw_subset()) * 255).round().astype(np.uint8)  # (200, 25, 25): 100 faces first
    for i, im in enumerate(images):
        folder = Path(root) / ("face" if i < 100 else "background")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(im, "L").save(folder / f"lfw_{i:03d}.png")
    return Path(root)


def write_textures(root: Path, tile: int = 64) -> Path:
    """brick, grass, gravel: each 512 × 512 photograph cut into non-overlapping `tile` × `tile` PNGs."""
    from PIL import Image
    from skimage import data

    for name in ("brick", "grass", "gravel"):
        photo = np.asarray(getattr(data, name)(), dtype=np.uint8)
        folder = Path(root) / name
        folder.mkdir(parents=True, exist_ok=True)
        for y in range(0, photo.shape[0] - tile + 1, tile):
            for x in range(0, photo.shape[1] - tile + 1, tile):
                Image.fromarray(photo[y : y + tile, x : x + tile], "L").save(folder / f"{name}_{y:03d}_{x:03d}.png")
    return Path(root)


def write_public(name: str, root: Path, per_class: int | None = 40, *, seed: int = 0) -> Path:
    if name == "faces":
        return write_faces(root)
    if name == "textures":
        return write_textures(root)
    if name == "digits":
        return write_digits(root, per_class, seed=seed)
    msg = f"unknown image set {name!r}: use one of {', '.join(NAMES)}"
    raise ValueError(msg)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out = write_public(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 40)
    print(f"wrote {sys.argv[1]} under {out}")
