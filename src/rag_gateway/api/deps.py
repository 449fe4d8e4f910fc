"""FastAPI dependencies: the lifespan-owned state, and the request's outcome, handed to routes.

They are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in a worker thread, a thread
hop per dependency per request on the hot path.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from rag_gateway.config import Settings
from rag_gateway.rag.outcome import RequestOutcome
from rag_gateway.rag.pipeline import RagPipeline
from rag_gateway.state import AppState


async def get_app_state(request: Request) -> AppState:
    state: AppState = request.app.state.services
    return state


async def get_pipeline(state: Annotated[AppState, Depends(get_app_state)]) -> RagPipeline:
    return state.pipeline


async def get_settings(state: Annotated[AppState, Depends(get_app_state)]) -> Settings:
    return state.settings


async def get_outcome(request: Request) -> RequestOutcome:
    """The request's outcome, made by the access middleware (which reports it when the request ends)."""
    outcome: RequestOutcome = request.state.outcome
    return outcome


PipelineDep = Annotated[RagPipeline, Depends(get_pipeline)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
OutcomeDep = Annotated[RequestOutcome, Depends(get_outcome)]
