"""Generated image classes for tests and demos: rendered shapes and textures in a folder per class (seeded).

    circle, square, triangle   one filled shape of random size, position and colour on a noisy background
    stripes                    a striped texture at a random angle, period and colour pair

Like real folders, the files are mixed: sizes vary around `size`, about one in five is grayscale and one in
three is a JPEG (the rest PNG). Pillow and numpy only.

    python -m engine.samples.shapes OUT_DIR [PER_CLASS]
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from PIL.Image import Image

CLASSES = ("circle", "square", "triangle", "stripes")


@dataclass(frozen=True, slots=True)
class ShapeSet:
    root: Path
    classes: tuple[str, ...]
    files: tuple[Path, ...]

    def counts(self) -> dict[str, int]:
        return {c: sum(f.parent.name == c for f in self.files) for c in self.classes}


def render(kind: str, size: int, rng: np.random.Generator) -> Image:
    """One RGB image of class `kind`, `size` × `size` pixels."""
    from PIL import Image as PILImage
    from PIL import ImageDraw

    base = rng.integers(0, 256, size=3)
    noise = rng.normal(0, 12, size=(size, size, 3))
    background = np.clip(base * 0.35 + 60 + noise, 0, 255).astype(np.uint8)
    colour = tuple(int(v) for v in rng.integers(120, 256, size=3))
    if kind == "stripes":
        period = rng.uniform(size / 10, size / 4)
        angle = rng.uniform(0, math.pi)
        yy, xx = np.mgrid[0:size, 0:size]
        wave = np.sin((xx * math.cos(angle) + yy * math.sin(angle)) * 2 * math.pi / period) > 0
        arr = np.where(wave[..., None], np.asarray(colour, dtype=np.uint8), background)
        return PILImage.fromarray(arr.astype(np.uint8), "RGB")
    im = PILImage.fromarray(background, "RGB")
    draw = ImageDraw.Draw(im)
    r = rng.uniform(0.18, 0.34) * size
    cx, cy = rng.uniform(r + 1, size - r - 1, size=2)
    if kind == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    elif kind == "square":
        turn = rng.uniform(0, math.pi / 2)
        pts = [(cx + r * math.cos(turn + k * math.pi / 2), cy + r * math.sin(turn + k * math.pi / 2)) for k in range(4)]
        draw.polygon(pts, fill=colour)
    elif kind == "triangle":
        turn = rng.uniform(0, 2 * math.pi)
        pts = [
            (cx + r * math.cos(turn + k * 2 * math.pi / 3), cy + r * math.sin(turn + k * 2 * math.pi / 3))
            for k in range(3)
        ]
        draw.polygon(pts, fill=colour)
    else:
        msg = f"unknown shape class {kind!r}: use one of {', '.join(CLASSES)}"
        raise ValueError(msg)
    return im


def write_shapes(
    root: Path, per_class: int = 20, *, size: int = 64, seed: int = 0, classes: tuple[str, ...] = CLASSES
) -> ShapeSet:
    """Write `per_class` images of each class under `root/CLASS/` and return what was written."""
    rng = np.random.default_rng(seed)
    files: list[Path] = []
    for kind in classes:
        folder = Path(root) / kind
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            side = int(rng.integers(int(size * 0.75), int(size * 1.5) + 1))
            im = render(kind, side, rng)
            if rng.random() < 0.2:
                im = im.convert("L")
            if rng.random() < 1 / 3:
                path = folder / f"{kind}_{i:04d}.jpg"
                im.save(path, quality=92)
            else:
                path = folder / f"{kind}_{i:04d}.png"
                im.save(path)
            files.append(path)
    return ShapeSet(root=Path(root), classes=tuple(classes), files=tuple(files))


if __name__ == "__main__":
    out = write_shapes(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 50)
    print(f"wrote {len(out.files)} images in {len(out.classes)} classes under {out.root}")
