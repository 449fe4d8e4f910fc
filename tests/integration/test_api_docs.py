"""The API description: /docs and /redoc work with no network, and the OpenAPI document is complete."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

_ASSET = re.compile(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']|url:\s*'([^']+)'""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_docs_pages_load_everything_from_the_gateway(client: httpx.AsyncClient, page: str) -> None:
    response = await client.get(page)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "http://" not in html and "https://" not in html  # no CDN, no fonts, no validator badge
    assets = {a or b for a, b in _ASSET.findall(html)}
    assert {"/openapi.json"} < assets  # the page's own files as well as the document
    for asset in sorted(assets):
        assert asset.startswith("/"), asset
        fetched = await client.get(asset)
        assert fetched.status_code == 200, asset
        assert len(fetched.content) > 100, asset


async def test_the_docs_assets_are_the_real_bundles(client: httpx.AsyncClient) -> None:
    swagger = await client.get("/docs/assets/swagger-ui-bundle.js")
    assert swagger.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert b"SwaggerUIBundle" in swagger.content
    redoc = await client.get("/docs/assets/redoc.standalone.js")
    assert len(redoc.content) > 500_000
    assert (await client.get("/docs/assets/nope.js")).status_code == 404


async def test_the_document_describes_every_route_and_stream(client: httpx.AsyncClient) -> None:
    spec: dict[str, Any] = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    for path, item in paths.items():
        for operation in item.values():
            ok = operation["responses"].get("200", {})
            assert ok.get("content"), f"{path}: no documented 200 body"
    rag = paths["/rag"]["post"]
    assert {"400", "401", "413", "415", "422", "429", "502", "503", "504"} <= set(rag["responses"])
    events = rag["responses"]["200"]["content"]["text/event-stream"]["itemSchema"]["oneOf"]
    assert [e["properties"]["event"]["enum"] for e in events] == [["sources"], ["token"], ["done"], ["error"]]
    chat = paths["/v1/chat/completions"]["post"]
    assert {"400", "404", "422"} <= set(chat["responses"])
    assert chat["responses"]["404"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "OpenAIErrorResponse"
    )
    schemas = spec["components"]["schemas"]
    for ref in ("ChatCompletionChunk", "SourcesEvent", "TokenEvent", "DoneEvent", "ErrorResponse"):
        assert ref in schemas
    timeout = next(p for p in rag["parameters"] if p["name"] == "x-request-timeout")
    assert {"type": "number", "exclusiveMinimum": 0} in timeout["schema"]["anyOf"]
    query = schemas["RagRequest"]["properties"]["query"]
    assert query["maxLength"] == 2000 and query["pattern"].startswith("^")
    request = schemas["ChatCompletionRequest"]["properties"]
    assert request["model"]["anyOf"][0]["enum"] == ["llm-twin"]
    roles = [role for m in request["messages"]["items"]["oneOf"] for role in m["properties"]["role"]["enum"]]
    assert roles == ["user", "system", "developer", "assistant", "tool", "function"]
    assert request["n"]["enum"] == [1, None]


async def test_the_docs_stay_open_when_auth_is_on(start_gateway: Callable[..., str]) -> None:
    url = start_gateway(api_keys_sha256=hashlib.sha256(b"k").hexdigest())
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        assert (await http.get("/docs")).status_code == 200
        assert (await http.get("/docs/assets/swagger-ui.css")).status_code == 200
        refused = await http.post(
            "/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]}
        )
        assert refused.status_code == 401
        assert set(refused.json()["error"]) == {"message", "type", "param", "code"}  # OpenAI's shape on /v1
