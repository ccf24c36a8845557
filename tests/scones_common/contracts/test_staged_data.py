import pytest

from scones_common.contracts.staged_data import (
    LstEntry,
    LstFormatError,
    format_lst,
    image_path,
    label_of_path,
    lst_name,
    parse_lst,
    read_lst,
)


def test_lst_is_tab_separated_index_class_path():
    entries = [LstEntry(0, 1, "motorcycle/00000_a.png"), LstEntry(1, 0, "bicycle/00001_b.png")]
    text = format_lst(entries)
    assert text == "0\t1\tmotorcycle/00000_a.png\n1\t0\tbicycle/00001_b.png\n"
    assert parse_lst(text, "x.lst") == entries


def test_float_class_ids_and_blank_lines_are_read(tmp_path):
    path = tmp_path / lst_name("train")
    path.write_text("0\t1.000000\tmotorcycle/a.png\n\n")
    assert path.name == "train.lst"
    assert read_lst(path) == [LstEntry(0, 1, "motorcycle/a.png")]


@pytest.mark.parametrize("line, fragment", [
    ("0 1 bicycle/a.png", "got 1 tab-separated"),
    ("0\tbike\tbicycle/a.png", "must be numbers"),
    ("0\t0.5\tbicycle/a.png", "not a whole number"),
    ("0\t-1\tbicycle/a.png", "not a whole number"),
    ("0\t0\t/etc/passwd", "must be relative"),
    ("0\t0\t../secret.png", "must be relative"),
    ("0\t0\t", "must be relative"),
])
def test_bad_lines_are_named_by_file_and_line(line, fragment):
    with pytest.raises(LstFormatError, match=fragment) as info:
        parse_lst(f"0\t0\tbicycle/ok.png\n{line}\n", "test.lst")
    assert str(info.value).startswith("test.lst:2:")


def test_image_folder_names_the_class():
    path = image_path(1, 7, "moto bike/1.png")
    assert path == "motorcycle/00007_moto_bike_1.png"
    assert label_of_path(f"prefix/staged/test/{path}") == "motorcycle"
    assert label_of_path("prefix/staged/test/a.png") is None
