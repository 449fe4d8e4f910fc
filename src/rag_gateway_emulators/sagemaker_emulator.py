"""A SageMaker Runtime emulator fronting an emulated Hugging Face TGI container.

It speaks the REST paths botocore signs and calls: ``InvokeEndpoint`` (``POST /endpoints/{name}/invocations``)
answers with TGI's ``[{"generated_text": ...}]``; ``InvokeEndpointWithResponseStream``
(``POST /endpoints/{name}/invocations-response-stream``) answers ``application/vnd.amazon.eventstream``:
``PayloadPart`` events whose raw bytes, concatenated, are TGI's ``/generate_stream`` SSE lines. Errors are
worded the way botocore's rest-json parser reads them: the code in ``x-amzn-ErrorType``, ``Message`` in the
JSON body, and for ``ModelError`` (a container's own 4xx or 5xx, wrapped by SageMaker as 424) the modeled
``OriginalStatusCode``/``OriginalMessage``/``LogStreamArn``. Mid-stream failures are ``ModelStreamError`` /
``InternalStreamFailure`` exception events, a TGI ``{"error": ...}`` line, or a closed connection.
"""

from __future__ import annotations

import json
import re
import uuid
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from rag_gateway_emulators import control, eventstream, fake_llm, streaming, wire
from rag_gateway_emulators.faults import INVOCATION_TARGETS, Fault, FaultPlan
from rag_gateway_emulators.state import STATE, EmulatorState, RequestRecord

ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"
VARIANT = "AllTraffic"
#: InvokeEndpoint's payload limit (6 MB); larger bodies are refused with 413.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
_SAGEMAKER_NS = "http://internal.amazon.com/coral/com.amazon.sagemaker/"
_CORAL_NS = "http://internal.amazon.com/coral/com.amazon.coral.service/"
ENDPOINTS: web.AppKey[frozenset[str]] = web.AppKey("sagemaker_endpoints")
_CREDENTIAL = re.compile(r"Credential=[^/,\s]+/\d{8}/(?P<region>[^/,\s]+)/")

#: HTTP status SageMaker answers each error code with (from the service model; throttling is a 400).
ERROR_STATUS: dict[str, int] = {
    "ModelError": 424,
    "ValidationError": 400,
    "ModelNotReadyException": 429,
    "ServiceUnavailable": 503,
    "InternalFailure": 500,
    "InternalDependencyException": 530,
    "ThrottlingException": 400,
}
_CODE_FOR_STATUS = {
    424: "ModelError",
    400: "ValidationError",
    429: "ModelNotReadyException",
    503: "ServiceUnavailable",
    500: "InternalFailure",
    530: "InternalDependencyException",
}
_DEFAULT_MESSAGES = {
    "ValidationError": "1 validation error detected.",
    "ModelNotReadyException": "Model is not ready yet. Please try again later.",
    "ServiceUnavailable": "Service Unavailable. Please try again later.",
    "InternalFailure": "An internal error occurred. Please try again later.",
    "InternalDependencyException": "An internal dependency failed.",
    "ThrottlingException": "Rate exceeded",
}


def _request_id() -> str:
    return str(uuid.uuid4())


def error_response(
    code: str,
    message: str,
    *,
    status: int | None = None,
    namespace: str = _SAGEMAKER_NS,
    extra: dict[str, Any] | None = None,
    retry_after: float | None = None,
) -> web.Response:
    """A SageMaker error: ``x-amzn-ErrorType: Code:namespace`` plus a JSON body with ``Message``."""
    headers = {"x-amzn-ErrorType": f"{code}:{namespace}", "x-amzn-RequestId": _request_id()}
    if retry_after is not None:
        headers["Retry-After"] = f"{retry_after:g}"
    body = {"Message": message, **(extra or {})}
    return web.json_response(body, status=status or ERROR_STATUS.get(code, 500), headers=headers)


def model_error(endpoint: str, region: str, original_status: int, original_message: str) -> web.Response:
    """How SageMaker wraps a container's error answer: 424 ``ModelError`` carrying the original."""
    side = "client" if original_status < 500 else "server"
    log_group = f"/aws/sagemaker/Endpoints/{endpoint}"
    message = (
        f'Received {side} error ({original_status}) from primary with message "{original_message}". '
        f"See https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logEventViewer:"
        f"group={log_group} in account {ACCOUNT_ID} for more information."
    )
    extra = {
        "ErrorCode": f"{side.upper()}_ERROR_FROM_MODEL",
        "OriginalStatusCode": original_status,
        "OriginalMessage": original_message,
        "LogStreamArn": f"arn:aws:logs:{region}:{ACCOUNT_ID}:log-group:{log_group}",
    }
    return error_response("ModelError", message, extra=extra)


def _fault_error(fault: Fault, endpoint: str, region: str) -> web.Response:
    code = fault.error_code or _CODE_FOR_STATUS.get(fault.status or 500, "InternalFailure")
    if code == "ModelError":
        original_status = fault.original_status or 500
        original = fault.message or json.dumps(
            {"error": "Request failed during generation: emulated fault", "error_type": "generation"}
        )
        response = model_error(endpoint, region, original_status, original)
        if fault.status is not None:
            response.set_status(fault.status)
        if fault.retry_after is not None:
            response.headers["Retry-After"] = f"{fault.retry_after:g}"
        return response
    message = fault.message or _DEFAULT_MESSAGES.get(code, "Emulated error.")
    return error_response(code, message, status=fault.status, retry_after=fault.retry_after)


def _region(authorization: str) -> str:
    match = _CREDENTIAL.search(authorization)
    return match["region"] if match else DEFAULT_REGION


@dataclass
class _Admitted:
    """A request that passed SigV4 presence and endpoint checks."""

    state: EmulatorState
    record: RequestRecord
    payload: Any
    endpoint: str
    region: str


async def _admit(request: web.Request, target: str) -> _Admitted | web.Response:
    """Log the request, then check its signature and endpoint as SageMaker does before the model runs."""
    state = request.app[STATE]
    endpoints = request.app[ENDPOINTS]
    endpoint = request.match_info["name"]
    authorization = request.headers.get("Authorization", "")
    sigv4 = authorization.startswith("AWS4-HMAC-SHA256 ") and "Credential=" in authorization
    raw = await request.read()
    try:
        payload: Any = json.loads(raw)
    except ValueError:
        payload = None
    record = state.log.record(
        target,
        request.method,
        request.path,
        payload,
        sigv4=sigv4,
        user_agent=request.headers.get("User-Agent"),
        endpoint=endpoint,
        stream=target == "invocations_stream",
    )

    if not authorization:
        record.status = 403
        return error_response(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
            status=403,
            namespace=_CORAL_NS,
        )
    if not sigv4:
        record.status = 403
        return error_response(
            "IncompleteSignatureException",
            f"Authorization header requires 'Credential' parameter. Authorization={authorization[:40]}",
            status=403,
            namespace=_CORAL_NS,
        )
    if endpoint not in endpoints:
        record.status = 400
        return error_response("ValidationError", f"Endpoint {endpoint} of account {ACCOUNT_ID} not found.")
    return _Admitted(state, record, payload, endpoint, _region(authorization))


async def _before_model(request: web.Request, admitted: _Admitted, target: str) -> wire.Admission:
    """``wire.admit`` for ``target``, a ``status`` fault answering in SageMaker's error shape."""
    return await wire.admit(
        request,
        admitted.state,
        admitted.record,
        target,
        lambda fault: _fault_error(fault, admitted.endpoint, admitted.region),
    )


async def invocations(request: web.Request) -> web.StreamResponse:
    admitted = await _admit(request, "invocations")
    if isinstance(admitted, web.Response):
        return admitted
    with streaming.observe_disconnect(admitted.record):  # a client that gives up is recorded as cancelled
        fault, _, early = await _before_model(request, admitted, "invocations")
    if early is not None:
        return early

    try:
        tgi_request = fake_llm.parse_tgi_request(admitted.payload)
    except fake_llm.TGIValidationError as exc:
        response = model_error(admitted.endpoint, admitted.region, 422, exc.body())
    else:
        generation = fake_llm.generate_stream(tgi_request)
        answer: dict[str, Any] = {"generated_text": generation.generated_text}
        if tgi_request.details:
            answer["details"] = fake_llm.details(tgi_request, generation)
        response = web.json_response(
            [answer],
            headers={"x-Amzn-Invoked-Production-Variant": VARIANT, "x-amzn-RequestId": _request_id()},
        )
    return await wire.deliver(request, admitted.state, admitted.record, fault, response)


# --- InvokeEndpointWithResponseStream -----------------------------------------------------------------


def _token_line(
    index: int, text: str, *, special: bool = False, final: dict[str, Any] | None = None
) -> bytes:
    """One line of TGI's ``/generate_stream`` SSE: ``data:{...}`` and a blank line.

    ``final`` (on the last token) carries ``generated_text`` and ``details``; the id and logprob are
    derived from the text, so the same answer always streams the same bytes.
    """
    digest = zlib.crc32(text.encode("utf-8"))
    event = {
        "index": index + 1,
        "token": {
            "id": 2 if special else 3 + digest % 32000,
            "text": text,
            "logprob": -round(0.01 + (digest >> 16) % 500 / 1000, 3),
            "special": special,
        },
        "generated_text": None,
        "details": None,
    }
    if final is not None:
        event |= final
    return b"data:" + json.dumps(event).encode("utf-8") + b"\n\n"


def tgi_stream_lines(
    generation: fake_llm.Generation, request: fake_llm.TGIRequest | None = None
) -> list[bytes]:
    """TGI's SSE lines for ``generation``, one per token, the last one closing the generation with
    ``details`` (finish reason, generated tokens, seed, and the prompt's ``input_length``, as TGI 2 sends).

    An empty generation still ends with a line: the special end-of-sequence token.
    """
    tokens, special = (generation.tokens, False) if generation.tokens else (["</s>"], True)
    details: dict[str, Any] = {
        "finish_reason": generation.finish_reason,
        "generated_tokens": len(tokens),
        "seed": request.seed if request is not None else None,
    }
    if request is not None:
        details["input_length"] = len(fake_llm.prompt_tokens(request.inputs))
    final = {"generated_text": generation.generated_text, "details": details}
    last = len(tokens) - 1
    return [
        _token_line(i, text, special=special, final=final if i == last else None)
        for i, text in enumerate(tokens)
    ]


def _stream_error_event(fault: Fault) -> bytes:
    if fault.error_code == "InternalStreamFailure":
        message = fault.message or "An internal failure occurred while streaming the response."
        return eventstream.exception_event("InternalStreamFailure", {"Message": message})
    message = fault.message or (
        "Your model's stream was broken: the connection between SageMaker and the model was reset or closed."
    )
    return eventstream.exception_event("ModelStreamError", {"Message": message, "ErrorCode": "StreamBroken"})


def _tgi_error_line(fault: Fault) -> bytes:
    message = fault.message or "Request failed during generation: Server error: emulated generation failure"
    return b"data:" + json.dumps({"error": message, "error_type": "generation"}).encode("utf-8") + b"\n\n"


async def _write_parts(response: web.StreamResponse, parts: list[bytes]) -> None:
    for part in parts:
        await response.write(eventstream.payload_part(part))


async def invocations_stream(request: web.Request) -> web.StreamResponse:
    """``InvokeEndpointWithResponseStream``: TGI's SSE stream, cut into ``PayloadPart`` events.

    Before the stream: the same checks, faults and TGI validation as ``InvokeEndpoint`` (a validation
    error is a 424 ``ModelError``). Then one token per ``stream_tokens`` pause, its bytes written at once
    in parts that do not follow line boundaries (see ``PartSplitter``).
    """
    admitted = await _admit(request, "invocations_stream")
    if isinstance(admitted, web.Response):
        return admitted
    state, record = admitted.state, admitted.record
    fault, _, early = await _before_model(request, admitted, "invocations_stream")
    if early is not None:
        return early
    kind = fault.kind if fault is not None else None

    try:
        tgi_request = fake_llm.parse_tgi_request(admitted.payload)
    except fake_llm.TGIValidationError as exc:
        rejected = model_error(admitted.endpoint, admitted.region, 422, exc.body())
        if fault is not None and kind in {"hang", "drop"}:
            return await wire.deliver(request, state, record, fault, rejected)
        record.status = rejected.status
        return rejected
    if fault is not None and kind == "hang":
        return await wire.hang(request, state, fault.hang_seconds, record)
    if kind == "drop":
        return wire.drop(request, record)

    if fault is not None and kind == "content" and fault.body is not None:
        generation = fake_llm.Generation(fake_llm.split_tokens(fault.body), fault.body, "eos_token")
    else:
        generation = fake_llm.generate_stream(tgi_request)
    lines = tgi_stream_lines(generation, tgi_request)
    token_seconds = state.plan.token_seconds(fault)

    response = web.StreamResponse(
        headers={
            "x-Amzn-Invoked-Production-Variant": VARIANT,
            "X-Amzn-SageMaker-Content-Type": "text/event-stream",
            "x-amzn-RequestId": _request_id(),
        }
    )
    response.content_type = eventstream.CONTENT_TYPE
    splitter = streaming.PartSplitter()
    record.tokens_sent = 0
    with streaming.observe_disconnect(record):
        await response.prepare(request)
        record.status = 200
        if fault is not None and kind == "malformed":
            body = wire.DEFAULT_MALFORMED_BODY if fault.body is None else fault.body
            await _write_parts(response, [b"data:" + body.encode("utf-8") + b"\n\n"])
            await response.write_eof()
            return response
        if kind == "truncated":
            message = eventstream.payload_part(lines[0])
            await response.write(message[: len(message) // 2])
            streaming.close_connection(request)
            return response
        stop_after = fault.break_after if fault is not None and kind == "break" else len(lines)
        for index, line in enumerate(lines[:stop_after]):
            if not await wire.pause(state, token_seconds):  # the emulator is shutting down
                streaming.close_connection(request)
                return response
            # Every other token's tail waits for the next token: parts then span two lines.
            await _write_parts(response, splitter.feed(line, flush=index % 2 == 0))
            record.tokens_sent = index + 1
        await _write_parts(response, splitter.flush())
        if fault is not None and kind == "break":
            how = fault.error_code or "ModelStreamError"
            if how == "drop":
                streaming.close_connection(request)
                return response
            if how == "tgi_error":
                await _write_parts(response, splitter.feed(_tgi_error_line(fault), flush=True))
            else:
                await response.write(_stream_error_event(fault))
        await response.write_eof()
    return response


def build_sagemaker_app(
    endpoint_names: str | Iterable[str] = "twin", latency: float = 0.0
) -> web.Application:
    """The SageMaker Runtime emulator serving ``endpoint_names``, plus its ``/_emulator`` control API."""
    names = frozenset([endpoint_names] if isinstance(endpoint_names, str) else endpoint_names)
    app = web.Application(client_max_size=MAX_PAYLOAD_BYTES)
    app[ENDPOINTS] = names
    control.install(app, EmulatorState("sagemaker", FaultPlan(INVOCATION_TARGETS, {"invocations": latency})))
    app.router.add_post("/endpoints/{name}/invocations", invocations)
    app.router.add_post("/endpoints/{name}/invocations-response-stream", invocations_stream)
    return app
