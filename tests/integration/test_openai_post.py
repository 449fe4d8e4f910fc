"""``post_json``: the chat calls go straight to the aiohttp pool under the SDK's client, and must still look
like the SDK's own calls on the wire and fail with the SDK's own errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import openai
import orjson
import pytest
from aiohttp import web

from rag_gateway.clients.openai import make_openai_client, post_json
from rag_gateway.config import Settings
from rag_gateway.runtime.request_context import request_id_var

BODY = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
#: Headers that differ by design: the SDK's per-attempt ones, the gateway's request id, the transport's own.
PER_CALL = {"x-stainless-retry-count", "x-stainless-read-timeout", "x-request-id", "content-length", "host"}


class Upstream:
    """A local HTTP server that records each request and answers as told."""

    def __init__(self) -> None:
        self.seen: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        self.headers: dict[str, str] = {}
        self.hang = asyncio.Event()  # set only at teardown: until then a hanging handler never answers
        self.hanging = False
        self.drop = False

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(({k.lower(): v for k, v in request.headers.items()}, await request.read()))
        if self.hanging:
            await self.hang.wait()
        if self.drop:
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        body = {"error": {"message": "slow down", "type": "rate_limit"}} if self.status >= 400 else {"ok": 1}
        return web.json_response(body, status=self.status, headers=self.headers)


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[Upstream, openai.AsyncOpenAI]]:
    server = Upstream()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        openai_base_url=f"http://127.0.0.1:{port}/v1",
        openai_api_key="sk-test-key",
        openai_timeout_s=0.5,
    )
    client = make_openai_client(settings)
    try:
        yield server, client
    finally:
        server.hang.set()  # lets a hanging handler finish, so the server stops at once
        await client.close()
        await runner.cleanup()


def comparable(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k not in PER_CALL}


async def test_it_sends_the_sdks_headers_and_body_and_the_request_id(
    upstream: tuple[Upstream, openai.AsyncOpenAI],
) -> None:
    server, client = upstream
    await client.post("chat/completions", cast_to=httpx2.Response, content=BODY)  # the SDK's own path
    token = request_id_var.set("req-123")
    try:
        answer = await post_json(client, "chat/completions", BODY)
    finally:
        request_id_var.reset(token)
    assert orjson.loads(answer) == {"ok": 1}
    (sdk_headers, sdk_body), (ours, our_body) = server.seen
    assert our_body == sdk_body == BODY
    assert comparable(ours) == comparable(sdk_headers)
    assert ours["authorization"] == "Bearer sk-test-key" and ours["x-request-id"] == "req-123"


async def test_an_error_status_is_the_sdks_status_error_with_its_headers_and_body(
    upstream: tuple[Upstream, openai.AsyncOpenAI],
) -> None:
    server, client = upstream
    server.status, server.headers = 429, {"Retry-After": "7"}
    with pytest.raises(openai.APIStatusError) as raised:
        await post_json(client, "chat/completions", BODY)
    assert raised.value.status_code == 429
    assert raised.value.response.headers["retry-after"] == "7"
    body: Any = raised.value.body
    assert body["error"]["type"] == "rate_limit"


async def test_no_answer_in_time_is_the_sdks_timeout_error(
    upstream: tuple[Upstream, openai.AsyncOpenAI],
) -> None:
    server, client = upstream
    server.hanging = True
    with pytest.raises(openai.APITimeoutError):
        await post_json(client, "chat/completions", BODY)


async def test_a_dropped_connection_is_the_sdks_connection_error(
    upstream: tuple[Upstream, openai.AsyncOpenAI],
) -> None:
    server, client = upstream
    server.drop = True
    with pytest.raises(openai.APIConnectionError) as raised:
        await post_json(client, "chat/completions", BODY)
    assert not isinstance(raised.value, openai.APITimeoutError)
