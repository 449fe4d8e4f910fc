"""The shared `AsyncOpenAI` (pool, timeouts), its structured-output chat call, and its error map.

Retry ownership: the SDK makes exactly one attempt (``max_retries=0``); every retry belongs to the
gateway's per-upstream guard (`rag_gateway.resilience.guard`), so attempts are never multiplied.
"""

from __future__ import annotations

import ssl
import weakref
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx2
import openai
import orjson
from openai._vendor.httpx_aiohttp.transport import AiohttpTransport

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


@dataclass(frozen=True)
class _Route:
    """Where ``post_json`` sends a client's calls, computed once per client: the aiohttp transport the
    SDK's pooled client runs on, the base URL as text, the headers the SDK would send (httpx's client
    defaults, then the SDK's default and auth headers) and its timeouts."""

    transport: AiohttpTransport
    base: str
    headers: dict[str, str]
    timeout: aiohttp.ClientTimeout

    def session(self) -> aiohttp.ClientSession:
        """The transport's own pool; the transport makes it on first use, and so does this."""
        if not isinstance(self.transport.client, aiohttp.ClientSession):
            self.transport.client = self.transport.get_client()
        return self.transport.client


_ROUTES: weakref.WeakKeyDictionary[openai.AsyncOpenAI, _Route | None] = weakref.WeakKeyDictionary()


def _route(client: openai.AsyncOpenAI) -> _Route | None:
    """The client's route, or None when it does not run on the aiohttp transport ``make_openai_client``
    gives it (then ``post_json`` takes the SDK's own path)."""
    if client in _ROUTES:
        return _ROUTES[client]
    http = getattr(client, "_client", None)
    transport = getattr(http, "_transport", None)
    route = None
    if isinstance(http, httpx2.AsyncClient) and isinstance(transport, AiohttpTransport):
        base = str(client.base_url)  # the SDK keeps a trailing "/"
        headers = dict(http.headers.items())
        headers.update((k, v) for k, v in client.default_headers.items() if isinstance(v, str))
        headers.update(client.auth_headers)
        timeout = http.timeout
        route = _Route(
            transport,
            base if base.endswith("/") else base + "/",
            headers,
            aiohttp.ClientTimeout(sock_connect=timeout.connect, sock_read=timeout.read, connect=timeout.pool),
        )
    _ROUTES[client] = route
    return route


async def post_json(client: openai.AsyncOpenAI, path: str, body: bytes) -> bytes:
    """POST a serialised JSON body as the SDK would send it (its headers, base URL, timeouts, connection
    pool, one attempt) and return the answer's body, raising the SDK's own error classes.

    Goes straight to the aiohttp session under the SDK's pooled client: no options models, header
    merging, URL re-parsing, httpx request and response objects or response pipeline, which cost
    event-loop CPU on every call (docs/performance.md). The transport is the SDK's private
    ``_client._transport`` (the SDK version is pinned); any other client layout takes the SDK's ``post``.
    """
    route = _route(client)
    if route is None:  # pragma: no cover - another SDK layout: its own path
        return (await client.post(path, cast_to=httpx2.Response, content=body)).content
    url = route.base + path.lstrip("/")
    headers = {**route.headers, "X-Request-ID": current_request_id()}
    try:
        async with route.session().post(url, data=body, headers=headers, timeout=route.timeout) as response:
            content = await response.read()
            status, raw_headers = response.status, response.raw_headers
    except TimeoutError as exc:  # aiohttp's connect and read timeouts are TimeoutErrors
        raise openai.APITimeoutError(request=_failed_request(url)) from exc
    except (aiohttp.ClientError, ssl.SSLError, OSError) as exc:
        raise openai.APIConnectionError(request=_failed_request(url)) from exc
    if status >= 400:
        answer = httpx2.Response(status, headers=raw_headers, content=content, request=_failed_request(url))
        raise openai.APIStatusError(f"Error code: {status}", response=answer, body=_json_or_none(content))
    return content


def _failed_request(url: str) -> httpx2.Request:
    """The httpx request the SDK's error classes carry; made only when a call fails."""
    return httpx2.Request("POST", url)


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
            return message_content(orjson.loads(await post_json(client, "chat/completions", body)))
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
