"""A small PNG decoder (standard library only) for captured request images: 8-bit, non-interlaced.

The monitor runs as a Lambda with boto3 and the standard library; captured images are 32×32
PNGs, so decoding in Python costs well under a millisecond each. Grey, grey+alpha, RGB, RGBA
and palette images are accepted; anything else is an :class:`UnsupportedImageError` and the
record is counted as undecodable rather than guessed.
"""
from __future__ import annotations

import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS_OF = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


class UnsupportedImageError(ValueError):
    """Not a PNG this decoder reads (not PNG, 16-bit, interlaced, or corrupt)."""


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _unfilter(raw: bytes, width: int, height: int, bpp: int) -> list[bytearray]:
    stride = width * bpp
    rows, previous, at = [], bytearray(stride), 0
    for _ in range(height):
        kind, line = raw[at], bytearray(raw[at + 1:at + 1 + stride])
        at += 1 + stride
        if len(line) != stride:
            raise UnsupportedImageError("PNG image data is truncated")
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            for i in range(stride):
                line[i] = (line[i] + previous[i]) & 0xFF
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                up_left = previous[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + _paeth(left, previous[i], up_left)) & 0xFF
        elif kind != 0:
            raise UnsupportedImageError(f"unknown PNG filter type {kind}")
        rows.append(line)
        previous = line
    return rows


def decode_rgb(data: bytes) -> list[tuple[int, int, int]]:
    """The image's pixels as (r, g, b), row by row."""
    if not data.startswith(SIGNATURE):
        raise UnsupportedImageError("not a PNG (signature missing)")
    at, header, palette, idat = len(SIGNATURE), None, b"", []
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        chunk = data[at + 8:at + 8 + length]
        at += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"PLTE":
            palette = chunk
        elif kind == b"IDAT":
            idat.append(chunk)
        elif kind == b"IEND":
            break
    if header is None:
        raise UnsupportedImageError("PNG has no IHDR chunk")
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or interlace or colour not in CHANNELS_OF:
        raise UnsupportedImageError(f"PNG with bit depth {depth}, colour type {colour}, interlace {interlace} "
                                    "is not supported (8-bit non-interlaced only)")
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error as exc:
        raise UnsupportedImageError(f"PNG image data is corrupt: {exc}") from None
    bpp = CHANNELS_OF[colour]
    pixels = []
    for row in _unfilter(raw, width, height, bpp):
        for x in range(0, len(row), bpp):
            if colour == 2 or colour == 6:
                pixels.append((row[x], row[x + 1], row[x + 2]))
            elif colour == 3:
                i = 3 * row[x]
                pixels.append((palette[i], palette[i + 1], palette[i + 2]))
            else:
                pixels.append((row[x], row[x], row[x]))
    return pixels
