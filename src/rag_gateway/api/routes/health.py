"""Probes and metrics: ``/healthz`` (alive, cheap), ``/readyz`` (able to answer), ``/metrics``."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from rag_gateway.config import COLLECTIONS
from rag_gateway.errors import GatewayError
from rag_gateway.state import AppState

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Check(BaseModel):
    ok: bool
    detail: str


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    failed: str | None = Field(description="The first failing check, when not ready.")
    checks: dict[str, Check] = Field(description="models, vector_store, upstreams.")


@router.get("/healthz", summary="Liveness: the process is up")
async def healthz() -> Health:
    return Health()


async def _vector_store_check(services: AppState) -> tuple[bool, str]:
    try:
        present = await services.store.existing_collections()
    except GatewayError as exc:
        return False, exc.message
    missing = [c for c in COLLECTIONS if c not in present]
    if len(missing) == len(COLLECTIONS):
        return False, "no collection is present (run `rag-gateway ingest`)"
    return True, "ok" if not missing else f"ok (empty: {', '.join(missing)})"


def _upstreams_check(services: AppState) -> tuple[bool, str]:
    settings = services.settings
    if not settings.openai_api_key.get_secret_value():
        return False, "OPENAI_API_KEY is not set"
    if settings.llm_backend == "sagemaker" and not settings.sagemaker_endpoint_inference:
        return False, "SAGEMAKER_ENDPOINT_INFERENCE is not set"
    return True, "ok"


@router.get(
    "/readyz",
    summary="Readiness: models loaded, vector store reachable, upstreams configured",
    response_model=Readiness,
    responses={
        503: {"model": Readiness, "description": "Not ready; `failed` names the first failing check."}
    },
)
async def readyz(request: Request) -> JSONResponse:
    services: AppState | None = getattr(request.app.state, "services", None)
    checks: dict[str, Check] = {}
    if services is None:
        checks["models"] = Check(ok=False, detail="still starting")
    else:
        checks["models"] = Check(ok=True, detail=services.embedding_model_id)
        ok, detail = await _vector_store_check(services)
        checks["vector_store"] = Check(ok=ok, detail=detail)
        ok, detail = _upstreams_check(services)
        checks["upstreams"] = Check(ok=ok, detail=detail)
    failed = next((name for name, check in checks.items() if not check.ok), None)
    body = Readiness(status="ready" if failed is None else "unavailable", failed=failed, checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if failed is None else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus' text exposition format.",
            "content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}},
        }
    },
)
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
