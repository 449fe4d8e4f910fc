"""FastAPI dependencies: the lifespan-owned services, handed to routes.

They are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in a worker thread, and those
thread hops (two per request) took about 7% of the event loop's time under load.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from rag_gateway.pipeline import RagPipeline
from rag_gateway.services import Services
from rag_gateway.settings import Settings


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_pipeline(services: Annotated[Services, Depends(get_services)]) -> RagPipeline:
    return services.pipeline


async def get_settings(services: Annotated[Services, Depends(get_services)]) -> Settings:
    return services.settings


PipelineDep = Annotated[RagPipeline, Depends(get_pipeline)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
