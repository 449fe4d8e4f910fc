"""TGIStreamParser: TGI's server-sent events out of arbitrarily split byte chunks."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pytest

from rag_gateway.errors import UpstreamBadResponseError
from rag_gateway.llm.base import StreamEnd, StreamEvent, TokenDelta
from rag_gateway.llm.tgi_stream import TGIStreamParser


def event(data: Any) -> bytes:
    return b"data:" + json.dumps(data, ensure_ascii=False).encode() + b"\n\n"


def token(text: str, *, special: bool = False, id_: int = 1) -> bytes:
    return event({"token": {"id": id_, "text": text, "logprob": -0.1, "special": special}})


def final(text: str, finish_reason: str = "eos_token", generated_tokens: int = 3) -> bytes:
    return event(
        {
            "token": {"id": 2, "text": "</s>", "logprob": 0.0, "special": True},
            "generated_text": text,
            "details": {"finish_reason": finish_reason, "generated_tokens": generated_tokens, "seed": None},
        }
    )


STREAM = token("Hello") + token(",") + token(" world") + final("Hello, world", "eos_token", 3)
EXPECTED: list[StreamEvent] = [
    TokenDelta("Hello"),
    TokenDelta(","),
    TokenDelta(" world"),
    StreamEnd("eos_token", 3),
]


def run(chunks: Iterable[bytes]) -> list[StreamEvent]:
    parser = TGIStreamParser()
    out: list[StreamEvent] = []
    for chunk in chunks:
        out.extend(parser.feed(chunk))
    out.extend(parser.close())
    return out


def split_every(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_whole_stream_in_one_chunk() -> None:
    assert run([STREAM]) == EXPECTED


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 13, 64])
def test_tokens_split_across_arbitrary_chunks(size: int) -> None:
    assert run(split_every(STREAM, size)) == EXPECTED


def test_every_two_way_split_gives_the_same_events() -> None:
    for cut in range(len(STREAM) + 1):
        assert run([STREAM[:cut], STREAM[cut:]]) == EXPECTED, cut


def test_multibyte_utf8_split_inside_a_character() -> None:
    data = token("héllo ✓") + final("héllo ✓", "length", 1)
    cut = data.index("✓".encode()) + 1  # in the middle of the check mark's three bytes
    assert run([data[:cut], data[cut:]]) == [TokenDelta("héllo ✓"), StreamEnd("length", 1)]


def test_special_tokens_are_skipped() -> None:
    data = (
        token("<s>", special=True) + token("Hi") + token("<|eot_id|>", special=True) + final("Hi", "stop", 1)
    )
    assert run([data]) == [TokenDelta("Hi"), StreamEnd("stop", 1)]


def test_tokens_are_counted_when_details_lack_generated_tokens() -> None:
    data = token("a") + token("b") + event({"token": {"text": "", "special": True}, "generated_text": "ab"})
    parser = TGIStreamParser()
    events = [*parser.feed(data), *parser.close()]
    assert events == [TokenDelta("a"), TokenDelta("b"), StreamEnd(None, 2)]
    assert parser.tokens == 2
    assert parser.ended


def test_final_details_give_finish_reason_and_generated_tokens() -> None:
    [end] = run([final("", "length", 512)])
    assert end == StreamEnd("length", 512)


def test_non_data_lines_are_ignored() -> None:
    data = b": keep-alive\n\nevent: message\n" + token("x") + b"\r\n" + final("x", "eos_token", 1)
    assert run([data]) == [TokenDelta("x"), StreamEnd("eos_token", 1)]


def test_crlf_line_endings() -> None:
    data = STREAM.replace(b"\n", b"\r\n")
    assert run(split_every(data, 4)) == EXPECTED


def test_error_event_is_a_bad_response() -> None:
    parser = TGIStreamParser()
    assert list(parser.feed(token("partial"))) == [TokenDelta("partial")]
    with pytest.raises(UpstreamBadResponseError) as info:
        list(parser.feed(event({"error": "Input validation error: too long", "error_type": "validation"})))
    assert info.value.upstream == "sagemaker"
    assert info.value.status_code == 502
    assert "too long" not in info.value.message  # the upstream's text never reaches the client


def test_unreadable_json_is_a_bad_response() -> None:
    parser = TGIStreamParser()
    with pytest.raises(UpstreamBadResponseError, match="unreadable"):
        list(parser.feed(b'data:{"token": {"text": \n'))


@pytest.mark.parametrize("payload", [b"[1, 2]", b'"text"', b"42", b"null"])
def test_json_that_is_not_an_object_is_a_bad_response(payload: bytes) -> None:
    parser = TGIStreamParser()
    with pytest.raises(UpstreamBadResponseError, match="unexpected"):
        list(parser.feed(b"data:" + payload + b"\n"))


def test_stream_without_final_event_raises_on_close() -> None:
    parser = TGIStreamParser()
    assert list(parser.feed(token("Hello") + token(" there"))) == [TokenDelta("Hello"), TokenDelta(" there")]
    with pytest.raises(UpstreamBadResponseError, match="before the answer was complete"):
        list(parser.close())


def test_empty_stream_raises_on_close() -> None:
    with pytest.raises(UpstreamBadResponseError):
        list(TGIStreamParser().close())


def test_last_line_without_newline_is_flushed_on_close() -> None:
    data = STREAM.rstrip(b"\n")
    parser = TGIStreamParser()
    events = list(parser.feed(data))
    assert events == EXPECTED[:-1]  # the final event is still buffered
    assert not parser.ended
    assert list(parser.close()) == [EXPECTED[-1]]
    assert parser.ended


def test_truncated_last_line_fails_on_close() -> None:
    data = token("Hi") + final("Hi")[:20]
    parser = TGIStreamParser()
    assert list(parser.feed(data)) == [TokenDelta("Hi")]
    with pytest.raises(UpstreamBadResponseError, match="unreadable"):
        list(parser.close())
