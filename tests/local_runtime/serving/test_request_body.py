"""Header fields as the endpoint reads them: what http.client.parse_headers gives, or a named error."""
import http.client
import io

import pytest

from local_runtime.serving.request_body import (
    MAX_HEADER_FIELDS,
    MAX_HEADER_LINE_BYTES,
    HeaderFieldsTooLargeError,
    RequestBodyError,
    read_header_fields,
)

HEAD = (b"Host: 127.0.0.1:8080\r\nContent-Type:image/png\r\ncontent-length:  2491 \t\r\n"
        b"X-Amz-Date: 20261126T112233Z\r\nX-Dup: a\r\nX-Dup: b\r\nX-Empty:\r\n\r\nBODY")


def test_fields_match_http_client_but_without_trailing_whitespace_and_the_body_is_left_unread():
    ours, reference_file = io.BytesIO(HEAD), io.BytesIO(HEAD)
    fields = read_header_fields(ours)
    reference = http.client.parse_headers(reference_file)
    assert fields.items() == [(name, value.strip()) for name, value in reference.items()]
    assert ours.read() == reference_file.read() == b"BODY"
    assert fields.get("Content-Length") == "2491" and fields.get_all("x-dup") == ["a", "b"]
    assert fields.get("X-Empty") == "" and fields.get("Missing", "none") == "none"


@pytest.mark.parametrize("ending", [b"\r\n", b"\n", b""])
def test_the_head_ends_at_a_blank_line_or_the_end_of_input(ending):
    assert read_header_fields(io.BytesIO(b"A: 1\r\n" + ending)).items() == [("A", "1")]


@pytest.mark.parametrize("line", [b"Content-Type : image/png\r\n", b" folded continuation\r\n",
                                  b"no colon at all\r\n", b": no name\r\n", b"N\xe4me: v\r\n",
                                  b"X-A: b\rContent-Length: 3\r\n", b"X-A: b\x00c\r\n"])
def test_a_line_that_is_not_name_colon_value_is_a_400(line):
    with pytest.raises(RequestBodyError) as info:
        read_header_fields(io.BytesIO(b"A: 1\r\n" + line + b"\r\n"))
    assert info.value.status == 400 and "malformed header line" in str(info.value)


def test_a_line_over_the_limit_is_a_431():
    with pytest.raises(HeaderFieldsTooLargeError) as info:
        read_header_fields(io.BytesIO(b"A: " + b"x" * MAX_HEADER_LINE_BYTES + b"\r\n\r\n"))
    assert info.value.status == 431


def test_the_field_count_limit_is_inclusive():
    many = b"".join(b"F%d: v\r\n" % i for i in range(MAX_HEADER_FIELDS))
    assert len(read_header_fields(io.BytesIO(many + b"\r\n"))) == MAX_HEADER_FIELDS
    with pytest.raises(HeaderFieldsTooLargeError):
        read_header_fields(io.BytesIO(many + b"One-More: v\r\n\r\n"))
