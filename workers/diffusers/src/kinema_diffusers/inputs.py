"""Input images: the worker trusts nothing it downloads and re-checks every image before it reaches the model."""

from __future__ import annotations

import io
import warnings

from PIL import Image

MAX_INPUT_BYTES = 10 * 1024 * 1024  # the public contract's cap
MAX_PIXELS = 64_000_000  # well above any allowed upload; guards the decoder against a decompression bomb
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"


class InputRejected(Exception):
    """An input image is not acceptable (bad input: another attempt cannot fix it)."""


def sniff_format(data: bytes) -> str | None:
    """``"png"``, ``"jpeg"`` or None, from the magic bytes alone."""
    if data.startswith(PNG_MAGIC):
        return "png"
    if data.startswith(JPEG_MAGIC):
        return "jpeg"
    return None


def decode_image(data: bytes, name: str) -> Image.Image:
    """Checks size and format of ``data`` (the input called ``name``) and decodes it to RGB."""
    if len(data) == 0:
        raise InputRejected(f"the {name} input is empty")
    if len(data) > MAX_INPUT_BYTES:
        raise InputRejected(f"the {name} input is larger than 10 MB")
    fmt = sniff_format(data)
    if fmt is None:
        raise InputRejected(f"the {name} input is neither PNG nor JPEG (by its first bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=["PNG" if fmt == "png" else "JPEG"])
            if img.width * img.height > MAX_PIXELS:
                raise InputRejected(f"the {name} input has too many pixels ({img.width}×{img.height})")
            img.load()
    except InputRejected:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise InputRejected(f"the {name} input could not be decoded as {fmt.upper()}: {e}") from None
    if img.width < 16 or img.height < 16:
        raise InputRejected(f"the {name} input is too small ({img.width}×{img.height})")
    return img.convert("RGB")


def fit_image(img: Image.Image, width: int, height: int) -> Image.Image:
    """``img`` scaled to cover ``width``×``height`` and centre-cropped to it (no distortion)."""
    scale = max(width / img.width, height / img.height)
    w = max(width, round(img.width * scale))
    h = max(height, round(img.height * scale))
    scaled = img.resize((w, h), Image.Resampling.LANCZOS)
    left = (w - width) // 2
    top = (h - height) // 2
    return scaled.crop((left, top, left + width, top + height))
