"""A SageMaker Runtime ``InvokeEndpoint`` emulator fronting an emulated Hugging Face TGI container.

It speaks the REST path botocore signs and calls (``POST /endpoints/{name}/invocations``), answers with
TGI's ``[{"generated_text": ...}]``, and words errors the way botocore's rest-json parser reads them: the
code in ``x-amzn-ErrorType``, ``Message`` in the JSON body, and for ``ModelError`` (a container's own 4xx
or 5xx, wrapped by SageMaker as 424) the modeled ``OriginalStatusCode``/``OriginalMessage``/``LogStreamArn``.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from rag_gateway.emulators import control, fake_llm, wire
from rag_gateway.emulators.faults import INVOCATION_TARGETS, Fault, FaultPlan
from rag_gateway.emulators.state import STATE, EmulatorState

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


async def invocations(request: web.Request) -> web.StreamResponse:
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
        "invocations", request.method, request.path, payload, sigv4=sigv4, endpoint=endpoint
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
    region = _region(authorization)
    if endpoint not in endpoints:
        record.status = 400
        return error_response("ValidationError", f"Endpoint {endpoint} of account {ACCOUNT_ID} not found.")

    fault = state.plan.take("invocations")
    record.fault = fault.kind if fault is not None else None
    delay = state.plan.latency_for("invocations")
    if fault is not None and fault.kind == "latency":
        delay += fault.seconds or 0.0
    if not await wire.pause(state, delay):
        return wire.drop(request, record)
    if fault is not None and fault.kind == "status":
        response = _fault_error(fault, endpoint, region)
        record.status = response.status
        return response

    try:
        tgi_request = fake_llm.parse_tgi_request(payload)
    except fake_llm.TGIValidationError as exc:
        response = model_error(endpoint, region, 422, exc.body())
    else:
        generated = fake_llm.generate(tgi_request)
        response = web.json_response(
            [{"generated_text": generated}],
            headers={"x-Amzn-Invoked-Production-Variant": VARIANT, "x-amzn-RequestId": _request_id()},
        )
    return await wire.deliver(request, state, record, fault, response)


def build_sagemaker_app(
    endpoint_names: str | Iterable[str] = "twin", latency: float = 0.0
) -> web.Application:
    """The SageMaker Runtime emulator serving ``endpoint_names``, plus its ``/_emulator`` control API."""
    names = frozenset([endpoint_names] if isinstance(endpoint_names, str) else endpoint_names)
    app = web.Application(client_max_size=MAX_PAYLOAD_BYTES)
    app[ENDPOINTS] = names
    control.install(app, EmulatorState("sagemaker", FaultPlan(INVOCATION_TARGETS, {"invocations": latency})))
    app.router.add_post("/endpoints/{name}/invocations", invocations)
    return app
