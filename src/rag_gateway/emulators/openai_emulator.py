"""An OpenAI Chat Completions emulator that the real ``openai`` SDK talks to unmodified.

It answers the gateway's two structured-output calls: self-query (``{"author": ...}``) and query
expansion (``{"queries": [...]}``), picked by the JSON schema's name. Errors use OpenAI's real shape,
``{"error": {"message", "type", "param", "code"}}``, with ``retry-after`` headers where OpenAI sends them.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from rag_gateway.emulators import control, fake_llm, wire
from rag_gateway.emulators.faults import CHAT_TARGETS, Fault, FaultPlan
from rag_gateway.emulators.state import STATE, EmulatorState

SELF_QUERY_SCHEMA = "self_query"
EXPANSION_SCHEMA = "query_expansion"
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


def classify(payload: Mapping[str, Any]) -> str:
    """``self_query`` or ``expansion``: by the JSON schema's name, else by the system prompt's wording."""
    response_format = payload.get("response_format")
    if isinstance(response_format, dict):
        schema = response_format.get("json_schema")
        name = schema.get("name") if isinstance(schema, dict) else None
        if name == SELF_QUERY_SCHEMA:
            return "self_query"
        if name == EXPANSION_SCHEMA:
            return "expansion"
    system = " ".join(_texts(payload, "system")).lower()
    return "self_query" if "extract" in system else "expansion"


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


def answer_content(target: str, payload: Mapping[str, Any]) -> str:
    """The assistant message content the emulated model gives for this request (deterministic)."""
    users = _texts(payload, "user")
    question = users[-1] if users else ""
    if target == "self_query":
        return json.dumps({"author": fake_llm.find_person_name(question)})
    schema = None
    response_format = payload.get("response_format")
    if isinstance(response_format, dict) and isinstance(response_format.get("json_schema"), dict):
        schema = response_format["json_schema"].get("schema")
    count = fake_llm.expansion_count([*_texts(payload, "system"), *users], schema)
    return json.dumps({"queries": fake_llm.expand_query(question, count)})


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def completion_body(payload: Mapping[str, Any], content: str) -> dict[str, Any]:
    """A ``chat.completion`` object as OpenAI returns it."""
    prompt_tokens = sum(_tokens(t) for role in ("system", "user") for t in _texts(payload, role))
    completion_tokens = _tokens(content)
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:24]
    return {
        "id": f"chatcmpl-emu{digest}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": payload.get("model"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "service_tier": "default",
        "system_fingerprint": "fp_emulator",
    }


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
    record = state.log.record(target, request.method, request.path, payload, bearer=_bearer(request))

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
    if payload.get("stream"):
        record.status = 400
        return error_response(400, "The emulator does not support stream=true.", param="stream")

    fault = state.plan.take(target)
    record.fault = fault.kind if fault is not None else None
    delay = state.plan.latency_for(target)
    if fault is not None and fault.kind == "latency":
        delay += fault.seconds or 0.0
    if not await wire.pause(state, delay):
        return wire.drop(request, record)
    if fault is not None and fault.kind == "status":
        response = _fault_error(fault)
        record.status = response.status
        return response

    content = fault.body if fault is not None and fault.kind == "content" and fault.body is not None else None
    body = completion_body(payload, content if content is not None else answer_content(target, payload))
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
