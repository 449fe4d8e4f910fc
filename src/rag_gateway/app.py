"""The FastAPI application: lifespan-owned services, routes, error handlers, middleware."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from rag_gateway import __version__
from rag_gateway.api.error_handlers import install_error_handlers
from rag_gateway.api.middleware.access import AccessMiddleware
from rag_gateway.api.middleware.admission import AdmissionMiddleware, InFlight
from rag_gateway.api.middleware.auth import ApiKeyMiddleware
from rag_gateway.api.middleware.request_id import RequestIdMiddleware
from rag_gateway.api.openapi import install_docs, install_openapi
from rag_gateway.api.routes.health import router as health_router
from rag_gateway.api.routes.openai import router as openai_router
from rag_gateway.api.routes.rag import router
from rag_gateway.config import Settings
from rag_gateway.observability.logs import stamp_request_ids
from rag_gateway.observability.metrics import Metrics
from rag_gateway.state import open_app_state


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; settings default to the environment and `.env`."""
    resolved = settings or Settings()
    stamp_request_ids()
    metrics = Metrics()
    in_flight = InFlight()
    metrics.in_flight.set_function(lambda: in_flight.count)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_app_state(resolved, metrics) as services:
            app.state.services = services
            yield

    app = FastAPI(
        title="rag-gateway",
        version=__version__,
        summary="Retrieval-augmented generation behind one HTTP call.",
        lifespan=lifespan,
        docs_url=None,  # served from packaged assets instead of a CDN (api/openapi.py)
        redoc_url=None,
    )
    app.state.metrics = metrics
    install_error_handlers(app)
    app.include_router(router)
    app.include_router(openai_router)
    app.include_router(health_router)
    install_docs(app)
    install_openapi(app, resolved)
    # Starlette runs the last-added middleware first: request id, access log, CORS, auth, admission.
    app.add_middleware(
        AdmissionMiddleware,
        in_flight=in_flight,
        max_in_flight=resolved.max_in_flight_requests,
        max_body_bytes=resolved.max_body_bytes,
    )
    app.add_middleware(
        ApiKeyMiddleware,
        key_digests=resolved.api_key_digests,
        per_minute=resolved.rate_limit_per_minute,
        burst=resolved.rate_limit_burst,
    )
    if resolved.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=resolved.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID", "X-Request-Timeout"],
            expose_headers=["X-Request-ID", "Server-Timing", "Retry-After"],
        )
    app.add_middleware(AccessMiddleware, metrics=metrics, log_queries=resolved.log_queries)
    app.add_middleware(RequestIdMiddleware)
    return app
