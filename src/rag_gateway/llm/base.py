"""What every LLM backend offers the pipeline: a whole answer, or the answer as a stream of tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class GenerationParams:
    """What one request asks of the generation; None everywhere means "the gateway's settings".

    The API layer has already checked the values (ranges, at most 4 stop sequences); each backend maps
    them to its own wire format (TGI's ``parameters``, or OpenAI's chat fields).
    """

    #: Already capped at MAX_NEW_TOKENS_LIMIT.
    max_new_tokens: int | None = None
    #: 0 means greedy decoding.
    temperature: float | None = None
    #: In (0, 1]; 1 means "no nucleus filter".
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    #: In [-2, 2]; 0 means none.
    frequency_penalty: float | None = None
    #: The JSON schema the answer must follow (``response_format`` json_schema / json_object).
    json_schema: dict[str, Any] | None = None
    #: The client's ``response_format`` as sent, for backends that speak OpenAI's API.
    response_format: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def wants_json(self) -> bool:
        return self.json_schema is not None


DEFAULT_PARAMS = GenerationParams()


@dataclass(frozen=True, slots=True)
class Generation:
    text: str
    finish_reason: str | None = None
    generated_tokens: int | None = None
    #: Prompt tokens as the model counted them, when the backend says (TGI prefill, OpenAI usage).
    prompt_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class TokenDelta:
    text: str


@dataclass(frozen=True, slots=True)
class StreamEnd:
    finish_reason: str | None
    generated_tokens: int | None
    prompt_tokens: int | None = None


StreamEvent = TokenDelta | StreamEnd


class LLM(Protocol):
    """An LLM backend (SageMaker TGI, or any OpenAI-compatible server)."""

    name: str

    async def generate(self, prompt: str, params: GenerationParams = DEFAULT_PARAMS) -> Generation: ...

    def stream(self, prompt: str, params: GenerationParams = DEFAULT_PARAMS) -> AsyncIterator[StreamEvent]:
        """Tokens as the model produces them, then one `StreamEnd`. Raises a `GatewayError` on failure."""
        ...
