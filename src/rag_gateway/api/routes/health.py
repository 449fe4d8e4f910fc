"""Probes and metrics: ``/healthz`` (alive, cheap), ``/readyz`` (able to answer), ``/metrics``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from rag_gateway.config import COLLECTIONS
from rag_gateway.errors import GatewayError
from rag_gateway.state import AppState

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


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
    responses={503: {"description": "Not ready; `failed` names the first failing check."}},
)
async def readyz(request: Request) -> JSONResponse:
    services: AppState | None = getattr(request.app.state, "services", None)
    checks: dict[str, dict[str, Any]] = {}
    if services is None:
        checks["models"] = {"ok": False, "detail": "still starting"}
    else:
        checks["models"] = {"ok": True, "detail": services.embedding_model_id}
        ok, detail = await _vector_store_check(services)
        checks["vector_store"] = {"ok": ok, "detail": detail}
        ok, detail = _upstreams_check(services)
        checks["upstreams"] = {"ok": ok, "detail": detail}
    failed = next((name for name, check in checks.items() if not check["ok"]), None)
    body = {"status": "ready" if failed is None else "unavailable", "failed": failed, "checks": checks}
    return JSONResponse(body, status_code=200 if failed is None else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
