"""The one image preprocessing (engine.serve.classify), shared by training and serving, and its failure modes."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from engine.registry import ImageInput
from engine.serve.classify import ImageError, decode_image, to_input
from models.images.augment import normalise
from models.images.network import input_spec

SPEC = input_spec(32)


def _encode(im: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "P", "LA"])
@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "GIF", "WEBP"])
def test_any_mode_and_format_becomes_rgb_at_the_spec_size(mode: str, fmt: str) -> None:
    im = Image.fromarray(np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)).convert(mode)
    if fmt in ("JPEG", "BMP") and mode not in ("RGB", "L"):
        im = im.convert("RGB")
    out = decode_image(_encode(im, fmt), SPEC)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8


def test_grayscale_spec_keeps_one_channel() -> None:
    spec = ImageInput(height=8, width=10, mean=(127.0,), std=(128.0,), color="L")
    out = decode_image(_encode(Image.new("RGB", (20, 20), (255, 0, 0)), "PNG"), spec)
    assert out.shape == (8, 10, 1) and to_input(out, spec).shape == (1, 1, 8, 10)


def test_exif_orientation_is_applied() -> None:
    im = Image.new("RGB", (40, 20), (0, 0, 0))
    im.paste((255, 255, 255), (0, 0, 20, 20))  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    buf = io.BytesIO()
    im.save(buf, format="JPEG", exif=exif)
    spec = ImageInput(height=20, width=20, mean=(0.0,) * 3, std=(1.0,) * 3)
    out = decode_image(buf.getvalue(), spec).mean(axis=2)
    assert out[:5].mean() > 200 and out[-5:].mean() < 50  # the white half is now on top


def test_numpy_and_torch_normalisation_agree() -> None:
    """Training normalises augmented tensors in torch; serving normalises in numpy: the same numbers."""
    pixels = np.random.default_rng(1).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    served = to_input(pixels, SPEC)
    trained = normalise(torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255.0, SPEC).numpy()
    assert served.shape == (4, 3, 32, 32) and served.dtype == np.float32
    np.testing.assert_allclose(served, trained, atol=1e-5)
    assert served.min() >= -1.0 and served.max() <= 1.0  # (pixel - 127) / 128


@pytest.mark.parametrize(
    ("data", "reason", "status"),
    [
        (b"", "empty", 400),
        (b"this is not an image at all", "not_an_image", 415),
        (b"%PDF-1.7\n%...", "not_an_image", 415),
    ],
)
def test_not_images(data: bytes, reason: str, status: int) -> None:
    with pytest.raises(ImageError) as err:
        decode_image(data, SPEC)
    assert err.value.reason == reason and err.value.status == status and err.value.message


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_images_are_400_at_every_cut(fmt: str) -> None:
    rng = np.random.default_rng(2)
    data = _encode(Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)), fmt)
    for cut in (20, 60, len(data) // 3, len(data) // 2, len(data) - 40):
        with pytest.raises(ImageError) as err:
            decode_image(data[:cut], SPEC)
        assert err.value.status in (400, 415), (cut, err.value.reason)
        assert err.value.reason in ("corrupt", "not_an_image")


def test_too_many_pixels_is_413_before_decoding() -> None:
    data = _encode(Image.new("L", (3000, 2000)), "PNG")
    with pytest.raises(ImageError) as err:
        decode_image(data, SPEC, max_pixels=1_000_000)
    assert err.value.status == 413 and "6,000,000" in err.value.message
