"""Parse Hugging Face TGI's server-sent events out of arbitrarily split byte chunks.

SageMaker's response stream hands over ``PayloadPart`` byte chunks that do not line up with TGI's
``data:`` lines, so bytes are buffered and only complete lines are parsed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from rag_gateway.errors import UpstreamBadResponseError
from rag_gateway.llm.base import StreamEnd, StreamEvent, TokenDelta

UPSTREAM = "sagemaker"


class TGIStreamParser:
    def __init__(self) -> None:
        self._buffer = b""
        self.tokens = 0
        self.ended = False

    def feed(self, chunk: bytes) -> Iterator[StreamEvent]:
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            yield from self._parse_line(line.strip())

    def close(self) -> Iterator[StreamEvent]:
        """Flush a last line that came without a newline; a stream that never finished is an error."""
        if self._buffer.strip():
            yield from self._parse_line(self._buffer.strip())
            self._buffer = b""
        if not self.ended:
            raise UpstreamBadResponseError(
                "the LLM stream ended before the answer was complete", upstream=UPSTREAM
            )

    def _parse_line(self, line: bytes) -> Iterator[StreamEvent]:
        if not line.startswith(b"data:"):
            return  # blank separators, comments, event names
        try:
            event = json.loads(line[5:])
        except ValueError as exc:
            raise UpstreamBadResponseError(
                "the LLM stream sent an unreadable event", upstream=UPSTREAM
            ) from exc
        if not isinstance(event, dict):
            raise UpstreamBadResponseError("the LLM stream sent an unexpected event", upstream=UPSTREAM)
        if "error" in event:
            raise UpstreamBadResponseError("the LLM reported a generation error", upstream=UPSTREAM)
        token = event.get("token")
        if isinstance(token, dict) and not token.get("special") and isinstance(token.get("text"), str):
            self.tokens += 1
            yield TokenDelta(token["text"])
        if event.get("generated_text") is not None or event.get("details") is not None:
            details = event.get("details") or {}
            self.ended = True
            input_length = details.get("input_length")  # TGI >= 2: the prompt's token count
            yield StreamEnd(
                details.get("finish_reason"),
                details.get("generated_tokens", self.tokens),
                input_length
                if isinstance(input_length, int) and not isinstance(input_length, bool)
                else None,
            )


class StopTrimmer:
    """TGI leaves a matched stop sequence at the end of the text; OpenAI's API (and so the gateway) does not.

    While streaming, what could be the start of a stop sequence is held back until the next token shows
    whether it was one; when TGI reports ``stop_sequence``, the matched sequence is dropped.
    """

    def __init__(self, stops: tuple[str, ...] | list[str]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._pending = ""

    def feed(self, text: str) -> str:
        """The part of ``text`` (after what was held back) that can no longer be a stop sequence."""
        if not self._stops:
            return text
        pending = self._pending + text
        hold = 0
        for stop in self._stops:
            for size in range(min(len(stop), len(pending)), hold, -1):
                if pending.endswith(stop[:size]):
                    hold = size
                    break
        self._pending = pending[len(pending) - hold :]
        return pending[: len(pending) - hold]

    def finish(self, text: str = "", *, stopped: bool) -> str:
        """What is left to send once generation ended; ``stopped``: TGI matched a stop sequence."""
        rest, self._pending = self._pending + text, ""
        if stopped:
            for stop in self._stops:
                if rest.endswith(stop):
                    return rest[: -len(stop)]
        return rest
