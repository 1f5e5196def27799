"""The incremental SSE parser: line ends, comments, fields, and chunks split at every byte."""

import pytest

from errinj.sse import SSEComment, SSEEvent, SSEParser

STREAM = (": connected\n\n"
          "id: 1\ndata: {\"injection\":\"a\",\"seq\":1}\n\n"
          ": ping\n\n"
          "event: overflow\ndata: {\"dropped\":3,\"next_seq\":5}\n\n"
          "data:{\"injection\":\"ü\"}\n\n"          # no space after the colon; id persists (1)
          "id: 7\nretry: 250\ndata: line one\ndata: line two\n\n"
          "data\n\n"                               # a field with no colon: empty data
          "bogus: ignored\nid: 8\n\n"              # no data: nothing dispatched, but the id counts
          "data: after\n\n")

EXPECTED = [
    SSEComment("connected"),
    SSEEvent("message", '{"injection":"a","seq":1}', "1"),
    SSEComment("ping"),
    SSEEvent("overflow", '{"dropped":3,"next_seq":5}', "1"),
    SSEEvent("message", '{"injection":"ü"}', "1"),
    SSEEvent("message", "line one\nline two", "7"),
    SSEEvent("message", "", "7"),
    SSEEvent("message", "after", "8"),
]


def feed_all(parser, chunks):
    out = []
    for chunk in chunks:
        out += parser.feed(chunk)
    return out


@pytest.mark.parametrize("line_end", ["\n", "\r", "\r\n"], ids=["LF", "CR", "CRLF"])
def test_parser_reads_every_line_end_in_one_chunk(line_end):
    parser = SSEParser()
    items = parser.feed(STREAM.replace("\n", line_end).encode())
    assert items == EXPECTED
    assert parser.retry == 250
    assert parser.last_event_id == "8"


@pytest.mark.parametrize("line_end", ["\n", "\r", "\r\n"], ids=["LF", "CR", "CRLF"])
def test_parser_gives_the_same_items_for_every_two_chunk_split(line_end):
    data = STREAM.replace("\n", line_end).encode()
    for cut in range(len(data) + 1):
        items = feed_all(SSEParser(), [data[:cut], data[cut:]])
        assert items == EXPECTED, f"split at byte {cut}: {data[:cut]!r} | {data[cut:]!r}"


@pytest.mark.parametrize("line_end", ["\n", "\r", "\r\n"], ids=["LF", "CR", "CRLF"])
def test_parser_reads_a_stream_fed_one_byte_at_a_time(line_end):
    data = STREAM.replace("\n", line_end).encode()
    assert feed_all(SSEParser(), [data[i:i + 1] for i in range(len(data))]) == EXPECTED


def test_parser_does_not_take_a_crlf_split_across_chunks_for_two_line_ends():
    parser = SSEParser()
    assert parser.feed(b"data: x\r") == []
    # The LF completes the CRLF of "data: x"; only the next CRLF is the blank line.
    assert parser.feed(b"\n") == []
    assert parser.feed(b"\r\n") == [SSEEvent("message", "x", "")]


def test_parser_handles_mixed_line_ends_and_a_bom():
    parser = SSEParser()
    items = parser.feed("\ufeff: hi\rid: 3\r\ndata: a\n\r".encode())
    assert items == [SSEComment("hi"), SSEEvent("message", "a", "3")]


def test_parser_discards_an_unfinished_event_and_keeps_waiting_for_its_end():
    parser = SSEParser()
    assert parser.feed(b"id: 4\ndata: partial") == []
    assert parser.feed(b" more\n") == []
    assert parser.last_event_id == "4"
    assert parser.feed(b"\n") == [SSEEvent("message", "partial more", "4")]


def test_parser_resets_the_event_type_after_each_event():
    items = SSEParser().feed(b"event: overflow\ndata: 1\n\ndata: 2\n\n")
    assert [i.event for i in items] == ["overflow", "message"]


def test_parser_ignores_an_id_with_nul_and_a_bad_retry():
    parser = SSEParser()
    parser.feed(b"id: 5\nid: a\0b\nretry: 1x\ndata: d\n\n")
    assert parser.last_event_id == "5"
    assert parser.retry is None


def test_parser_keeps_multibyte_utf8_split_across_chunks():
    data = 'data: {"injection":"žluťoučký"}\n\n'.encode()
    cut = data.index("ž".encode()) + 1  # inside the two-byte sequence
    assert feed_all(SSEParser(), [data[:cut], data[cut:]]) == [
        SSEEvent("message", '{"injection":"žluťoučký"}', "")]


def test_parser_keeps_colons_after_the_first_in_the_value():
    items = SSEParser().feed(b'data: {"a":"b:c"}\n\n')
    assert items == [SSEEvent("message", '{"a":"b:c"}', "")]
