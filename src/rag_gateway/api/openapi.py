"""The API description: the OpenAPI document, and the /docs (Swagger UI) and /redoc pages, offline.

FastAPI's pages load Swagger UI and ReDoc from a CDN; here their files come from the ``fastapi-offline``
package and are served by the gateway itself under ``/docs/assets``, so both pages work with no network.

The document is FastAPI's, completed with what depends on the settings or is not a route's JSON body:
the configured MAX_QUERY_CHARS on every question field, the served model names as ``model``'s enum, and
the server-sent event bodies of both streaming routes (each event's ``data`` schema, OpenAPI 3.2's
``itemSchema``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from rag_gateway.api.openai_schemas import ChatCompletionChunk, OpenAIErrorResponse
from rag_gateway.api.schemas import QUERY_PATTERN, ErrorResponse
from rag_gateway.api.sse import SSE_EVENTS, SSE_MODELS
from rag_gateway.config import Settings

DOCS_ASSETS = "/docs/assets"
ASSETS_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"
COMPONENTS = "#/components/schemas/"


def install_docs(app: FastAPI) -> None:
    """``/docs``, ``/docs/oauth2-redirect`` and ``/redoc`` on packaged assets (the app is built with
    ``docs_url=None, redoc_url=None``)."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            oauth2_redirect_url="/docs/oauth2-redirect",
            swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from validator.swagger.io
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )


def _add_components(schema: dict[str, Any], models: list[type[BaseModel]]) -> None:
    _, definitions = models_json_schema(
        [(model, "serialization") for model in models], ref_template=COMPONENTS + "{model}"
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, definition in definitions.get("$defs", {}).items():
        components.setdefault(name, definition)


def _json_data(ref: dict[str, Any]) -> dict[str, Any]:
    return {"type": "string", "contentMediaType": "application/json", "contentSchema": ref}


def _rag_events() -> dict[str, Any]:
    """``POST /rag``'s events: ``sources``, ``token``s, then ``done`` or ``error``."""
    return {
        "oneOf": [
            {
                "type": "object",
                "required": ["event", "data"],
                "properties": {
                    "event": {"type": "string", "enum": [event]},
                    "data": _json_data({"$ref": COMPONENTS + model}),
                },
            }
            for event, model in SSE_EVENTS.items()
        ],
        "description": "`sources` first, then `token`s, then `done`; a failure after the start is a last "
        "`error` event.",
    }


def _chat_events() -> dict[str, Any]:
    """``POST /v1/chat/completions`` with ``stream: true``: chunk events, then ``data: [DONE]``."""
    chunk_or_error = {
        "anyOf": [
            {"$ref": COMPONENTS + ChatCompletionChunk.__name__},
            {"$ref": COMPONENTS + OpenAIErrorResponse.__name__},
        ]
    }
    return {
        "type": "object",
        "required": ["data"],
        "properties": {
            "data": {
                "anyOf": [_json_data(chunk_or_error), {"type": "string", "enum": ["[DONE]"]}],
                "description": "A `chat.completion.chunk` (or, after a failure mid-answer, an error); "
                "`[DONE]` last.",
            }
        },
    }


def _set_query_limits(node: Any, max_chars: int) -> None:
    """Every question field (recognised by its pattern) gets the configured MAX_QUERY_CHARS."""
    if isinstance(node, dict):
        if node.get("pattern") == QUERY_PATTERN:
            node["maxLength"] = max_chars
        for value in node.values():
            _set_query_limits(value, max_chars)
    elif isinstance(node, list):
        for value in node:
            _set_query_limits(value, max_chars)


def _event_stream(schema: dict[str, Any], path: str) -> dict[str, Any] | None:
    ok = schema.get("paths", {}).get(path, {}).get("post", {}).get("responses", {}).get("200", {})
    content: dict[str, Any] | None = ok.get("content", {}).get("text/event-stream")
    return content


def build_openapi(app: FastAPI, settings: Settings) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    _add_components(schema, [*SSE_MODELS, ErrorResponse, ChatCompletionChunk, OpenAIErrorResponse])
    if (rag := _event_stream(schema, "/rag")) is not None:
        rag["itemSchema"] = _rag_events()
    if (chat := _event_stream(schema, "/v1/chat/completions")) is not None:
        chat["itemSchema"] = _chat_events()
    request = schema.get("components", {}).get("schemas", {}).get("ChatCompletionRequest")
    if request is not None:
        request["properties"]["model"] = {
            "anyOf": [{"type": "string", "enum": settings.served_model_names}, {"type": "null"}],
            "title": "Model",
            "description": "SERVED_MODEL_NAME or one of SERVED_MODEL_ALIASES (default: the first); another "
            "name gets 404 `model_not_found`.",
        }
    _set_query_limits(schema, settings.max_query_chars)
    return schema


def install_openapi(app: FastAPI, settings: Settings) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app, settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
