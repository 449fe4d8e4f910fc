"""FastAPI dependencies: the lifespan-owned services, handed to routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from rag_gateway.pipeline import RagPipeline
from rag_gateway.services import Services
from rag_gateway.settings import Settings


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def get_pipeline(services: Annotated[Services, Depends(get_services)]) -> RagPipeline:
    return services.pipeline


def get_settings(services: Annotated[Services, Depends(get_services)]) -> Settings:
    return services.settings


PipelineDep = Annotated[RagPipeline, Depends(get_pipeline)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
