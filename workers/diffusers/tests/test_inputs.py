"""Downloaded inputs are re-checked before they reach the model."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from kinema_diffusers.inputs import MAX_INPUT_BYTES, InputRejected, decode_image, fit_image
from tests.helpers import picture, png_bytes


def test_png_and_jpeg_decode_to_rgb() -> None:
    img = picture(320, 300)
    assert decode_image(png_bytes(img), "image").size == (320, 300)
    buf = io.BytesIO()
    img.save(buf, format="JPEG")
    assert decode_image(buf.getvalue(), "image").mode == "RGB"


@pytest.mark.parametrize(("data", "match"), [
    (b"", "empty"),
    (b"GIF89a" + b"\0" * 100, "neither PNG nor JPEG"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 50, "could not be decoded"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * MAX_INPUT_BYTES, "larger than 10 MB"),
])
def test_bad_inputs_are_rejected(data: bytes, match: str) -> None:
    with pytest.raises(InputRejected, match=match):
        decode_image(data, "image")


def test_truncated_png_is_rejected() -> None:
    data = png_bytes(picture(320, 300))
    with pytest.raises(InputRejected):
        decode_image(data[: len(data) // 2], "end_image")


def test_fit_image_covers_and_crops_to_the_exact_size() -> None:
    out = fit_image(Image.new("RGB", (400, 300)), 64, 32)
    assert out.size == (64, 32)
