"""Image bytes → the pixels a model sees: the one decoder of the trainer, the endpoint and the batch transform.

If training and serving decoded images differently, the model would be served other pixels than
it learned from, silently. So all of them call :func:`decode_rgb`: PNG or JPEG (what the endpoint
documents, ``image/png`` and ``application/x-image``), any pixel mode brought to 8-bit RGB by its
meaning, then resized bilinearly to the model's input size. The format is told from the magic bytes
before Pillow opens anything, and only its PNG and JPEG plugins are ever asked: an EPS body would
otherwise start Ghostscript, and every other parser Pillow ships is attack surface the endpoint
does not need.

What a PNG's pixels mean here (the drift monitor's standard-library decoder,
``inference_workflow/drift_monitor/png.py``, does the same; ``tests/png_cases.py`` proves it):

* 16-bit samples keep their high byte (``v >> 8``, so 257·v maps back to v), never clipped to white;
  1-, 2- and 4-bit grey is scaled to 0..255; a palette index beyond the palette is black;
* transparency (an alpha channel, palette alpha, a tRNS colour key) is composited over white as
  Pillow pastes: ``c' = round((c·a + 255·(255 − a)) / 255)``;
* a tRNS colour key of 16-bit truecolour is refused: Pillow reduces those samples to 8 bits before
  the key could be compared with them.

Decompression bombs: an image's size is checked from its header before any pixel is decoded,
and more than :data:`MAX_PIXELS` is refused. A 6 MB payload can declare 10000×10000 pixels
(~700 MB decoded); a 24-megapixel camera photo still fits.
"""
from __future__ import annotations

import io
import re
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from scones_common.errors import SconesError

MAX_PIXELS = 25_000_000
BACKGROUND = (255, 255, 255)

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_KEYED_MODES = ("1", "L", "P", "RGB")       # modes whose transparency is info["transparency"]
_OBJECT_REPR = re.compile(r"<[^<>]* at 0x[0-9a-fA-F]+>")
_PNG_BIT_DEPTH = 24      # IHDR is the first chunk: signature (8), length and type (8), width, height (8)

# Pillow warns (rather than fails) between its own limit and twice that, and a warning would print
# from a server thread; our own check below refuses those images anyway.
warnings.simplefilter("error", Image.DecompressionBombWarning)


class InvalidImageError(SconesError, ValueError):
    """The bytes are not an image this project can decode, or the image is too large to decode safely."""


def decode_rgb(data: bytes, width: int, height: int) -> np.ndarray:
    """``(height, width, 3)`` uint8 RGB pixels of an encoded PNG or JPEG image.

    Raises :class:`InvalidImageError` with a message meant for the sender.
    """
    image = _open(data)
    rgb = _to_rgb(image, data[_PNG_BIT_DEPTH] if image.format == "PNG" else 8)
    if rgb.size != (width, height):
        rgb = rgb.resize((width, height), Image.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8)


FORMATS = {"PNG": b"\x89PNG\r\n\x1a\n", "JPEG": b"\xff\xd8\xff"}     # format -> its magic bytes


def _open(data: bytes) -> Image.Image:
    if not any(data[:len(magic)] == magic for magic in FORMATS.values()):
        raise InvalidImageError(f"not a PNG or JPEG image (it starts {bytes(data[:8])!r}); only those two "
                                "formats are decoded here: convert the image to PNG or JPEG")
    try:
        image = Image.open(io.BytesIO(data), formats=list(FORMATS))
    except UnidentifiedImageError:
        raise InvalidImageError("not a decodable image: no image format Pillow reads starts like "
                                "these bytes; use PNG or JPEG") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidImageError(f"the image declares more than the {MAX_PIXELS:,} pixels decoded here "
                                "(decompression-bomb guard); resize it first") from None
    except Exception as exc:   # whatever the format parser raises on these bytes means a broken image
        raise InvalidImageError(f"not a decodable image ({_describe(exc)}); use PNG or JPEG") from None
    pixels = image.width * image.height
    if pixels > MAX_PIXELS:
        raise InvalidImageError(f"the image is {image.width}×{image.height} = {pixels:,} pixels, more than the "
                                f"{MAX_PIXELS:,} decoded here (decompression-bomb guard); resize it first")
    try:
        image.load()
    except Exception as exc:   # truncated data, bad checksums, decoder errors
        raise InvalidImageError(f"not a decodable image ({_describe(exc)}); use PNG or JPEG") from None
    return image


def _to_rgb(image: Image.Image, png_depth: int) -> Image.Image:
    """8-bit RGB by what the samples mean, not by Pillow's clipping of wide modes to 0..255.

    ``png_depth``: the PNG's bits per sample (8 for other formats), for the tRNS colour keys Pillow
    keeps as raw sample values."""
    mode, key = image.mode, image.info.get("transparency")
    if mode in _SIXTEEN_BIT_MODES:
        # 16-bit samples (PNG, TIFF, PGM; Pillow's 32-bit "I" holds those too): keep the high byte,
        # as Pillow does for 16-bit RGB, so 257·v maps back to v.
        samples = np.clip(np.asarray(image, dtype=np.int64), 0, 65535)
        grey = (samples >> 8).astype(np.uint8)
        if isinstance(key, int):        # a PNG grey colour key, compared with the 16-bit samples
            grey[samples == key] = 255
        return Image.fromarray(grey, "L").convert("RGB")
    if mode == "F":
        # Float images use 0.0 = black, 1.0 = white (TIFF/EXR convention).
        samples = np.nan_to_num(np.asarray(image, dtype=np.float32), nan=0.0)
        return Image.fromarray(np.clip(np.rint(samples * 255), 0, 255).astype(np.uint8), "L").convert("RGB")
    if key is not None and mode == "RGB" and png_depth == 16:
        raise InvalidImageError("a 16-bit PNG with a tRNS colour key is not supported; send it with an "
                                "alpha channel or as 8-bit")
    if key is not None and mode == "L" and png_depth < 8:
        top = (1 << png_depth) - 1      # Pillow scales 2- and 4-bit grey to 0..255, but not the key
        image.info["transparency"] = (key & top) * 255 // top
    if mode in _ALPHA_MODES or (mode in _KEYED_MODES and key is not None):
        return _over_background(image)
    try:
        return image.convert("RGB")
    except ValueError:
        raise InvalidImageError(f"the image's pixel mode {mode!r} cannot be converted to RGB; use RGB or "
                                "greyscale PNG or JPEG") from None


def _over_background(image: Image.Image) -> Image.Image:
    try:
        rgba = image.convert("RGBA")
    except ValueError:
        raise InvalidImageError(f"the image's pixel mode {image.mode!r} cannot be converted to RGB; use RGB or "
                                "greyscale PNG or JPEG") from None
    background = Image.new("RGB", rgba.size, BACKGROUND)
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def _describe(exc: BaseException) -> str:
    text = _clean(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _clean(exc: BaseException) -> str:
    """The exception's text without object reprs such as ``<_io.BytesIO object at 0x…>``."""
    return _OBJECT_REPR.sub("the image bytes", str(exc)).strip()
