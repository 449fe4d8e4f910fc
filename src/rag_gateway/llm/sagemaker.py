"""The LLM microservice: a Hugging Face TGI container behind a SageMaker endpoint, via aioboto3."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    EventStreamError,
    ReadTimeoutError,
)

from rag_gateway.config import Settings
from rag_gateway.errors import (
    GatewayError,
    UpstreamBadResponseError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
    parse_retry_after,
)
from rag_gateway.llm.base import Generation, StreamEvent
from rag_gateway.llm.tgi_stream import TGIStreamParser
from rag_gateway.resilience import UpstreamGuard
from rag_gateway.runtime.request_context import current_request_id

UPSTREAM = "sagemaker"
#: SageMaker error codes that mean "try again later" rather than "this request is bad".
UNAVAILABLE_CODES = {"ModelNotReadyException", "ServiceUnavailable", "ThrottlingException", "Throttling"}


def map_sagemaker_error(exc: Exception) -> GatewayError:
    """Translate botocore's exceptions into what the client should see (never its text)."""
    if isinstance(exc, ReadTimeoutError):
        # not retried: the endpoint may still be generating, and a retry regenerates the whole answer
        return UpstreamTimeoutError("the LLM endpoint timed out", upstream=UPSTREAM)
    if isinstance(exc, ConnectTimeoutError | EndpointConnectionError):
        return UpstreamUnavailableError("the LLM endpoint is unreachable", upstream=UPSTREAM, retryable=True)
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code in UNAVAILABLE_CODES:
            return UpstreamUnavailableError(
                "the LLM endpoint is busy or not ready",
                upstream=UPSTREAM,
                retryable=True,
                retry_after=_retry_after(exc),
            )
        if code == "ModelError":  # a generation error: never retried
            original = exc.response.get("OriginalStatusCode")
            detail = f" (model status {original})" if isinstance(original, int) else ""
            client_fault = isinstance(original, int) and 400 <= original < 500
            return UpstreamBadResponseError(
                f"the LLM rejected the request{detail}",
                upstream=UPSTREAM,
                counts_as_upstream_failure=not client_fault,
            )
        if code == "ValidationError":
            return UpstreamBadResponseError(
                "the LLM endpoint rejected the request", upstream=UPSTREAM, counts_as_upstream_failure=False
            )
        return UpstreamBadResponseError("the LLM endpoint returned an error", upstream=UPSTREAM)
    return UpstreamBadResponseError("the LLM endpoint failed", upstream=UPSTREAM)


def _retry_after(exc: ClientError) -> float | None:
    headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    return parse_retry_after(headers.get("retry-after"))


def parse_generated_text(body: bytes) -> str:
    """TGI answers ``[{"generated_text": ...}]`` (or a bare object); anything else is a bad response."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise UpstreamBadResponseError(
            "the LLM endpoint sent an unreadable answer", upstream=UPSTREAM
        ) from exc
    if isinstance(data, list) and data:
        data = data[0]
    text = data.get("generated_text") if isinstance(data, dict) else None
    if not isinstance(text, str):
        raise UpstreamBadResponseError("the LLM endpoint sent an unexpected answer", upstream=UPSTREAM)
    return text


class SageMakerLLM:
    """Generates with ``invoke_endpoint`` (or streams with ``invoke_endpoint_with_response_stream``) on the
    shared ``sagemaker-runtime`` client."""

    name = "sagemaker"

    def __init__(self, client: Any, guard: UpstreamGuard, settings: Settings) -> None:
        self._client = client
        self._guard = guard
        self.endpoint_name = settings.sagemaker_endpoint_inference
        # Built once: TGI validates these (temperature > 0, 0 < top_p < 1); the settings enforce it too.
        self._parameters = {
            "max_new_tokens": settings.max_new_tokens_inference,
            "temperature": settings.temperature_inference,
            "top_p": settings.top_p_inference,
            "repetition_penalty": settings.repetition_penalty_inference,
            "return_full_text": False,
        }

    def payload(self, prompt: str, *, stream: bool = False) -> bytes:
        body: dict[str, Any] = {"inputs": prompt, "parameters": self._parameters}
        if stream:
            body["stream"] = True
        return json.dumps(body).encode()

    async def generate(self, prompt: str) -> Generation:
        text = await self._guard.call(lambda: self._generate_once(prompt))
        return Generation(text)

    async def _generate_once(self, prompt: str) -> str:
        try:
            response = await self._client.invoke_endpoint(
                EndpointName=self.endpoint_name,
                ContentType="application/json",
                Accept="application/json",
                Body=self.payload(prompt),
                CustomAttributes=f"request-id={current_request_id()}",  # forwarded to the container
            )
            async with response["Body"] as stream:
                body = await stream.read()
        except (BotoCoreError, ClientError) as exc:
            raise map_sagemaker_error(exc) from exc
        except (aiohttp.ClientError, OSError, ValueError) as exc:  # a connection cut mid-body
            raise UpstreamBadResponseError(
                "the LLM endpoint sent an incomplete answer", upstream=UPSTREAM
            ) from exc
        text = parse_generated_text(body)
        return text.removeprefix(prompt).strip() if text.startswith(prompt) else text.strip()

    async def _open_stream(self, prompt: str) -> Any:
        try:
            response = await self._client.invoke_endpoint_with_response_stream(
                EndpointName=self.endpoint_name,
                ContentType="application/json",
                Body=self.payload(prompt, stream=True),
            )
        except (BotoCoreError, ClientError) as exc:
            raise map_sagemaker_error(exc) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise UpstreamUnavailableError(
                "the LLM endpoint dropped the connection", upstream=UPSTREAM
            ) from exc
        return response["Body"]

    async def stream(self, prompt: str) -> AsyncIterator[StreamEvent]:
        # Only opening the stream is retried: once tokens flow, a retry would repeat them.
        body = await self._guard.call(lambda: self._open_stream(prompt))
        parser = TGIStreamParser()
        try:
            async for event in body:
                part = event.get("PayloadPart")
                if part:
                    for item in parser.feed(part.get("Bytes", b"")):
                        yield item
            for item in parser.close():
                yield item
        except EventStreamError as exc:  # ModelStreamError / InternalStreamFailure mid-stream
            raise UpstreamBadResponseError("the LLM stream failed mid-answer", upstream=UPSTREAM) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise UpstreamBadResponseError("the LLM stream was cut off", upstream=UPSTREAM) from exc
        finally:
            body.close()  # also on cancellation: closing the connection stops the upstream generation
