"""The shared `AsyncOpenAI` (pool, timeouts), its structured-output chat call, and its error map.

Retry ownership: the SDK makes exactly one attempt (``max_retries=0``); every retry belongs to the
gateway's per-upstream guard (`rag_gateway.resilience.guard`), so attempts are never multiplied.
"""

from __future__ import annotations

import ssl
import weakref
from typing import Any

import aiohttp
import httpx2
import openai
import orjson

from rag_gateway.config import Settings
from rag_gateway.errors import (
    GatewayError,
    UpstreamBadResponseError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
    parse_retry_after,
)
from rag_gateway.resilience.guard import UpstreamGuard
from rag_gateway.runtime.request_context import current_request_id

UPSTREAM = "openai"


def make_openai_client(settings: Settings) -> openai.AsyncOpenAI:
    """`AsyncOpenAI` on an explicitly sized connection pool with explicit timeouts.

    The pool is the SDK's own aiohttp-backed httpx client (``DefaultAioHttpClient``): the same httpx
    interface, but aiohttp's C HTTP parser and connection pool instead of httpcore on anyio. On the
    benchmark it lowered the client's CPU per chat call (docs/performance.md), and CPU on the event loop
    is what bounds this gateway under load.
    """
    timeout = openai.Timeout(settings.openai_timeout_s, connect=settings.openai_connect_timeout_s)
    http_client = openai.DefaultAioHttpClient(
        timeout=timeout,
        limits=httpx2.Limits(
            max_connections=settings.openai_max_connections,
            max_keepalive_connections=settings.openai_max_keepalive,
            keepalive_expiry=30.0,
        ),
    )
    return openai.AsyncOpenAI(
        api_key=settings.openai_api_key.get_secret_value() or "missing-key",
        base_url=settings.openai_base_url,
        timeout=timeout,
        max_retries=0,
        http_client=http_client,
    )


def map_openai_error(
    exc: openai.OpenAIError,
    step: str,
    *,
    upstream: str = UPSTREAM,
    retry_bad_response: bool = True,
) -> GatewayError:
    """Translate an openai SDK exception (the SDK makes one attempt) into what the client should see.

    ``upstream`` names the upstream on the error (metrics, logs). ``retry_bad_response=False`` makes a 5xx
    answer not retryable -- for calls whose retry would redo expensive work, like a whole generation;
    connection failures, timeouts and 429/503 stay retryable either way.
    """
    if isinstance(exc, openai.APITimeoutError) and _timed_out(exc):
        return UpstreamTimeoutError(
            f"{step}: the language model API timed out", upstream=upstream, retryable=True
        )
    if isinstance(exc, openai.APIConnectionError):
        return UpstreamUnavailableError(
            f"{step}: the language model API is unreachable", upstream=upstream, retryable=True
        )
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if status in (429, 503):
            return UpstreamUnavailableError(
                f"{step}: the language model API is overloaded or rate-limited",
                upstream=upstream,
                retry_after=_retry_after(exc),
                retryable=True,
            )
        return UpstreamBadResponseError(
            f"{step}: the language model API returned an error (HTTP {status})",
            upstream=upstream,
            retryable=retry_bad_response and status >= 500,
            counts_as_upstream_failure=status >= 500 or status in (401, 403),
        )
    return UpstreamBadResponseError(
        f"{step}: the language model API sent an unusable answer", upstream=upstream
    )


def _timed_out(exc: openai.APITimeoutError) -> bool:
    """False when the aiohttp transport reported a dropped connection as a timeout.

    Its exception map turns every ``aiohttp.ClientConnectionError`` (a server that hung up included) into
    ``httpx.ConnectTimeout``; the original error is still the cause, so look there.
    """
    cause = exc.__cause__
    while cause is not None:
        if isinstance(cause, aiohttp.ClientConnectionError) and not isinstance(cause, TimeoutError):
            return False
        cause = cause.__cause__
    return True


def _retry_after(exc: openai.APIStatusError) -> float | None:
    return parse_retry_after(exc.response.headers.get("retry-after"))


#: Per client, computed once: the SDK's default headers (auth, user agent, organization, telemetry), and
#: the base URL as text (httpx2 re-parses a URL object on every join).
_HEADERS: weakref.WeakKeyDictionary[openai.AsyncOpenAI, tuple[str, dict[str, str]]] = (
    weakref.WeakKeyDictionary()
)


def _post_target(client: openai.AsyncOpenAI) -> tuple[str, dict[str, str]]:
    target = _HEADERS.get(client)
    if target is None:
        defaults = {key: value for key, value in client.default_headers.items() if isinstance(value, str)}
        base = str(client.base_url)  # the SDK keeps a trailing "/"
        target = _HEADERS[client] = (
            base if base.endswith("/") else base + "/",
            {**defaults, **client.auth_headers},
        )
    return target


async def post_json(client: openai.AsyncOpenAI, path: str, body: bytes) -> httpx2.Response:
    """POST a serialised JSON body on the SDK's own pooled HTTP client, as the SDK would send it (its
    default and auth headers, base URL, timeouts, one attempt), raising the SDK's own error classes.

    Skips the SDK's request machinery (options models, header merging, URL re-parsing, the response
    pipeline): half the client CPU per call on the benchmark (docs/performance.md). The pooled client is
    the SDK's private ``_client`` (the SDK version is pinned); the SDK's ``post`` is the fallback.
    """
    http = getattr(client, "_client", None)
    if not isinstance(http, httpx2.AsyncClient):  # pragma: no cover - another SDK layout: its own path
        return await client.post(path, cast_to=httpx2.Response, content=body)
    base, defaults = _post_target(client)
    headers = {**defaults, "X-Request-ID": current_request_id()}
    request = http.build_request("POST", base + path.lstrip("/"), content=body, headers=headers)
    try:
        response = await http.send(request)
    except httpx2.TimeoutException as exc:  # as the SDK maps them (one attempt, max_retries=0)
        raise openai.APITimeoutError(request=request) from exc
    except (httpx2.RequestError, ssl.SSLError) as exc:
        raise openai.APIConnectionError(request=request) from exc
    if response.status_code >= 400:
        raise openai.APIStatusError(
            f"Error code: {response.status_code}", response=response, body=_json_or_none(response.content)
        )
    return response


def _json_or_none(content: bytes) -> object:
    try:
        return orjson.loads(content)
    except ValueError:
        return None


async def structured_chat(
    client: openai.AsyncOpenAI,
    guard: UpstreamGuard,
    *,
    model: str,
    system: str,
    user: str,
    schema_name: str,
    schema: dict[str, Any],
    step: str,
) -> str:
    """One chat completion constrained to a JSON schema; returns the raw message content ('' if none).

    The system prompt and the user's text travel as separate messages, so nothing a user writes can
    rewrite the instruction.
    """

    # Serialised once per call (not per attempt), by orjson.
    body = orjson.dumps(
        {
            "model": model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": schema_name, "schema": schema, "strict": True},
            },
            "temperature": 0,
        }
    )

    async def attempt() -> str:
        try:
            # The SDK's pooled client and error classes, not its typed ``chat.completions.create``: no
            # walk of the typed parameters, no pydantic models per call (docs/performance.md).
            response = await post_json(client, "chat/completions", body)
            return message_content(orjson.loads(response.content))
        except openai.OpenAIError as exc:
            raise map_openai_error(exc, step) from exc
        except ValueError as exc:  # a body that is not JSON at all
            raise _unusable(step) from exc

    return await guard.call(attempt)


def message_content(completion: object) -> str:
    """The first choice's message content of a chat completion ('' when there is none).

    Raises ``ValueError`` when the body is not a chat completion at all.
    """
    choices = completion.get("choices") if isinstance(completion, dict) else None
    if not isinstance(choices, list):
        raise ValueError("not a chat completion")
    if not choices:
        return ""
    message = choices[0].get("message") if isinstance(choices[0], dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    return content if isinstance(content, str) else ""


def _unusable(step: str) -> UpstreamBadResponseError:
    return UpstreamBadResponseError(
        f"{step}: the language model API sent an unusable answer", upstream=UPSTREAM
    )
