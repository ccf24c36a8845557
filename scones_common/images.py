"""Image bytes → the pixels a model sees: the one decoder the trainer and the endpoint share.

If training and serving decoded images differently, the model would be served other pixels than
it learned from, silently. So both call :func:`decode_rgb`: any format Pillow reads, any pixel
mode brought to 8-bit RGB by its meaning (16-bit samples scaled, not clipped to white;
transparency composited over white), then resized bilinearly to the model's input size.

Decompression bombs: an image's size is checked from its header before any pixel is decoded,
and more than :data:`MAX_PIXELS` is refused. A 6 MB payload can declare 10000×10000 pixels
(~700 MB decoded); a 24-megapixel camera photo still fits.
"""
from __future__ import annotations

import io
import re
import struct
import warnings
import zlib

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from scones_common.errors import SconesError

MAX_PIXELS = 25_000_000
BACKGROUND = (255, 255, 255)

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_OBJECT_REPR = re.compile(r"<[^<>]* at 0x[0-9a-fA-F]+>")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHUNK_HEAD = struct.Struct(">I4s")
_PNG_CRC = struct.Struct(">I")
_PNG_IHDR = struct.Struct(">IIBBBBB")
_PLAIN_RGB_LAYOUT = (8, 2, 0, 0, 0)    # bit depth, colour type RGB, compression, filter method, no interlace
_PNG_IEND = struct.pack(">I4sI", 0, b"IEND", zlib.crc32(b"IEND"))
_PILLOW_READ_BYTES = ImageFile.MAXBLOCK   # what Pillow's PNG plugin gives its codec per call (64 KiB)
_MAX_DEFLATE_RATIO = 1032

# Pillow warns (rather than fails) between its own limit and twice that, and a warning would print
# from a server thread; our own check below refuses those images anyway.
warnings.simplefilter("error", Image.DecompressionBombWarning)


class InvalidImageError(SconesError, ValueError):
    """The bytes are not an image this project can decode, or the image is too large to decode safely."""


def decode_rgb(data: bytes, width: int, height: int) -> np.ndarray:
    """``(height, width, 3)`` uint8 RGB pixels of an encoded image (PNG, JPEG, … any Pillow format).

    Raises :class:`InvalidImageError` with a message meant for the sender.
    """
    plain = _plain_rgb_png(data)
    rgb = plain if plain is not None else _to_rgb(_open(data))
    if rgb.size != (width, height):
        rgb = rgb.resize((width, height), Image.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8)


def _open(data: bytes) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
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


def _plain_rgb_png(data: bytes) -> Image.Image | None:
    """The image of an 8-bit, non-interlaced RGB PNG of one IHDR, one IDAT of at most 64 KiB and an
    IEND (how Pillow writes the staged CIFAR images), or None.

    Pillow's own PNG decoder (its ``zip`` codec: inflate, unfilter) fed directly, without the Python
    of its PNG plugin: 58 → 43 µs a 32×32 image and 0.05 ms of the endpoint's p50 through boto3
    (README "Benchmarks"). The plugin feeds the codec one IDAT, at most 64 KiB, per call, so only a
    single such IDAT is decoded in one call the same way: a zlib stream that ends early at a row
    boundary is then refused alike. Every CRC must match, the file must end with IEND, and the image
    data must be able to fill the image (deflate compresses at most 1032:1, so this also keeps the
    image under MAX_PIXELS). Any other file, and any decoding error, returns None and goes to
    :func:`_open`, so its checks and messages stay the only ones.
    """
    if data[:8] != _PNG_SIGNATURE or len(data) < 57:
        return None
    (header_length, header_kind), (width, height, *layout) = (_PNG_CHUNK_HEAD.unpack_from(data, 8),
                                                              _PNG_IHDR.unpack_from(data, 16))
    length, kind = _PNG_CHUNK_HEAD.unpack_from(data, 33)
    if ((header_length, header_kind, kind) != (13, b"IHDR", b"IDAT") or tuple(layout) != _PLAIN_RGB_LAYOUT
            or length > _PILLOW_READ_BYTES or not width or not height
            or height * (3 * width + 1) > _MAX_DEFLATE_RATIO * length
            or data[45 + length:] != _PNG_IEND or not _crc_matches(data, 8, 13) or not _crc_matches(data, 33, length)):
        return None
    try:
        return Image.frombytes("RGB", (width, height), data[41:41 + length], "zip", "RGB")
    except Exception:   # broken image data: _open says what is wrong
        return None


def _crc_matches(data: bytes, position: int, length: int) -> bool:
    return zlib.crc32(memoryview(data)[position + 4:position + 8 + length]) == _PNG_CRC.unpack_from(
        data, position + 8 + length)[0]


def _to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB by what the samples mean, not by Pillow's clipping of wide modes to 0..255."""
    mode = image.mode
    if mode == "RGB" and "transparency" not in image.info:
        return image
    if mode in _SIXTEEN_BIT_MODES:
        # 16-bit samples (PNG, TIFF, PGM; Pillow's 32-bit "I" holds those too): keep the high byte,
        # as Pillow does for 16-bit RGB, so 257·v maps back to v.
        samples = np.clip(np.asarray(image, dtype=np.int64), 0, 65535) >> 8
        return Image.fromarray(samples.astype(np.uint8), "L").convert("RGB")
    if mode == "F":
        # Float images use 0.0 = black, 1.0 = white (TIFF/EXR convention).
        samples = np.nan_to_num(np.asarray(image, dtype=np.float32), nan=0.0)
        return Image.fromarray(np.clip(np.rint(samples * 255), 0, 255).astype(np.uint8), "L").convert("RGB")
    if mode in _ALPHA_MODES or (mode in ("P", "L", "RGB") and "transparency" in image.info):
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
