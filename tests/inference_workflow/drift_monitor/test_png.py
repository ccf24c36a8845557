"""The drift monitor's standard-library PNG decoder against the model's decoder, on the shared PNG table:
the same pixels for every image, or both refuse it."""
import ast
import io
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inference_workflow.drift_monitor import png
from scones_common.images import InvalidImageError
from scones_common.images import decode_rgb as model_decode_rgb
from tests.png_cases import PNG_CASES


def monitor_pixels(data: bytes, width: int, height: int) -> np.ndarray:
    return np.array(png.decode_rgb(data), dtype=np.uint8).reshape(height, width, 3)


@pytest.mark.parametrize("case", PNG_CASES, ids=repr)
def test_the_monitor_and_the_model_decode_every_png_alike_or_both_refuse_it(case):
    if case.pixels is None:
        with pytest.raises(InvalidImageError):
            model_decode_rgb(case.data, 32, 32)
        with pytest.raises(png.UnsupportedImageError):
            png.decode_rgb(case.data)
        return
    height, width = case.pixels.shape[:2]
    assert np.array_equal(model_decode_rgb(case.data, width, height), case.pixels)
    assert np.array_equal(monitor_pixels(case.data, width, height), case.pixels)


def test_the_table_covers_every_colour_type_bit_depth_and_interlacing():
    headers = {(case.data[24], case.data[25], case.data[28]) for case in PNG_CASES if case.pixels is not None}
    valid = {(depth, colour) for colour, depths in png.DEPTHS_OF.items() for depth in depths}
    assert {(depth, colour) for depth, colour, _ in headers} == valid
    assert {interlace for *_, interlace in headers} == {0, 1}


def test_jpeg_captures_are_not_profiled():
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(buffer, format="JPEG")
    assert model_decode_rgb(buffer.getvalue(), 32, 32).shape == (32, 32, 3)
    with pytest.raises(png.UnsupportedImageError, match="not a PNG"):
        png.decode_rgb(buffer.getvalue())


def test_the_decoder_imports_only_the_standard_library():
    """The Lambda ships its folder alone: no Pillow, numpy or repository package."""
    tree = ast.parse(Path(png.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}
