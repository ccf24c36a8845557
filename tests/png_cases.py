"""A table of PNG images and the pixels they mean, for the two PNG decoders that must agree: the
model's (``scones_common/images.py``, Pillow) and the drift monitor's standard-library one
(``inference_workflow/drift_monitor/png.py``).

Each case is built from known samples, with Pillow where it writes the kind of PNG and with
:func:`write_png` where it cannot (16-bit colour, 1/2/4-bit grey with a colour key, interlaced,
every filter type), and carries the pixels it means, computed here from those samples: 16-bit
samples keep their high byte, 1/2/4-bit grey is scaled to 0..255, a palette index beyond the
palette is black, and transparency is composited over white as Pillow pastes; or ``None`` when
both decoders must refuse the bytes.
"""
from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


@dataclass(frozen=True)
class PngCase:
    name: str
    data: bytes
    pixels: np.ndarray | None       # (height, width, 3) uint8; None: every decoder refuses the bytes

    def __repr__(self) -> str:       # the test id
        return self.name


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _packed_row(samples: np.ndarray, depth: int) -> bytes:
    if depth == 16:
        return samples.astype(">u2").tobytes()
    if depth == 8:
        return samples.astype(np.uint8).tobytes()
    bits = ((samples.astype(np.uint8)[:, None] >> np.arange(depth - 1, -1, -1, dtype=np.uint8)) & 1).ravel()
    return np.packbits(bits).tobytes()


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def _filtered(row: bytes, previous: bytes, kind: int, bpp: int) -> bytes:
    out = bytearray([kind])
    for i, value in enumerate(row):
        left = row[i - bpp] if i >= bpp else 0
        up_left = previous[i - bpp] if i >= bpp else 0
        predictor = (0, left, previous[i], (left + previous[i]) // 2, _paeth(left, previous[i], up_left))[kind]
        out.append((value - predictor) & 0xFF)
    return bytes(out)


def write_png(samples: np.ndarray, depth: int, colour: int, *, interlace: bool = False, extra: bytes = b"") -> bytes:
    """A PNG of ``samples`` ((height, width, channels) at ``depth`` bits), each row with the next of the five
    filter types; ``extra``: chunks (PLTE, tRNS) between IHDR and IDAT."""
    height, width = samples.shape[:2]
    bpp = max(1, CHANNELS[colour] * depth // 8)
    raw, kind = bytearray(), 0
    for x0, y0, dx, dy in ADAM7 if interlace else ((0, 0, 1, 1),):
        part = samples[y0::dy, x0::dx]
        previous = None
        for row in part if part.shape[1] else ():
            packed = _packed_row(row.ravel(), depth)
            raw += _filtered(packed, previous or bytes(len(packed)), kind % 5, bpp)
            previous, kind = packed, kind + 1
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, int(interlace))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + extra + chunk(b"IDAT", zlib.compress(bytes(raw)))
            + chunk(b"IEND", b""))


def over_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Pillow's paste of ``rgb`` with mask ``alpha`` on white: (c·a + 255·(255 − a)) / 255, rounded by DIV255."""
    t = rgb.astype(np.int64) * alpha[..., None] + 255 * (255 - alpha[..., None].astype(np.int64)) + 128
    return ((t + (t >> 8)) >> 8).astype(np.uint8)


def to_8bit(samples: np.ndarray, depth: int) -> np.ndarray:
    return (samples >> 8 if depth == 16 else samples * 255 // ((1 << depth) - 1)).astype(np.int64)


def meaning(samples: np.ndarray, depth: int, colour: int, palette: bytes = b"", trns: bytes | None = None) -> np.ndarray:
    """The RGB pixels a PNG of these samples means (the semantics in the module docstring)."""
    samples = samples.astype(np.int64)
    opaque = np.full(samples.shape[:2], 255, dtype=np.int64)
    if colour == 3:
        entries = np.frombuffer(palette, dtype=np.uint8).reshape(-1, 3).astype(np.int64)
        alphas = np.full(256, 255, dtype=np.int64)
        alphas[:len(trns or b"")] = np.frombuffer(trns or b"", dtype=np.uint8)
        table = np.zeros((256, 3), dtype=np.int64)
        table[:len(entries)] = entries
        index = samples[..., 0]
        return over_white(table[index], np.where(index < len(entries), alphas[index], 255))
    values = to_8bit(samples, depth)
    if colour in (4, 6):
        return over_white(np.repeat(values[..., :1], 3, axis=2) if colour == 4 else values[..., :3], values[..., -1])
    rgb = np.repeat(values, 3, axis=2) if colour == 0 else values
    if trns is not None:
        key = np.array(struct.unpack(f">{CHANNELS[colour]}H", trns)) & ((1 << depth) - 1)
        opaque = np.where((samples == key).all(axis=2), 0, 255)
    return over_white(rgb, opaque)


def _keyed(samples: np.ndarray, depth: int, colour: int, interlace: bool = False) -> tuple[bytes, bytes]:
    """A PNG of ``samples`` whose colour key is its middle pixel's, and the tRNS data."""
    key = samples[samples.shape[0] // 2, samples.shape[1] // 2]
    trns = struct.pack(f">{len(key)}H", *key)
    return write_png(samples, depth, colour, interlace=interlace, extra=chunk(b"tRNS", trns)), trns


def _saved(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **options)
    return buffer.getvalue()


def _hand_written(rng: np.random.Generator) -> list[PngCase]:
    cases = []
    for depth, colour, size, interlace in [(1, 0, (7, 13), False), (2, 0, (7, 13), False), (4, 0, (7, 13), True),
                                           (16, 0, (9, 10), False), (16, 2, (32, 32), False), (16, 2, (9, 10), True),
                                           (16, 4, (9, 10), False), (16, 6, (32, 32), False), (16, 6, (9, 10), True),
                                           (8, 2, (32, 32), True), (8, 6, (5, 3), True), (8, 4, (3, 9), True),
                                           (8, 2, (1, 1), True), (8, 0, (2, 2), True)]:
        samples = rng.integers(0, 1 << depth, size=(*size, CHANNELS[colour]))
        if colour in (4, 6):
            samples[0, :, -1] = (1 << depth) - 1          # some opaque, some fully transparent pixels
            samples[1, :, -1] = 0
        label = f"{'interlaced ' if interlace else ''}{depth}-bit colour type {colour}, {size[1]}×{size[0]}"
        cases.append(PngCase(label, write_png(samples, depth, colour, interlace=interlace),
                             meaning(samples, depth, colour)))
        if colour == 0:
            data, trns = _keyed(samples, depth, colour, interlace=interlace)
            cases.append(PngCase(f"{label}, colour key", data, meaning(samples, depth, colour, trns=trns)))
    samples = rng.integers(0, 256, size=(32, 32, 3))
    data, trns = _keyed(samples, 8, 2, interlace=True)
    cases.append(PngCase("interlaced 8-bit RGB, colour key", data, meaning(samples, 8, 2, trns=trns)))
    for depth in (1, 2, 4, 8):
        entries = 1 << depth
        palette = rng.integers(0, 256, size=3 * max(1, entries - 1), dtype=np.uint8).tobytes()   # one index unset
        trns = rng.integers(0, 256, size=max(1, entries // 2), dtype=np.uint8).tobytes()
        samples = rng.integers(0, entries, size=(7, 13, 1))
        samples[0, 0, 0] = entries - 1                     # beyond the palette: black
        extra = chunk(b"PLTE", palette) + chunk(b"tRNS", trns)
        cases.append(PngCase(f"{depth}-bit palette, partial alpha, an index beyond the palette",
                             write_png(samples, depth, 3, interlace=depth == 4, extra=extra),
                             meaning(samples, depth, 3, palette, trns)))
    return cases


def _by_pillow(rng: np.random.Generator) -> list[PngCase]:
    rgb = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    grey = rng.integers(0, 256, size=(32, 32), dtype=np.uint8)
    alpha = np.arange(32 * 32, dtype=np.int64).reshape(32, 32) % 256          # every alpha value
    cases = [PngCase("RGB (Pillow)", _saved(Image.fromarray(rgb)), rgb),
             PngCase("L (Pillow)", _saved(Image.fromarray(grey)), np.repeat(grey[..., None], 3, axis=2)),
             PngCase("RGBA, partial alpha (Pillow)", _saved(Image.fromarray(np.dstack([rgb, alpha]).astype(np.uint8))),
                     over_white(rgb, alpha)),
             PngCase("LA, partial alpha (Pillow)", _saved(Image.fromarray(np.dstack([grey, alpha]).astype(np.uint8), "LA")),
                     over_white(np.repeat(grey[..., None], 3, axis=2), alpha)),
             PngCase("L, colour key (Pillow)", _saved(Image.fromarray(grey), transparency=int(grey[4, 4])),
                     np.where((grey == grey[4, 4])[..., None], 255, np.repeat(grey[..., None], 3, axis=2))),
             PngCase("RGB, colour key (Pillow)", _saved(Image.fromarray(rgb), transparency=tuple(map(int, rgb[4, 4]))),
                     np.where((rgb == rgb[4, 4]).all(axis=2)[..., None], 255, rgb)),
             PngCase("1-bit (Pillow)", _saved(Image.fromarray(grey > 128)),
                     np.repeat(np.where(grey > 128, 255, 0)[..., None], 3, axis=2))]
    wide = grey.astype(np.uint16) * 257 + rng.integers(0, 257, size=grey.shape).astype(np.uint16)
    cases.append(PngCase("16-bit L (Pillow)", _saved(Image.fromarray(wide)), np.repeat((wide >> 8)[..., None], 3, axis=2)))
    for transparency in (None, 3, bytes(rng.integers(0, 256, size=40, dtype=np.uint8))):
        image = Image.fromarray(rgb).quantize(64)
        options = {} if transparency is None else {"transparency": transparency}
        palette = bytes(image.getpalette()[:3 * 64])
        trns = None if transparency is None else bytes([255] * 3 + [0]) if transparency == 3 else transparency
        cases.append(PngCase(f"P, transparency {type(transparency).__name__} (Pillow)", _saved(image, **options),
                             meaning(np.asarray(image)[..., None], 8, 3, palette, trns)))
    image = Image.fromarray(rgb).quantize(16)
    cases.append(PngCase("4-bit P (Pillow)", _saved(image, bits=4),
                         meaning(np.asarray(image)[..., None], 8, 3, bytes(image.getpalette()[:48]))))
    return cases


def _refused(rng: np.random.Generator) -> list[PngCase]:
    plain = _saved(Image.fromarray(rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)))
    keyed, _ = _keyed(rng.integers(0, 1 << 16, size=(8, 8, 3)), 16, 2)
    idat = plain.index(b"IDAT")
    bad_crc = plain[:idat + 10] + bytes([plain[idat + 10] ^ 1]) + plain[idat + 11:]
    header = struct.pack(">IIBBBBB", 32, 32, 4, 2, 0, 0, 0)          # 4-bit truecolour: no such PNG
    bomb = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 6000, 6000, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 6001)) + chunk(b"IEND", b""))
    return [PngCase("16-bit RGB with a colour key", keyed, None),
            PngCase("truncated in the image data", plain[:idat + 40], None),
            PngCase("image data CRC mismatch", bad_crc, None),
            PngCase("4-bit truecolour", plain[:8] + chunk(b"IHDR", header) + plain[33:], None),
            PngCase("declares 6000×6000 pixels", bomb, None),
            PngCase("zero width", plain[:8] + chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 32, 8, 2, 0, 0, 0))
                    + plain[33:], None)]


def png_cases(seed: int = 5) -> list[PngCase]:
    rng = np.random.default_rng(seed)
    return _by_pillow(rng) + _hand_written(rng) + _refused(rng)


PNG_CASES = png_cases()
