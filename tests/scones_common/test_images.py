"""The one image decoder: every pixel mode by its meaning, bombs refused from the header, and the
trainer's channel loader and the serving model seeing the same pixels for the same bytes."""
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from local_runtime.serving.model import ImageClassifier
from local_runtime.trainer.data import ChannelError, load_channel
from scones_common.images import MAX_PIXELS, InvalidImageError, decode_rgb
from tests.builders import synthetic_images, write_tiny_model

RNG = np.random.default_rng(7)
RGB = synthetic_images(1, 8, RNG)[0]                       # a CIFAR-like 32×32 image
GREY = np.asarray(Image.fromarray(RGB).convert("L"))


def encoded(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_16bit_rgb(pixels: np.ndarray) -> bytes:
    """A 48-bit RGB PNG (Pillow cannot write one): each 8-bit sample v stored as 257·v."""
    height, width, _ = pixels.shape
    wide = pixels.astype(">u2") * 257
    raw = b"".join(b"\x00" + wide[y].tobytes() for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0))
            + png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b""))


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares width×height greyscale pixels, with one row of data: a decompression
    bomb as far as any decoder that trusts the header is concerned."""
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + png_chunk(b"IDAT", zlib.compress(b"\x00" * (width + 1))) + png_chunk(b"IEND", b""))


def grey_rgb(values: np.ndarray) -> np.ndarray:
    return np.repeat(values[..., None], 3, axis=2)


def test_8bit_rgb_png_is_returned_unchanged():
    assert np.array_equal(decode_rgb(encoded(Image.fromarray(RGB)), 32, 32), RGB)


def test_16bit_greyscale_png_is_scaled_not_clipped_to_white():
    wide = Image.fromarray(GREY.astype(np.uint16) * 257)
    assert wide.mode == "I;16"
    assert np.array_equal(decode_rgb(encoded(wide), 32, 32), grey_rgb(GREY))


def test_16bit_rgb_png_decodes_like_its_8bit_version():
    assert np.array_equal(decode_rgb(png_16bit_rgb(RGB), 32, 32), RGB)


def test_32bit_integer_image_holds_16bit_samples():
    image = Image.fromarray(GREY.astype(np.int32) * 257)
    assert image.mode == "I"
    assert np.array_equal(decode_rgb(encoded(image, "TIFF"), 32, 32), grey_rgb(GREY))


def test_float_image_reads_0_as_black_and_1_as_white():
    image = Image.fromarray(GREY.astype(np.float32) / 255)
    assert image.mode == "F"
    assert np.array_equal(decode_rgb(encoded(image, "TIFF"), 32, 32), grey_rgb(GREY))


def test_transparency_is_composited_over_white():
    alpha = np.zeros((32, 32), dtype=np.uint8)
    alpha[:16] = 255                                    # top half opaque, bottom half fully transparent
    decoded = decode_rgb(encoded(Image.fromarray(np.dstack([GREY, alpha]), "LA")), 32, 32)
    assert np.array_equal(decoded[:16], grey_rgb(GREY)[:16]) and (decoded[16:] == 255).all()
    decoded = decode_rgb(encoded(Image.fromarray(np.dstack([RGB, alpha]), "RGBA")), 32, 32)
    assert np.array_equal(decoded[:16], RGB[:16]) and (decoded[16:] == 255).all()


def test_palette_with_a_transparent_index():
    palette = Image.fromarray(RGB).quantize(16)
    palette.info["transparency"] = 0
    decoded = decode_rgb(encoded(palette), 32, 32)
    transparent = np.asarray(palette) == 0
    assert transparent.any() and (decoded[transparent] == 255).all()
    assert np.array_equal(decoded[~transparent], np.asarray(palette.convert("RGB"))[~transparent])


def test_cmyk_and_bilevel_images():
    assert np.array_equal(decode_rgb(encoded(Image.fromarray(RGB).convert("CMYK"), "TIFF"), 32, 32), RGB)
    bilevel = Image.fromarray(GREY > 128)
    assert bilevel.mode == "1"
    assert np.array_equal(decode_rgb(encoded(bilevel), 32, 32), grey_rgb(np.where(GREY > 128, 255, 0).astype(np.uint8)))


def test_other_sizes_are_resized_bilinearly():
    large = Image.fromarray(RGB).resize((96, 64), Image.NEAREST)
    expected = np.asarray(large.resize((32, 32), Image.BILINEAR))
    assert np.array_equal(decode_rgb(encoded(large), 32, 32), expected)


@pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")   # as scones_common.images sets it
@pytest.mark.parametrize("width, height", [(6000, 6000), (10000, 10000), (100000, 100000)])
def test_more_pixels_than_the_limit_are_refused_from_the_header(width, height):
    assert width * height > MAX_PIXELS
    with pytest.raises(InvalidImageError, match="decompression-bomb guard"):
        decode_rgb(png_declaring(width, height), 32, 32)


@pytest.mark.parametrize("data", [b"", b"not an image", encoded(Image.fromarray(RGB))[:60],
                                  b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, b"GIF89a" + b"\x00" * 20])
def test_broken_bytes_name_the_problem_without_object_reprs(data):
    with pytest.raises(InvalidImageError) as info:
        decode_rgb(data, 32, 32)
    assert "not a decodable image" in str(info.value) and " at 0x" not in str(info.value)


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, position = [], 8
    while position < len(data):
        length, kind = struct.unpack_from(">I4s", data, position)
        chunks.append((kind, data[position + 8:position + 8 + length]))
        position += 12 + length
    return chunks


def png_of(chunks: list[tuple[bytes, bytes]]) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"".join(png_chunk(kind, payload) for kind, payload in chunks)


def flip_bits(data: bytes, rng: np.random.Generator, start: int = 0, end: int | None = None) -> bytes:
    mutable = bytearray(data)
    for position in rng.integers(start, len(data) if end is None else end, size=int(rng.integers(1, 4))):
        mutable[position] ^= 1 << int(rng.integers(0, 8))
    return bytes(mutable)


def mutated_pngs(count: int, seed: int = 11) -> list[bytes]:
    """Plain 8-bit RGB PNGs broken or reshaped in the ways that matter to a decoder: bit flips in the
    image data with the chunk CRC made to match, flips anywhere, truncation, the image data split over
    several IDAT chunks, other chunks, bytes after IEND, a wrong Adler-32 in the zlib stream, a zlib
    stream that ends cleanly a few rows short, in one IDAT or split over two, a header declaring no
    columns or no rows."""
    rng = np.random.default_rng(seed)
    cases = []
    for index in range(count):
        pixels = synthetic_images(1, (8, 48)[index % 2], rng)[0]
        data = encoded(Image.fromarray(pixels))
        (_, header), (_, compressed), _ = png_chunks(data)
        kind = index % 11
        if kind == 0:
            cases.append(png_of([(b"IHDR", header), (b"IDAT", flip_bits(compressed, rng)), (b"IEND", b"")]))
        elif kind == 1:
            cases.append(flip_bits(data, rng, start=8))
        elif kind == 2:
            cases.append(data[:int(rng.integers(8, len(data)))])
        elif kind == 3:
            cut = sorted(int(c) for c in rng.integers(0, len(compressed), size=3))
            pieces = [compressed[a:b] for a, b in zip([0, *cut], [*cut, len(compressed)])]
            cases.append(png_of([(b"IHDR", header), *[(b"IDAT", piece) for piece in pieces], (b"IEND", b"")]))
        elif kind == 4:
            cases.append(png_of([(b"IHDR", header), (b"tEXt", b"Comment\x00a bicycle"), (b"IDAT", compressed),
                                 (b"IEND", b"")]))
        elif kind == 5:
            cases.append(data + rng.bytes(int(rng.integers(1, 20))))
        elif kind == 6:
            cases.append(png_of([(b"IHDR", header), (b"IDAT", compressed[:-4] + bytes(4)), (b"IEND", b"")]))
        elif kind == 7:
            cases.append(png_of([(b"IHDR", header), (b"IDAT", compressed[:int(rng.integers(2, len(compressed)))]),
                                 (b"IEND", b"")]))
        elif kind in (8, 9):
            rows = zlib.decompress(compressed)[:int(rng.integers(1, 32)) * (3 * 32 + 1)]
            short = zlib.compress(rows)
            cut = len(short) - int(rng.integers(1, 9)) if kind == 8 else len(short)
            cases.append(png_of([(b"IHDR", header), (b"IDAT", short[:cut]),
                                 *([(b"IDAT", short[cut:])] if kind == 8 else []), (b"IEND", b"")]))
        else:
            empty = struct.pack(">II", 0, 32) if index % 2 else struct.pack(">II", 32, 0)
            cases.append(png_of([(b"IHDR", empty + header[8:]), (b"IDAT", compressed), (b"IEND", b"")]))
    return cases


def pillow_pixels(data: bytes) -> np.ndarray | None:
    """What Pillow's own PNG reader makes of the bytes: RGB pixels, or None where it refuses them."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return np.asarray(image.convert("RGB"))
    except Exception:
        return None


def test_plain_rgb_pngs_decode_as_pillows_png_reader_decodes_them_broken_or_not():
    """The decoder's fast path for plain RGB PNGs must neither accept bytes Pillow refuses nor read
    other pixels from bytes it accepts."""
    outcomes = {"decoded": 0, "refused": 0}
    for data in mutated_pngs(550):
        expected = pillow_pixels(data)
        if expected is None:
            with pytest.raises(InvalidImageError, match="not a decodable image|pixels decoded here"):
                decode_rgb(data, 32, 32)
            outcomes["refused"] += 1
        else:
            assert np.array_equal(decode_rgb(data, 32, 32), expected)
            outcomes["decoded"] += 1
    assert min(outcomes.values()) > 100, outcomes


def channel(tmp_path, images: dict[str, bytes]):
    folder = tmp_path / "train"
    folder.mkdir()
    lines = []
    for index, (name, data) in enumerate(images.items()):
        (folder / name).write_bytes(data)
        lines.append(f"{index}\t0\t{name}")
    (tmp_path / "train.lst").write_text("\n".join(lines) + "\n")
    return folder


def test_trainer_and_endpoint_see_the_same_pixels_for_the_same_bytes(tmp_path):
    images = {"rgb.png": encoded(Image.fromarray(RGB)),
              "grey16.png": encoded(Image.fromarray(GREY.astype(np.uint16) * 257)),
              "rgb16.png": png_16bit_rgb(RGB), "large.jpg": encoded(Image.fromarray(RGB).resize((80, 60)), "JPEG"),
              "alpha.png": encoded(Image.fromarray(np.dstack([RGB, (GREY > 100).astype(np.uint8) * 255]), "RGBA")),
              "palette.gif": encoded(Image.fromarray(RGB).quantize(32), "GIF")}
    trained_on, _ = load_channel(channel(tmp_path, images), tmp_path, (3, 32, 32))
    model = ImageClassifier(write_tiny_model(tmp_path / "model"))     # mean 0, std 1: input = pixels / 255
    served = model.preprocess(list(images.values()))
    assert np.array_equal(np.rint(served * 255).astype(np.uint8), trained_on)
    assert np.array_equal(trained_on, np.stack([decode_rgb(d, 32, 32).transpose(2, 0, 1) for d in images.values()]))


def test_a_broken_training_image_is_a_channel_error_naming_the_file(tmp_path):
    with pytest.raises(ChannelError, match="broken.png"):
        load_channel(channel(tmp_path, {"broken.png": b"not a png"}), tmp_path, (3, 32, 32))
