"""An OpenAI Chat Completions emulator that the real ``openai`` SDK talks to unmodified.

It answers the gateway's three structured-output calls: self-query (``{"author": ...}``), query
expansion (``{"queries": [...]}``) and the rewrite of a chat's follow-up (``{"question": ...}``, pronouns
resolved from the conversation in the user message), picked by the JSON schema's name, and plain chat
calls (``generate``: the gateway's OpenAI-compatible generator) with the grounded answer ``fake_llm`` gives
for the RAG prompt in the last user message (a JSON instance of ``response_format``'s schema when it asks
for JSON). Errors use OpenAI's real shape, ``{"error": {"message", "type", "param",
"code"}}``, with ``retry-after`` headers where OpenAI sends them. ``stream: true`` answers
``text/event-stream``: ``data: {chat.completion.chunk}`` lines, word by word, then ``data: [DONE]``.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from rag_gateway_emulators import control, fake_llm, streaming, wire
from rag_gateway_emulators.faults import CHAT_TARGETS, Fault, FaultPlan
from rag_gateway_emulators.state import STATE, EmulatorState, RequestRecord

SELF_QUERY_SCHEMA = "self_query"
EXPANSION_SCHEMA = "query_expansion"
REWRITE_SCHEMA = "standalone_question"
#: Largest request body accepted (aiohttp's default, 1 MiB, is smaller than a long chat request can be).
MAX_REQUEST_BYTES = 16 * 1024 * 1024

#: Default ``(type, code, message)`` for an error status, as OpenAI words them.
_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Country not supported."),
    404: (
        "invalid_request_error",
        "model_not_found",
        "The model does not exist or you do not have access to it.",
    ),
    429: (
        "rate_limit_exceeded",
        "rate_limit_exceeded",
        "Rate limit reached for requests per min (RPM). Please try again later.",
    ),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


def _request_id() -> str:
    return f"req_{uuid.uuid4().hex}"


def error_response(
    status: int,
    message: str | None = None,
    *,
    error_type: str | None = None,
    code: str | None = None,
    param: str | None = None,
    retry_after: float | None = None,
) -> web.Response:
    """An error in OpenAI's wire shape, with ``x-request-id`` and optional ``retry-after`` headers."""
    default_type, default_code, default_message = _ERRORS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None, "Request failed.")
    )
    body = {
        "error": {
            "message": message or default_message,
            "type": error_type or default_type,
            "param": param,
            "code": code if code is not None else default_code,
        }
    }
    headers = {"x-request-id": _request_id()}
    if retry_after is not None:
        headers["retry-after"] = f"{retry_after:g}"
        headers["retry-after-ms"] = str(round(retry_after * 1000))
    return web.json_response(body, status=status, headers=headers)


def _fault_error(fault: Fault) -> web.Response:
    return error_response(
        fault.status or 500, fault.message, code=fault.error_code, retry_after=fault.retry_after
    )


_ASKS_FOR_VERSIONS = re.compile(r"\bgenerate\s+\d+\b", re.IGNORECASE)
_RAG_PROMPT = re.compile(r"^User query:", re.MULTILINE)
_RAG_CONTEXT = re.compile(r"^Context:", re.MULTILINE)


def classify(payload: Mapping[str, Any]) -> str:
    """``self_query``, ``expansion``, ``rewrite`` or ``generate`` (a plain chat call).

    By the JSON schema's name; else a system prompt mentioning extraction is a self-query, one asking for
    a standalone question a rewrite. A RAG prompt (``User query:`` and ``Context:`` lines) is a
    generation, whatever format it asks for. A request that still asks for JSON, or whose system prompt
    asks to "generate N" versions, is an expansion, as before; anything else is a plain chat call.
    """
    response_format = payload.get("response_format")
    wants_json = False
    if isinstance(response_format, dict):
        schema = response_format.get("json_schema")
        name = schema.get("name") if isinstance(schema, dict) else None
        if name == SELF_QUERY_SCHEMA:
            return "self_query"
        if name == EXPANSION_SCHEMA:
            return "expansion"
        if name == REWRITE_SCHEMA:
            return "rewrite"
        wants_json = response_format.get("type") in {"json_schema", "json_object"}
    system = " ".join(_texts(payload, "system")).lower()
    if "extract" in system:
        return "self_query"
    if "standalone" in system:
        return "rewrite"
    users = _texts(payload, "user")
    if users and _RAG_PROMPT.search(users[-1]) and _RAG_CONTEXT.search(users[-1]):
        return "generate"
    if wants_json or _ASKS_FOR_VERSIONS.search(system):
        return "expansion"
    return "generate"


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}]
        return " ".join(
            p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""


def _texts(payload: Mapping[str, Any], role: str) -> list[str]:
    messages = payload.get("messages")
    if not isinstance(messages, list):
        return []
    return [
        _content_text(m.get("content")) for m in messages if isinstance(m, dict) and m.get("role") == role
    ]


def _max_tokens(payload: Mapping[str, Any]) -> int:
    for name in ("max_completion_tokens", "max_tokens"):
        value = payload.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return fake_llm.DEFAULT_MAX_NEW_TOKENS


def _answer(target: str, payload: Mapping[str, Any]) -> tuple[str, str]:
    """The content and ``finish_reason`` (``length`` when ``max_tokens`` cut a plain answer short)."""
    if target != "generate":
        return answer_content(target, payload), "stop"
    users = _texts(payload, "user")
    prompt = users[-1] if users else ""
    generation = fake_llm.generate_stream(
        fake_llm.TGIRequest(
            inputs=prompt,
            max_new_tokens=_max_tokens(payload),
            return_full_text=False,
            stop=_stop(payload),
            json_schema=_json_schema(payload),
        )
    )
    text = generation.generated_text
    if generation.finish_reason == "stop_sequence":  # OpenAI leaves the stop sequence out
        text = next((text[: -len(s)] for s in _stop(payload) if s and text.endswith(s)), text)
    return text, "length" if generation.finish_reason == "length" else "stop"


def _stop(payload: Mapping[str, Any]) -> tuple[str, ...]:
    stop = payload.get("stop")
    if isinstance(stop, str):
        return (stop,)
    return tuple(s for s in stop if isinstance(s, str)) if isinstance(stop, list) else ()


def _json_schema(payload: Mapping[str, Any]) -> dict[str, Any] | None:
    """The schema a generation's ``response_format`` asks for (any object for ``json_object``)."""
    response_format = payload.get("response_format")
    if not isinstance(response_format, dict):
        return None
    if response_format.get("type") == "json_object":
        return {"type": "object", "properties": {}}
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, dict) else None
    return schema if response_format.get("type") == "json_schema" and isinstance(schema, dict) else None


def answer_content(target: str, payload: Mapping[str, Any]) -> str:
    """The assistant message content the emulated model gives for this request (deterministic).

    ``generate``: the grounded answer ``fake_llm`` gives for the RAG prompt in the last user message.
    """
    if target == "generate":
        return _answer(target, payload)[0]
    users = _texts(payload, "user")
    question = users[-1] if users else ""
    if target == "self_query":
        return json.dumps({"author": fake_llm.find_person_name(question)})
    if target == "rewrite":
        history, follow_up = fake_llm.parse_transcript(question)
        return json.dumps({"question": fake_llm.rewrite_follow_up(history, follow_up)})
    schema = None
    response_format = payload.get("response_format")
    if isinstance(response_format, dict) and isinstance(response_format.get("json_schema"), dict):
        schema = response_format["json_schema"].get("schema")
    count = fake_llm.expansion_count([*_texts(payload, "system"), *users], schema)
    return json.dumps({"queries": fake_llm.expand_query(question, count)})


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _usage(payload: Mapping[str, Any], content: str) -> dict[str, int]:
    prompt_tokens = sum(_tokens(t) for role in ("system", "user") for t in _texts(payload, role))
    completion_tokens = _tokens(content)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _completion_id(payload: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:24]
    return f"chatcmpl-emu{digest}"


def completion_body(payload: Mapping[str, Any], content: str, finish_reason: str = "stop") -> dict[str, Any]:
    """A ``chat.completion`` object as OpenAI returns it."""
    return {
        "id": _completion_id(payload),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": payload.get("model"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": _usage(payload, content),
        "service_tier": "default",
        "system_fingerprint": "fp_emulator",
    }


class _Chunks:
    """Builds the ``chat.completion.chunk`` objects of one streamed completion, as SSE lines."""

    def __init__(self, payload: Mapping[str, Any]) -> None:
        self._base: dict[str, Any] = {
            "id": _completion_id(payload),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": payload.get("model"),
            "service_tier": "default",
            "system_fingerprint": "fp_emulator",
        }
        options = payload.get("stream_options")
        self.include_usage = isinstance(options, dict) and options.get("include_usage") is True
        if self.include_usage:
            self._base["usage"] = None

    @staticmethod
    def line(data: Mapping[str, Any] | str) -> bytes:
        text = data if isinstance(data, str) else json.dumps(data)
        return f"data: {text}\n\n".encode()

    def choice(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return self.line(self._base | {"choices": [choice]})

    def usage(self, usage: dict[str, int]) -> bytes:
        return self.line(self._base | {"choices": [], "usage": usage})


async def stream_completion(
    request: web.Request,
    state: EmulatorState,
    record: RequestRecord,
    fault: Fault | None,
    content: str,
    finish_reason: str,
    delay: float,
) -> web.StreamResponse:
    """``stream: true``: the completion as ``chat.completion.chunk`` SSE lines, a word per token pause.

    A role chunk, the content word by word, a chunk with ``finish_reason`` and an empty delta, the usage
    chunk when ``stream_options.include_usage`` is set, then ``data: [DONE]``. A ``break`` fault cuts the
    connection (or, ``error_code="error"``, sends an error event) after ``after_tokens`` words; a
    ``truncated`` one cuts it halfway; a ``malformed`` one sends a chunk that is not JSON.
    """
    kind = fault.kind if fault is not None else None
    if fault is not None and kind == "hang":
        return await wire.hang(request, state, fault.hang_seconds, record)
    if kind == "drop":
        return wire.drop(request, record)
    payload: Mapping[str, Any] = record.payload
    chunks = _Chunks(payload)
    tokens = fake_llm.split_tokens(content)
    token_seconds = state.plan.token_seconds(fault)
    stop_after = len(tokens)
    if fault is not None and kind == "break":
        stop_after = min(fault.break_after, len(tokens))
    elif kind == "truncated":
        stop_after = len(tokens) // 2

    response = web.StreamResponse(
        headers={"x-request-id": _request_id(), "openai-processing-ms": str(round(delay * 1000))}
    )
    response.content_type = "text/event-stream"
    response.charset = "utf-8"
    record.tokens_sent = 0
    with streaming.observe_disconnect(record):
        await response.prepare(request)
        record.status = 200
        await response.write(chunks.choice({"role": "assistant", "content": "", "refusal": None}))
        if fault is not None and kind == "malformed":
            body = wire.DEFAULT_MALFORMED_BODY if fault.body is None else fault.body
            await response.write(chunks.line(body) + chunks.line("[DONE]"))
            await response.write_eof()
            return response
        for index, token in enumerate(tokens[:stop_after]):
            if not await wire.pause(state, token_seconds):  # the emulator is shutting down
                streaming.close_connection(request)
                return response
            await response.write(chunks.choice({"content": token}))
            record.tokens_sent = index + 1
        if fault is not None and kind == "break" and fault.error_code == "error":
            error = {
                "message": fault.message or "The server had an error while processing your request.",
                "type": "server_error",
                "param": None,
                "code": "server_error",
            }
            await response.write(chunks.line({"error": error}))
            await response.write_eof()
            return response
        if kind in {"break", "truncated"}:
            streaming.close_connection(request)
            return response
        tail = chunks.choice({}, finish_reason)
        if chunks.include_usage:
            tail += chunks.usage(_usage(payload, content))
        await response.write(tail + chunks.line("[DONE]"))
        await response.write_eof()
    return response


def _bearer(request: web.BaseRequest) -> bool:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(key.strip())


async def chat_completions(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    raw = await request.read()
    try:
        payload: Any = json.loads(raw)
    except ValueError:
        payload = None
    target = classify(payload) if isinstance(payload, dict) else "chat"
    stream = isinstance(payload, dict) and bool(payload.get("stream"))
    record = state.log.record(
        target, request.method, request.path, payload, bearer=_bearer(request), stream=stream
    )

    if not record.bearer:
        record.status = 401
        return error_response(
            401,
            "You didn't provide an API key. You need to provide your API key in an Authorization header "
            "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            code=None,
        )
    if not isinstance(payload, dict):
        record.status = 400
        return error_response(
            400, "We could not parse the JSON body of your request. The OpenAI API expects a JSON payload."
        )
    for field in ("model", "messages"):
        if not payload.get(field):
            record.status = 400
            return error_response(400, f"Missing required parameter: '{field}'.", param=field)

    fault, delay, early = await wire.admit(request, state, record, target, _fault_error)
    if early is not None:
        return early

    if fault is not None and fault.kind == "content" and fault.body is not None:
        content, finish_reason = fault.body, "stop"
    else:
        content, finish_reason = _answer(target, payload)
    if stream:
        return await stream_completion(request, state, record, fault, content, finish_reason, delay)
    body = completion_body(payload, content, finish_reason)
    response = web.json_response(
        body, headers={"x-request-id": _request_id(), "openai-processing-ms": str(round(delay * 1000))}
    )
    return await wire.deliver(request, state, record, fault, response)


def build_openai_app(latency: float = 0.0) -> web.Application:
    """The OpenAI emulator: ``POST /v1/chat/completions`` (or without ``/v1``) plus ``/_emulator``."""
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    control.install(app, EmulatorState("openai", FaultPlan(CHAT_TARGETS, {"chat": latency})))
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/chat/completions", chat_completions)
    return app
