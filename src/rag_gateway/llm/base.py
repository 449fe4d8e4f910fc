"""What every LLM backend offers the pipeline: a whole answer, or the answer as a stream of tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Generation:
    text: str
    finish_reason: str | None = None
    generated_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class TokenDelta:
    text: str


@dataclass(frozen=True, slots=True)
class StreamEnd:
    finish_reason: str | None
    generated_tokens: int | None


StreamEvent = TokenDelta | StreamEnd


class LLM(Protocol):
    """An LLM backend (SageMaker TGI, or any OpenAI-compatible server)."""

    name: str

    async def generate(self, prompt: str) -> Generation: ...

    def stream(self, prompt: str) -> AsyncIterator[StreamEvent]:
        """Tokens as the model produces them, then one `StreamEnd`. Raises a `GatewayError` on failure."""
        ...
