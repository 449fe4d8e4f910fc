"""OpenAI's chat completion shapes, as far as the gateway speaks them, typed so /docs shows them.

Requests: the parameters the gateway honours are typed with their ranges. Those it cannot honour (tools,
``n`` > 1, logprobs, audio...) are declared with the values that ask for nothing; any other value gets a
400 naming the parameter (`rag_gateway.api.params`). Other unknown fields are accepted and ignored
(``user``, ``metadata``, ``store``, ``service_tier``...). The answer carries extension fields that OpenAI
clients ignore: ``sources``, ``queries`` and ``degraded``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, WithJsonSchema

from rag_gateway.api.schemas import (
    QUERY_TEXT_SCHEMA,
    FinishReason,
    MaxTokens,
    Seed,
    Source,
    Stop,
    Temperature,
    TopP,
    Usage,
    finish_reason,
)

__all__ = ["FinishReason", "finish_reason"]

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]

TEXT_PART_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"type": {"type": "string", "enum": ["text"]}, "text": QUERY_TEXT_SCHEMA},
    "required": ["type", "text"],
}
ANY_TEXT_PART_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"type": {"type": "string", "enum": ["text"]}, "text": {"type": "string"}},
    "required": ["type", "text"],
}
USER_CONTENT_SCHEMA: dict[str, Any] = {
    "anyOf": [QUERY_TEXT_SCHEMA, {"type": "array", "items": TEXT_PART_SCHEMA, "minItems": 1}],
    "description": "Text, or text parts (other parts, such as images, audio or files, get 400). The last "
    "user message is the question, so it follows the question's rule.",
}
OTHER_CONTENT_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "string"}, {"type": "array", "items": ANY_TEXT_PART_SCHEMA}],
    "description": "Text, or text parts (other parts get 400).",
}


def _message(roles: list[str], content: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"role": {"type": "string", "enum": roles}, "content": content},
        "required": required,
    }


#: One chat message, by role: user messages are questions; system and developer messages go into the
#: prompt; assistant messages are earlier answers; tool and function results are ignored.
CHAT_MESSAGE_SCHEMA: dict[str, Any] = {
    "title": "ChatMessage",
    "oneOf": [
        _message(["user"], USER_CONTENT_SCHEMA, ["role", "content"]),
        _message(["system", "developer"], OTHER_CONTENT_SCHEMA, ["role", "content"]),
        _message(["assistant"], {"anyOf": [OTHER_CONTENT_SCHEMA, {"type": "null"}]}, ["role"]),
        _message(["tool", "function"], {"anyOf": [OTHER_CONTENT_SCHEMA, {"type": "null"}]}, ["role"]),
    ],
}
RESPONSE_FORMAT_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {
            "type": "object",
            "properties": {"type": {"type": "string", "enum": ["text", "json_object"]}},
            "required": ["type"],
        },
        {
            "type": "object",
            "properties": {
                "type": {"type": "string", "enum": ["json_schema"]},
                "json_schema": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
                        "description": {"type": "string"},
                        "strict": {"type": ["boolean", "null"]},
                        "schema": {
                            "type": "object",
                            "description": "A JSON schema of an object; with the SageMaker backend it must "
                            "have `properties` (TGI's grammar needs them), else 400.",
                            "properties": {
                                "type": {"type": "string", "enum": ["object"]},
                                "properties": {
                                    "type": "object",
                                    "additionalProperties": {"type": "object"},
                                },
                                "required": {"type": "array", "items": {"type": "string"}},
                            },
                            "required": ["type", "properties"],
                        },
                    },
                    "required": ["name", "schema"],
                },
            },
            "required": ["type", "json_schema"],
        },
        {"type": "null"},
    ],
    "description": "json_object: the answer is a JSON object; json_schema: it follows the schema (TGI's "
    "`grammar` on the SageMaker backend, passed through on an OpenAI-compatible one). Citations are never "
    "appended to a JSON answer.",
}


def _refused(schema: dict[str, Any], why: str) -> Any:
    """A parameter the gateway cannot honour: the schema admits only the values that ask for nothing."""
    return WithJsonSchema({**schema, "description": f"Not supported ({why}); anything else gets 400."})


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Role
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        parts = self.content or []
        return " ".join(str(p.get("text", "")) for p in parts if p.get("type") == "text")

    def non_text_part(self) -> str | None:
        """The type of the first content part that is not text, if any."""
        for part in self.content if isinstance(self.content, list) else []:
            if part.get("type") != "text":
                return str(part.get("type"))
        return None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: StrictBool = Field(
        False, description="Send a last chunk with `choices: []` and the `usage` of the whole answer."
    )


class ChatCompletionRequest(BaseModel):
    """OpenAI's request shape. The last user message is the question; earlier turns make it a conversation
    (the question is rewritten to stand alone before retrieval)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {"model": "llm-twin", "messages": [{"role": "user", "content": "What is RAG?"}]},
                {
                    "model": "llm-twin",
                    "messages": [
                        {"role": "user", "content": "What did Paul Iusztin write about feature pipelines?"},
                        {"role": "assistant", "content": "That they turn raw data into features [1]."},
                        {"role": "user", "content": "How does he test them?"},
                    ],
                    "max_tokens": 200,
                    "temperature": 0,
                    "stream": True,
                    "stream_options": {"include_usage": True},
                },
            ]
        },
    )

    model: str | None = Field(
        None, description="SERVED_MODEL_NAME or one of SERVED_MODEL_ALIASES; another name gets 404."
    )
    messages: list[Annotated[ChatMessage, WithJsonSchema(CHAT_MESSAGE_SCHEMA)]] = Field(
        min_length=1,
        description="The conversation, oldest first; at least one user message.",
        json_schema_extra={"contains": {"type": "object", "properties": {"role": {"enum": ["user"]}}}},
    )
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    max_tokens: MaxTokens = None
    max_completion_tokens: MaxTokens = None
    temperature: Temperature = None
    top_p: TopP = None
    stop: Stop = None
    seed: Seed = None
    frequency_penalty: StrictFloat | None = Field(
        None, ge=-2, le=2, description="Penalise tokens by how often they appeared (TGI's frequency_penalty)."
    )
    response_format: Annotated[dict[str, Any] | None, WithJsonSchema(RESPONSE_FORMAT_SCHEMA)] = None
    k: StrictInt | None = Field(
        None, ge=1, le=20, description="Extension: sources (documents) to keep; default DEFAULT_TOP_K."
    )
    citations: StrictBool | None = Field(
        None,
        description="Extension: append the numbered sources to the answer (`Sources:` `[1] Title — "
        "link`); default APPEND_CITATIONS.",
    )
    n: Annotated[
        Any, _refused({"type": ["integer", "null"], "enum": [1, None]}, "one answer per request")
    ] = None
    tools: Annotated[Any, _refused({"type": ["array", "null"], "maxItems": 0}, "no tool calling")] = None
    tool_choice: Annotated[
        Any, _refused({"type": ["string", "null"], "enum": ["none", None]}, "no tools")
    ] = None
    functions: Annotated[Any, _refused({"type": ["array", "null"], "maxItems": 0}, "no functions")] = None
    function_call: Annotated[
        Any, _refused({"type": ["string", "null"], "enum": ["none", None]}, "no functions")
    ] = None
    logprobs: Annotated[
        Any, _refused({"type": ["boolean", "null"], "enum": [False, None]}, "no logprobs")
    ] = None
    top_logprobs: Annotated[
        Any, _refused({"type": ["integer", "null"], "enum": [0, None]}, "no logprobs")
    ] = None
    audio: Annotated[Any, _refused({"type": "null"}, "text only")] = None
    modalities: Annotated[
        Any,
        _refused(
            {
                "type": ["array", "null"],
                "items": {"type": "string", "enum": ["text"]},
                "minItems": 1,
                "maxItems": 1,
            },
            "text only",
        ),
    ] = None
    logit_bias: Annotated[
        Any, _refused({"type": ["object", "null"], "maxProperties": 0}, "no logit bias")
    ] = None
    prediction: Annotated[Any, _refused({"type": "null"}, "no predicted outputs")] = None
    presence_penalty: Annotated[
        Any, _refused({"type": ["number", "null"], "enum": [0, None]}, "use frequency_penalty")
    ] = None
    web_search_options: Annotated[Any, _refused({"type": "null"}, "answers come from the corpus")] = None

    def max_new_tokens(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens

    def explicit(self) -> dict[str, Any]:
        """The fields the client sent (for the unsupported-parameter check)."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: FinishReason


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    sources: list[Source] = Field(description="Extension: the chunks given to the LLM, best first.")
    queries: list[str] = Field(
        default_factory=list,
        description="Extension: the queries searched; the first is the question retrieval answered (a "
        "follow-up rewritten to stand alone).",
    )
    degraded: list[str] = Field(description="Extension: optional steps that failed and were skipped.")


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: FinishReason | None = None


class ChatCompletionChunk(BaseModel):
    """One ``data:`` event of a streamed answer. The first carries the extensions (``sources``,
    ``queries``, ``degraded``); with ``stream_options.include_usage`` the last one has ``choices: []`` and
    ``usage``. The stream ends with ``data: [DONE]``."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = Field(None, description="On the last chunk, with stream_options.include_usage.")
    sources: list[Source] | None = Field(None, description="Extension, on the first chunk only.")
    queries: list[str] | None = Field(None, description="Extension, on the first chunk only.")
    degraded: list[str] | None = Field(None, description="Extension, on the first chunk only.")


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "rag-gateway"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard] = Field(description="SERVED_MODEL_NAME, then SERVED_MODEL_ALIASES.")


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str = Field(examples=["invalid_request_error"])
    param: str | None = Field(description="The request parameter at fault, or null.", examples=["n"])
    code: str | None = Field(
        description="unsupported_parameter, invalid_value, model_not_found, or null.",
        examples=["unsupported_parameter"],
    )


class OpenAIErrorResponse(BaseModel):
    """OpenAI's error shape, plus the gateway's request id."""

    error: OpenAIErrorDetail
    request_id: str
