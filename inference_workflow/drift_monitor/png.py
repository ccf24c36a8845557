"""A PNG decoder (standard library only) for captured request images.

The monitor runs as a Lambda with boto3 and the standard library, so it cannot call the model's
decoder (``scones_common/images.py``, Pillow); it reads PNGs the same way instead, and
``tests/png_cases.py`` proves both give the same pixels or both refuse:

* every bit depth and colour type of the PNG spec, interlaced or not;
* 16-bit samples keep their high byte; 1-, 2- and 4-bit grey is scaled to 0..255; a palette
  index beyond the palette is black;
* transparency (an alpha channel, palette alpha, a tRNS colour key) is composited over white,
  rounded as Pillow pastes: ``c' = round((c·a + 255·(255 − a)) / 255)``;
* a 16-bit truecolour image with a tRNS colour key is refused, as by the model's decoder;
* an image of more than :data:`MAX_PIXELS` pixels is refused from its header.

Anything else (not a PNG — JPEG captures are not profiled —, corrupt or truncated data) is an
:class:`UnsupportedImageError` and the record is counted as undecodable rather than guessed.
Captured images are 32×32, so decoding in Python costs a few milliseconds each.
"""
from __future__ import annotations

import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_PIXELS = 25_000_000       # scones_common.images.MAX_PIXELS (this folder ships alone)
CHANNELS_OF = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
DEPTHS_OF = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
_BLACK, _WHITE = (0, 0, 0), (255, 255, 255)


class UnsupportedImageError(ValueError):
    """Not a PNG this decoder reads (not PNG, corrupt, truncated, too large, or a 16-bit colour key)."""


def decode_rgb(data: bytes) -> list[tuple[int, int, int]]:
    """The image's pixels as (r, g, b), row by row."""
    width, height, depth, colour, interlace, palette, transparency, compressed = _chunks(data)
    channels = CHANNELS_OF[colour]
    passes = ADAM7 if interlace else ((0, 0, 1, 1),)
    sizes = [(-(-(width - x0) // dx), -(-(height - y0) // dy)) if width > x0 and height > y0 else (0, 0)
             for x0, y0, dx, dy in passes]
    expected = sum(h * (1 + -(-w * channels * depth // 8)) for w, h in sizes if w)
    try:
        raw = zlib.decompressobj().decompress(compressed, expected)    # no more than the image needs
    except zlib.error as exc:
        raise UnsupportedImageError(f"PNG image data is corrupt: {exc}") from None
    if len(raw) < expected:
        raise UnsupportedImageError("PNG image data is truncated")
    pixel = _pixel_reader(colour, depth, palette, transparency)
    image: list[tuple[int, int, int]] = [_BLACK] * (width * height)
    at = 0
    for (x0, y0, dx, dy), (w, h) in zip(passes, sizes):
        if not w:
            continue
        stride = -(-w * channels * depth // 8)
        for row_index, row in enumerate(_unfilter(raw[at:at + h * (1 + stride)], stride, h,
                                                   max(1, channels * depth // 8))):
            samples = _samples(row, depth, w * channels)
            start = (y0 + row_index * dy) * width + x0
            image[start:start + w * dx:dx] = [pixel(samples[i:i + channels]) for i in range(0, len(samples), channels)]
        at += h * (1 + stride)
    return image


def _chunks(data: bytes) -> tuple:
    """IHDR's fields, the palette, the tRNS data and the joined IDAT data; CRCs checked."""
    if not data.startswith(SIGNATURE):
        raise UnsupportedImageError("not a PNG (signature missing)")
    at, header, palette, transparency, idat = len(SIGNATURE), None, b"", None, []
    while at + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, at)
        chunk = data[at + 8:at + 8 + length]
        if len(chunk) < length or at + 12 + length > len(data):
            break
        if zlib.crc32(data[at + 4:at + 8 + length]) != struct.unpack_from(">I", data, at + 8 + length)[0]:
            raise UnsupportedImageError(f"PNG chunk {kind!r} is corrupt (CRC mismatch)")
        at += 12 + length
        if header is None and kind != b"IHDR":
            raise UnsupportedImageError("PNG does not start with an IHDR chunk")
        if kind == b"IHDR":
            if length != 13:
                raise UnsupportedImageError("PNG IHDR chunk has the wrong length")
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"PLTE":
            palette = chunk
        elif kind == b"tRNS":
            transparency = chunk
        elif kind == b"IDAT":
            idat.append(chunk)
        elif kind == b"IEND":
            break
    if header is None or not idat:
        raise UnsupportedImageError("PNG is truncated (no IHDR or no image data)")
    width, height, depth, colour, compression, filtering, interlace = header
    if colour not in DEPTHS_OF or depth not in DEPTHS_OF[colour] or compression or filtering or interlace > 1:
        raise UnsupportedImageError(f"PNG with bit depth {depth}, colour type {colour}, compression {compression}, "
                                    f"filter {filtering}, interlace {interlace} is not valid")
    if not width or not height or width * height > MAX_PIXELS:
        raise UnsupportedImageError(f"PNG of {width}×{height} pixels: none, or more than {MAX_PIXELS:,}")
    if transparency is not None and colour == 2 and depth == 16:
        raise UnsupportedImageError("a 16-bit PNG with a tRNS colour key is not supported")
    return width, height, depth, colour, interlace, palette, transparency, b"".join(idat)


def _pixel_reader(colour: int, depth: int, palette: bytes, transparency: bytes | None):
    """A function of one pixel's samples (at the image's bit depth) to its (r, g, b) over white."""
    top = (1 << depth) - 1
    if colour == 3:
        alphas = transparency or b""
        colours = [_over_white(palette[3 * i:3 * i + 3], alphas[i] if i < len(alphas) else 255)
                   for i in range(len(palette) // 3)]
        return lambda s: colours[s[0]] if s[0] < len(colours) else _BLACK
    level = [v >> 8 for v in range(65536)] if depth == 16 else [v * 255 // top for v in range(top + 1)]
    if colour == 4:
        return lambda s: _over_white((level[s[0]],) * 3, level[s[1]])
    if colour == 6:
        return lambda s: _over_white((level[s[0]], level[s[1]], level[s[2]]), level[s[3]])
    key = _colour_key(transparency, 1 if colour == 0 else 3, top)
    if colour == 0:
        return lambda s: _WHITE if s == key else (level[s[0]],) * 3
    return lambda s: _WHITE if s == key else (level[s[0]], level[s[1]], level[s[2]])


def _colour_key(transparency: bytes | None, count: int, top: int) -> list[int] | None:
    """A grey or RGB tRNS colour key, masked to the bit depth as the PNG spec says."""
    if transparency is None:
        return None
    if len(transparency) < 2 * count:
        raise UnsupportedImageError("PNG tRNS chunk is truncated")
    return [v & top for v in struct.unpack(f">{count}H", transparency[:2 * count])]


def _over_white(rgb, alpha: int) -> tuple[int, int, int]:
    """Pillow's paste with a mask: ``(c·a + 255·(255 − a)) / 255`` rounded as its DIV255 does."""
    if alpha == 255:
        return tuple(rgb)
    blended = []
    for c in rgb:
        t = c * alpha + 255 * (255 - alpha) + 128
        blended.append((t + (t >> 8)) >> 8)
    return tuple(blended)


def _samples(row: bytes, depth: int, count: int) -> list[int]:
    if depth == 8:
        return list(row[:count])
    if depth == 16:
        return [row[i] << 8 | row[i + 1] for i in range(0, 2 * count, 2)]
    per_byte, mask = 8 // depth, (1 << depth) - 1
    return [row[i // per_byte] >> (8 - depth * (i % per_byte + 1)) & mask for i in range(count)]


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _unfilter(raw: bytes, stride: int, height: int, bpp: int) -> list[bytearray]:
    rows, previous, at = [], bytearray(stride), 0
    for _ in range(height):
        kind, line = raw[at], bytearray(raw[at + 1:at + 1 + stride])
        at += 1 + stride
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
