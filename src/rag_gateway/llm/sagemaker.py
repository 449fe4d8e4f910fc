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
from rag_gateway.llm.base import DEFAULT_PARAMS, Generation, GenerationParams, StreamEvent, TokenDelta
from rag_gateway.llm.tgi_stream import StopTrimmer, TGIStreamParser
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
    return parse_generation(body)[0]


def parse_generation(body: bytes) -> tuple[str, dict[str, Any]]:
    """TGI's ``generated_text`` and its ``details`` object ({} when the answer has none)."""
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
    details = data.get("details") if isinstance(data, dict) else None
    return text, details if isinstance(details, dict) else {}


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def json_grammar(schema: dict[str, Any]) -> dict[str, Any]:
    """TGI's ``grammar`` parameter for a JSON schema (TGI compiles it into a constrained decoder)."""
    return {"type": "json", "value": schema}


class SageMakerLLM:
    """Generates with ``invoke_endpoint`` (or streams with ``invoke_endpoint_with_response_stream``) on the
    shared ``sagemaker-runtime`` client."""

    name = "sagemaker"

    def __init__(self, client: Any, guard: UpstreamGuard, settings: Settings) -> None:
        self._client = client
        self._guard = guard
        self.endpoint_name = settings.sagemaker_endpoint_inference
        # The settings are the defaults a request may override; they satisfy TGI's rules (temperature > 0,
        # 0 < top_p < 1), and so does `parameters` for whatever a request asks.
        self._max_new_tokens = settings.max_new_tokens_inference
        self._temperature = settings.temperature_inference
        self._top_p = settings.top_p_inference
        self._repetition_penalty = settings.repetition_penalty_inference

    def parameters(self, params: GenerationParams = DEFAULT_PARAMS) -> dict[str, Any]:
        """TGI's ``parameters`` for one request, following TGI's validation rules.

        - ``details``: finish reason and generated token count, and on a stream the prompt's token count
          (``input_length``). ``decoder_input_details`` (the prompt's tokens as ``prefill``) is not asked
          for: it makes TGI compute logits over the whole prompt (prompt length x vocabulary, about 1 GB
          for 2,000 tokens of a Llama 3 vocabulary) for a number the gateway can count itself; a
          ``prefill`` that does come back is still used.
        - temperature 0 is greedy decoding: ``do_sample: false`` and neither temperature nor top_p (TGI
          rejects a temperature of 0, and any temperature or top_p other than 1 turns sampling back on).
        - top_p 1 means "no nucleus filter": omitted (TGI accepts only 0 < top_p < 1).
        """
        parameters: dict[str, Any] = {
            "max_new_tokens": params.max_new_tokens or self._max_new_tokens,
            "repetition_penalty": self._repetition_penalty,
            "return_full_text": False,
            "details": True,
        }
        temperature = self._temperature if params.temperature is None else params.temperature
        if temperature == 0:
            parameters["do_sample"] = False
        else:
            parameters["do_sample"] = True
            parameters["temperature"] = temperature
            top_p = self._top_p if params.top_p is None else params.top_p
            if top_p < 1:
                parameters["top_p"] = top_p
        if params.seed is not None:
            parameters["seed"] = params.seed
        if params.stop:
            parameters["stop"] = list(params.stop)
        if params.frequency_penalty:
            parameters["frequency_penalty"] = params.frequency_penalty
        if params.json_schema is not None:
            parameters["grammar"] = json_grammar(params.json_schema)
        return parameters

    def payload(
        self, prompt: str, params: GenerationParams = DEFAULT_PARAMS, *, stream: bool = False
    ) -> bytes:
        body: dict[str, Any] = {"inputs": prompt, "parameters": self.parameters(params)}
        if stream:
            body["stream"] = True
        return json.dumps(body).encode()

    async def generate(self, prompt: str, params: GenerationParams = DEFAULT_PARAMS) -> Generation:
        return await self._guard.call(lambda: self._generate_once(prompt, params))

    async def _generate_once(self, prompt: str, params: GenerationParams) -> Generation:
        try:
            response = await self._client.invoke_endpoint(
                EndpointName=self.endpoint_name,
                ContentType="application/json",
                Accept="application/json",
                Body=self.payload(prompt, params),
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
        text, details = parse_generation(body)
        text = text.removeprefix(prompt)
        finish_reason = details.get("finish_reason")
        if finish_reason == "stop_sequence":  # TGI keeps the stop sequence; OpenAI's API does not
            text = StopTrimmer(params.stop).finish(text, stopped=True)
        prefill = details.get("prefill")
        return Generation(
            text.strip(),
            finish_reason if isinstance(finish_reason, str) else None,
            _count(details.get("generated_tokens")),
            len(prefill) if isinstance(prefill, list) and prefill else None,
        )

    async def _open_stream(self, prompt: str, params: GenerationParams) -> Any:
        try:
            response = await self._client.invoke_endpoint_with_response_stream(
                EndpointName=self.endpoint_name,
                ContentType="application/json",
                Body=self.payload(prompt, params, stream=True),
            )
        except (BotoCoreError, ClientError) as exc:
            raise map_sagemaker_error(exc) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise UpstreamUnavailableError(
                "the LLM endpoint dropped the connection", upstream=UPSTREAM
            ) from exc
        return response["Body"]

    async def stream(
        self, prompt: str, params: GenerationParams = DEFAULT_PARAMS
    ) -> AsyncIterator[StreamEvent]:
        # Only opening the stream is retried: once tokens flow, a retry would repeat them.
        body = await self._guard.call(lambda: self._open_stream(prompt, params))
        parser = TGIStreamParser()
        trimmer = StopTrimmer(params.stop)
        try:
            async for event in body:
                part = event.get("PayloadPart")
                if part:
                    for item in parser.feed(part.get("Bytes", b"")):
                        for out in _trimmed(item, trimmer):
                            yield out
            for item in parser.close():
                for out in _trimmed(item, trimmer):
                    yield out
        except EventStreamError as exc:  # ModelStreamError / InternalStreamFailure mid-stream
            raise UpstreamBadResponseError("the LLM stream failed mid-answer", upstream=UPSTREAM) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise UpstreamBadResponseError("the LLM stream was cut off", upstream=UPSTREAM) from exc
        finally:
            body.close()  # also on cancellation: closing the connection stops the upstream generation


def _trimmed(event: StreamEvent, trimmer: StopTrimmer) -> list[StreamEvent]:
    """A parsed event with the stop sequence held back (and dropped once TGI says it matched)."""
    if isinstance(event, TokenDelta):
        text = trimmer.feed(event.text)
        return [TokenDelta(text)] if text else []
    tail = trimmer.finish("", stopped=event.finish_reason == "stop_sequence")
    return [TokenDelta(tail), event] if tail else [event]
