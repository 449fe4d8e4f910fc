"""OpenAI's chat completion shapes, as far as the gateway speaks them, typed so /docs shows them.

Requests allow unknown fields (clients send many the gateway does not use); the answer carries two
extension fields, ``sources`` and ``degraded``, that OpenAI clients ignore.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from rag_gateway.api.schemas import Source

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]
FinishReason = Literal["stop", "length"]

#: TGI's finish reasons, in OpenAI's vocabulary.
FINISH_REASONS: dict[str, FinishReason] = {
    "eos_token": "stop",
    "stop_sequence": "stop",
    "length": "length",
    "stop": "stop",
}


def finish_reason(tgi_reason: str | None) -> FinishReason:
    return FINISH_REASONS.get(tgi_reason or "stop", "stop")


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Role
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        parts = self.content or []
        return " ".join(str(p.get("text", "")) for p in parts if p.get("type") == "text")


class ChatCompletionRequest(BaseModel):
    """OpenAI's request shape; sampling fields are accepted and ignored (the gateway's settings apply)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [{"model": "llm-twin", "messages": [{"role": "user", "content": "What is RAG?"}]}]
        },
    )

    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    stream: StrictBool = False
    k: StrictInt | None = Field(None, ge=1, le=20, description="Extension: sources to keep.")


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: FinishReason


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    sources: list[Source] = Field(description="Extension: the chunks given to the LLM, best first.")
    degraded: list[str] = Field(description="Extension: optional steps that failed and were skipped.")


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: FinishReason | None = None


class ChatCompletionChunk(BaseModel):
    """One ``data:`` event of a streamed answer; the first carries ``sources``."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    sources: list[Source] | None = Field(None, description="Extension, on the first chunk only.")


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "rag-gateway"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
