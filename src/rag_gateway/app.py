"""The FastAPI application: lifespan-owned services, routes, error handlers, request ids."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from rag_gateway import __version__
from rag_gateway.api.admission import AdmissionMiddleware
from rag_gateway.api.error_handlers import install_error_handlers
from rag_gateway.api.openai_compat import router as openai_router
from rag_gateway.api.request_id import RequestIdMiddleware
from rag_gateway.api.routes import router
from rag_gateway.services import open_services
from rag_gateway.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; settings default to the environment and `.env`."""
    resolved = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_services(resolved) as services:
            app.state.services = services
            yield

    app = FastAPI(
        title="rag-gateway",
        version=__version__,
        summary="Retrieval-augmented generation behind one HTTP call.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(router)
    app.include_router(openai_router)
    app.add_middleware(
        AdmissionMiddleware,
        max_in_flight=resolved.max_in_flight_requests,
        max_body_bytes=resolved.max_body_bytes,
    )
    app.add_middleware(RequestIdMiddleware)  # outermost: every answer, refusals included, has an id
    return app
