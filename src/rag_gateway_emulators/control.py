"""The control API every emulator serves under ``/_emulator``: queue faults, tune latency, read the log.

Routes (JSON in, JSON out):

- ``POST   /_emulator/faults``    body: a fault (see ``Fault``) -> 201 ``{"fault": {...}, "pending": n}``
- ``GET    /_emulator/faults``    -> ``{"faults": [...], "latency": {target: seconds}}``
- ``DELETE /_emulator/faults``    drop all faults, restore start-up latency -> ``{"cleared": n}``
- ``PUT    /_emulator/latency``   body ``{"target": ..., "seconds": ...}`` -> ``{"latency": {...}}``
  (``"target": "stream_tokens"`` sets the pause before each streamed token)
- ``GET    /_emulator/requests``  -> ``{"requests": [record, ...]}`` (oldest first)
- ``DELETE /_emulator/requests``  -> ``{"cleared": n}``
- ``GET    /_emulator/health``    -> ``{"status": "ok", "emulator": name}``
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from rag_gateway_emulators.faults import Fault
from rag_gateway_emulators.state import STATE, EmulatorState

PREFIX = "/_emulator"


def _bad_request(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


async def _json_object(request: web.Request) -> dict[str, Any] | web.Response:
    try:
        data = json.loads(await request.read() or b"null")
    except ValueError:
        return _bad_request("body is not JSON")
    if not isinstance(data, dict):
        return _bad_request("body must be a JSON object")
    return data


async def add_fault(request: web.Request) -> web.Response:
    state = request.app[STATE]
    data = await _json_object(request)
    if isinstance(data, web.Response):
        return data
    try:
        fault = Fault.model_validate(data)
        state.plan.add(fault)
    except ValidationError as exc:
        return _bad_request(f"invalid fault: {exc.errors(include_url=False)}")
    except ValueError as exc:
        return _bad_request(str(exc))
    return web.json_response({"fault": fault.to_json(), "pending": len(state.plan.pending())}, status=201)


async def list_faults(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response({"faults": state.plan.pending(), "latency": state.plan.latency})


async def clear_faults(request: web.Request) -> web.Response:
    return web.json_response({"cleared": request.app[STATE].plan.clear()})


async def set_latency(request: web.Request) -> web.Response:
    state = request.app[STATE]
    data = await _json_object(request)
    if isinstance(data, web.Response):
        return data
    target, seconds = data.get("target"), data.get("seconds")
    if not isinstance(target, str) or not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return _bad_request('expected {"target": str, "seconds": number}')
    try:
        state.plan.set_latency(target, float(seconds))
    except ValueError as exc:
        return _bad_request(str(exc))
    return web.json_response({"latency": state.plan.latency})


async def list_requests(request: web.Request) -> web.Response:
    return web.json_response({"requests": request.app[STATE].log.snapshot()})


async def clear_requests(request: web.Request) -> web.Response:
    return web.json_response({"cleared": request.app[STATE].log.clear()})


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "emulator": request.app[STATE].name})


async def _signal_shutdown(app: web.Application) -> None:
    app[STATE].shutting_down.set()


def install(app: web.Application, state: EmulatorState) -> None:
    """Attach ``state`` and the control routes to ``app``; shutdown releases hanging handlers."""
    app[STATE] = state
    app.on_shutdown.append(_signal_shutdown)
    app.router.add_post(f"{PREFIX}/faults", add_fault)
    app.router.add_get(f"{PREFIX}/faults", list_faults)
    app.router.add_delete(f"{PREFIX}/faults", clear_faults)
    app.router.add_put(f"{PREFIX}/latency", set_latency)
    app.router.add_get(f"{PREFIX}/requests", list_requests)
    app.router.add_delete(f"{PREFIX}/requests", clear_requests)
    app.router.add_get(f"{PREFIX}/health", health)
