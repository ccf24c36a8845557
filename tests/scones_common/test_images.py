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
from tests.png_cases import PNG_CASES

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


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 32 32\n0 0 moveto 32 32 lineto stroke\n%%EOF\n"


@pytest.mark.parametrize("name, data", [
    ("TIFF", encoded(Image.fromarray(GREY.astype(np.int32) * 257), "TIFF")),
    ("GIF", encoded(Image.fromarray(RGB).quantize(16), "GIF")),
    ("BMP", encoded(Image.fromarray(RGB), "BMP")),
    ("WEBP", encoded(Image.fromarray(RGB), "WEBP")),
    ("EPS", EPS),
    ("EPS with a DOS header", b"\xc5\xd0\xd3\xc6" + b"\x00" * 26 + EPS),
])
def test_only_png_and_jpeg_are_decoded_and_no_other_plugin_is_asked(monkeypatch, name, data):
    """What the endpoint documents (image/png, application/x-image): an EPS body used to start Ghostscript."""
    from PIL import EpsImagePlugin

    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", lambda self: pytest.fail("the EPS plugin was asked"))
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *a, **k: pytest.fail("Ghostscript was started"))
    with pytest.raises(InvalidImageError, match="not a PNG or JPEG image"):
        decode_rgb(data, 32, 32)


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
    cmyk = encoded(Image.fromarray(RGB).convert("CMYK"), "JPEG")
    assert np.array_equal(decode_rgb(cmyk, 32, 32), np.asarray(Image.open(io.BytesIO(cmyk)).convert("RGB")))
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
    assert ("not a decodable image" in str(info.value) or "not a PNG or JPEG image" in str(info.value)) \
        and " at 0x" not in str(info.value)


@pytest.mark.parametrize("case", PNG_CASES, ids=repr)
def test_png_pixels_mean_what_the_shared_png_table_says(case):
    """Bit depths, palettes, alpha and colour keys, interlacing: the semantics the drift monitor's decoder shares."""
    if case.pixels is None:
        with pytest.raises(InvalidImageError):
            decode_rgb(case.data, 32, 32)
    else:
        height, width = case.pixels.shape[:2]
        assert np.array_equal(decode_rgb(case.data, width, height), case.pixels)


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
              "palette.png": encoded(Image.fromarray(RGB).quantize(32))}
    trained_on, _ = load_channel(channel(tmp_path, images), tmp_path, (3, 32, 32))
    model = ImageClassifier(write_tiny_model(tmp_path / "model"))     # mean 0, std 1: input = pixels / 255
    served = model.preprocess(list(images.values()))
    assert np.array_equal(np.rint(served * 255).astype(np.uint8), trained_on)
    assert np.array_equal(trained_on, np.stack([decode_rgb(d, 32, 32).transpose(2, 0, 1) for d in images.values()]))


def test_a_broken_training_image_is_a_channel_error_naming_the_file(tmp_path):
    with pytest.raises(ChannelError, match="broken.png"):
        load_channel(channel(tmp_path, {"broken.png": b"not a png"}), tmp_path, (3, 32, 32))
