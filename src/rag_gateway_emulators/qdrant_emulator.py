"""A Qdrant REST emulator that the real ``AsyncQdrantClient`` talks to unmodified, with fault injection.

No Qdrant server can run everywhere the tests do, so this serves the subset of Qdrant's HTTP API the
gateway and ingestion use, backed by qdrant-client's own local mode (``QdrantClient(":memory:")`` or an
on-disk folder). Request bodies are parsed into qdrant-client's REST models, handed to the local client,
and its answers are sent back in Qdrant's envelope: ``{"result": ..., "status": "ok", "time": s}``, or
``{"status": {"error": "..."}, "time": s}`` with Qdrant's status codes (400 bad input, 404 unknown
collection, 409 existing collection, 500 internal). Where the server is stricter than local mode, the
emulator is too: faceting needs a keyword/integer/uuid/bool payload index on the key (local mode keeps none,
so the emulator tracks the indexes it was asked to create).

Endpoints (``{name}`` is a collection):

- ``GET /``, ``/healthz``, ``/livez``, ``/readyz``: version and health; never need the API key, never
  faulted or logged (the client's background version check hits ``GET /`` at unpredictable times)
- ``GET /collections``                        target ``qdrant_list``
- ``GET /collections/{name}/exists``          target ``qdrant_exists``
- ``GET /collections/{name}``                 target ``qdrant_info``
- ``PUT /collections/{name}``                 target ``qdrant_create``
- ``DELETE /collections/{name}``              target ``qdrant_delete``
- ``PUT /collections/{name}/index``           target ``qdrant_index``
- ``PUT /collections/{name}/points``          target ``qdrant_upsert``
- ``POST /collections/{name}/points``         target ``qdrant_retrieve``
- ``POST /collections/{name}/points/count``   target ``qdrant_count``
- ``POST /collections/{name}/facet``          target ``qdrant_facet``
- ``POST /collections/{name}/points/query``   target ``qdrant_search``
- ``POST /collections/{name}/points/query/batch``  target ``qdrant_search``
- ``POST /collections/{name}/points/scroll``  target ``qdrant_scroll``

Faults (``POST /_emulator/faults``) take one of those targets, or ``qdrant`` for every data-plane call; so
does ``PUT /_emulator/latency`` (a ``qdrant`` latency is the default of every target). A ``status`` fault
answers before the operation runs; ``hang``, ``drop``, ``truncated`` and ``malformed`` act on the answer of
an operation that did run: a write then is applied although its client never learns it (a lost ack).

With ``api_key`` set, every data-plane call needs it in the ``api-key`` header (or ``Authorization:
Bearer``): a missing key is a 401 "Must provide an API key or an Authorization bearer token", a wrong one a
401 "Invalid API key or JWT" (plain-text bodies, as Qdrant's auth middleware sends them). A
``read_only_api_key`` may read; its writes get 403.
"""

from __future__ import annotations

import asyncio
import hmac
import importlib.metadata
import json
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel, TypeAdapter, ValidationError
from qdrant_client import QdrantClient, models

from rag_gateway_emulators import control, wire
from rag_gateway_emulators.background import BackgroundContext
from rag_gateway_emulators.control_client import EmulatorControl
from rag_gateway_emulators.faults import ALL_QDRANT, QDRANT_TARGETS, Fault, FaultPlan, QdrantTarget
from rag_gateway_emulators.listen import listen
from rag_gateway_emulators.state import STATE, EmulatorState

__all__ = [
    "ALL_QDRANT",
    "QDRANT_TARGETS",
    "QdrantEmulatorThread",
    "QdrantTarget",
    "RunningQdrantEmulator",
    "build_qdrant_app",
    "running_qdrant_emulator",
]

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

#: Qdrant's default ``service.max_request_size_mb`` is 32.
MAX_REQUEST_BYTES = 32 * 1024 * 1024
#: Keeps the payload indexes of an on-disk store next to local mode's own files.
INDEX_FILE = "emulator_payload_indexes.json"
#: Payload index types a facet can read (Qdrant's "map" indexes).
FACET_INDEX_TYPES = frozenset({"keyword", "integer", "uuid", "bool"})
#: Qdrant's wording of a status it answers on its own, for a ``status`` fault without a ``message``.
_FAULT_MESSAGES = {
    400: "Bad request: emulated fault",
    403: "Forbidden: emulated fault",
    404: "Not found: emulated fault",
    408: "Timeout error: emulated fault",
    409: "Wrong input: emulated fault",
    429: "Rate limiting exceeded: emulated fault",
    500: "Service internal error: emulated fault",
    503: "Service unavailable: emulated fault",
}
_WRITE_TARGETS = frozenset({"qdrant_create", "qdrant_delete", "qdrant_index", "qdrant_upsert"})


# --- the local-mode store ----------------------------------------------------------------------------------
class QdrantApiError(Exception):
    """An error answer in Qdrant's shape: ``status`` code and the ``status.error`` text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _not_found(name: str) -> QdrantApiError:
    return QdrantApiError(404, f"Not found: Collection `{name}` doesn't exist!")


def _schema_type(schema: models.PayloadFieldSchema) -> str:
    kind: Any = schema if isinstance(schema, models.PayloadSchemaType) else schema.type
    return str(kind.value) if isinstance(kind, Enum) else str(kind)


_FIELD_SCHEMA: TypeAdapter[models.PayloadFieldSchema] = TypeAdapter(models.PayloadFieldSchema)
_INSERT_OPERATIONS: TypeAdapter[models.PointInsertOperations] = TypeAdapter(models.PointInsertOperations)


class LocalStore:
    """qdrant-client's local mode behind one lock, plus the payload indexes local mode does not keep.

    Local mode is synchronous and not thread-safe, so every call runs in a worker thread while holding an
    ``asyncio.Lock``. The call is shielded: a handler cancelled by its client's disconnect stops waiting,
    but the lock stays held until the thread is done, so two calls never overlap.
    """

    def __init__(self, path: str | None) -> None:
        self.path = path
        if path is not None:
            Path(path).mkdir(parents=True, exist_ok=True)
        self.client = QdrantClient(path=path) if path is not None else QdrantClient(":memory:")
        #: collection -> field -> schema, as created through ``PUT /collections/{name}/index``.
        self.indexes: dict[str, dict[str, models.PayloadFieldSchema]] = self._load_indexes()
        self._lock = asyncio.Lock()
        self._inflight: set[asyncio.Task[Any]] = set()

    async def run(self, fn: Callable[..., T], /, *args: Any) -> T:
        task = asyncio.ensure_future(self._locked(fn, *args))
        self._inflight.add(task)
        task.add_done_callback(self._forget)
        return await asyncio.shield(task)

    async def _locked(self, fn: Callable[..., T], *args: Any) -> T:
        async with self._lock:
            return await asyncio.to_thread(fn, *args)

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._inflight.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: an abandoned call's error is not "never retrieved"

    async def close(self) -> None:
        await asyncio.gather(*self._inflight, return_exceptions=True)
        await asyncio.to_thread(self.client.close)

    # --- payload indexes ------------------------------------------------------------------------------
    def _index_file(self) -> Path | None:
        return Path(self.path) / INDEX_FILE if self.path is not None else None

    def _load_indexes(self) -> dict[str, dict[str, models.PayloadFieldSchema]]:
        file = self._index_file()
        if file is None or not file.is_file():
            return {}
        raw: dict[str, dict[str, Any]] = json.loads(file.read_text(encoding="utf-8"))
        return {
            collection: {field: _FIELD_SCHEMA.validate_python(schema) for field, schema in fields.items()}
            for collection, fields in raw.items()
            if self.client.collection_exists(collection)
        }

    def _save_indexes(self) -> None:
        file = self._index_file()
        if file is None:
            return
        raw = {
            collection: {
                field: _FIELD_SCHEMA.dump_python(schema, mode="json") for field, schema in fields.items()
            }
            for collection, fields in self.indexes.items()
        }
        file.write_text(json.dumps(raw, indent=1), encoding="utf-8")

    # --- operations: synchronous, run by ``run`` in a worker thread ---------------------------------------
    def require(self, name: str) -> None:
        if not self.client.collection_exists(name):
            raise _not_found(name)

    def list_collections(self, name: str, body: Any, query: dict[str, str]) -> Any:
        return _dump(self.client.get_collections())

    def exists(self, name: str, body: Any, query: dict[str, str]) -> Any:
        return {"exists": self.client.collection_exists(name)}

    def info(self, name: str, body: Any, query: dict[str, str]) -> Any:
        self.require(name)
        info = self.client.get_collection(name)
        schema = {
            field: models.PayloadIndexInfo(
                data_type=models.PayloadSchemaType(_schema_type(field_schema)),
                params=None if isinstance(field_schema, models.PayloadSchemaType) else field_schema,
                points=self._points_with(name, field),
            )
            for field, field_schema in self.indexes.get(name, {}).items()
        }
        return _dump(info.model_copy(update={"payload_schema": schema}))

    def _points_with(self, name: str, field: str) -> int:
        has_field = models.Filter(must_not=[models.IsEmptyCondition(is_empty=models.PayloadField(key=field))])
        return int(self.client.count(name, count_filter=has_field, exact=True).count)

    def create(self, name: str, body: Any, query: dict[str, str]) -> Any:
        request = _parse(models.CreateCollection, {} if body is None else body)
        if self.client.collection_exists(name):
            raise QdrantApiError(409, f"Wrong input: Collection `{name}` already exists!")
        created = self.client.create_collection(
            name,
            vectors_config=request.vectors,
            sparse_vectors_config=request.sparse_vectors,
            metadata=request.metadata,
        )
        self.indexes.pop(name, None)
        self._save_indexes()
        return created

    def delete(self, name: str, body: Any, query: dict[str, str]) -> Any:
        deleted = self.client.delete_collection(name)
        if self.indexes.pop(name, None) is not None:
            self._save_indexes()
        return deleted

    def create_index(self, name: str, body: Any, query: dict[str, str]) -> Any:
        request = _parse(models.CreateFieldIndex, body)
        self.require(name)
        if request.field_schema is None:
            raise QdrantApiError(
                400, "Bad request: Can't auto-detect field type, please specify `field_schema`"
            )
        if isinstance(request.field_schema, models.TextIndexParams):
            # the only payload index local mode acts on (text scoring); the rest it would warn about
            self.client.create_payload_index(name, request.field_name, field_schema=request.field_schema)
        self.indexes.setdefault(name, {})[request.field_name] = request.field_schema
        self._save_indexes()
        return _update_result(query)

    def upsert(self, name: str, body: Any, query: dict[str, str]) -> Any:
        try:
            operation = _INSERT_OPERATIONS.validate_python(body)
        except ValidationError as exc:
            raise _format_error(exc) from exc
        self.require(name)
        points: models.Batch | list[models.PointStruct] = (
            operation.batch if isinstance(operation, models.PointsBatch) else operation.points
        )
        self.client.upsert(
            name, points=points, update_filter=operation.update_filter, update_mode=operation.update_mode
        )
        return _update_result(query)

    def retrieve(self, name: str, body: Any, query: dict[str, str]) -> Any:
        request = _parse(models.PointRequest, body)
        self.require(name)
        records = self.client.retrieve(
            name,
            ids=request.ids,
            with_payload=True if request.with_payload is None else request.with_payload,
            with_vectors=False if request.with_vector is None else request.with_vector,
        )
        return [_dump(record) for record in records]

    def count(self, name: str, body: Any, query: dict[str, str]) -> Any:
        request = _parse(models.CountRequest, {} if body is None else body)
        self.require(name)
        exact = True if request.exact is None else request.exact
        return _dump(self.client.count(name, count_filter=request.filter, exact=exact))

    def facet(self, name: str, body: Any, query: dict[str, str]) -> Any:
        request = _parse(models.FacetRequest, body)
        self.require(name)
        schema = self.indexes.get(name, {}).get(request.key)
        has_points = self.client.count(name, exact=True).count > 0
        # Qdrant reads facets from a map index; a segment with no points answers before looking for it.
        if has_points and (schema is None or _schema_type(schema) not in FACET_INDEX_TYPES):
            raise QdrantApiError(
                400,
                f"Wrong input: No appropriate index for faceting: `{request.key}`. Please create one "
                "to facet on this field. Check "
                "https://qdrant.tech/documentation/concepts/indexing/#payload-index "
                "to see which payload schemas support Match conditions",
            )
        response = self.client.facet(
            name,
            key=request.key,
            facet_filter=request.filter,
            limit=10 if request.limit is None else request.limit,
            exact=bool(request.exact),
        )
        return _dump(response)

    def query(self, name: str, body: Any, query: dict[str, str]) -> Any:
        request = _parse(models.QueryRequest, {} if body is None else body)
        self.require(name)
        return _dump(self.client.query_batch_points(name, requests=[_exact(request)])[0])

    def query_batch(self, name: str, body: Any, query: dict[str, str]) -> Any:
        request = _parse(models.QueryRequestBatch, body)
        self.require(name)
        searches = [_exact(search) for search in request.searches]
        return [_dump(r) for r in self.client.query_batch_points(name, requests=searches)]

    def scroll(self, name: str, body: Any, query: dict[str, str]) -> Any:
        request = _parse(models.ScrollRequest, {} if body is None else body)
        self.require(name)
        order_by = (
            models.OrderBy(key=request.order_by) if isinstance(request.order_by, str) else request.order_by
        )
        points, next_offset = self.client.scroll(
            name,
            scroll_filter=request.filter,
            limit=10 if request.limit is None else request.limit,
            order_by=order_by,
            offset=request.offset,
            with_payload=True if request.with_payload is None else request.with_payload,
            with_vectors=False if request.with_vector is None else request.with_vector,
        )
        return {"points": [_dump(p) for p in points], "next_page_offset": next_offset}


def _exact(request: models.QueryRequest) -> models.QueryRequest:
    """The request without the index-tuning search params (``hnsw_ef``, ``quantization``...): a server takes
    them silently, local mode's exact search would only warn about them. ``idf`` changes scores: it stays."""
    params = request.params
    if params is None:
        return request
    kept = None if params.idf is None else models.SearchParams(idf=params.idf)
    return request.model_copy(update={"params": kept})


def _dump(model: BaseModel) -> Any:
    return model.model_dump(mode="json", exclude_none=True)


def _update_result(query: dict[str, str]) -> Any:
    waited = query.get("wait", "false").lower() == "true"
    status = models.UpdateStatus.COMPLETED if waited else models.UpdateStatus.ACKNOWLEDGED
    return _dump(models.UpdateResult(operation_id=0, status=status))


def _format_error(exc: ValidationError) -> QdrantApiError:
    details = "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}"
        for error in exc.errors(include_url=False)[:3]
    )
    return QdrantApiError(400, f"Format error in JSON body: {details}")


def _parse(model: type[M], body: Any) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise _format_error(exc) from exc


# --- HTTP ---------------------------------------------------------------------------------------------------
STORE: web.AppKey[LocalStore] = web.AppKey("qdrant_local_store", LocalStore)
API_KEYS: web.AppKey[tuple[str | None, str | None]] = web.AppKey("qdrant_api_keys", tuple)

Operation = Callable[[LocalStore, str, Any, dict[str, str]], Any]


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, content_type="application/json", headers=headers
    )


def ok_response(result: Any, started: float) -> web.Response:
    return _json({"result": result, "status": "ok", "time": time.perf_counter() - started})


def error_response(
    status: int, message: str, started: float | None = None, retry_after: float | None = None
) -> web.Response:
    """An error in Qdrant's shape; ``retry_after`` becomes a whole-second ``Retry-After``, as Qdrant's."""
    elapsed = 0.0 if started is None else time.perf_counter() - started
    headers = {"Retry-After": str(math.ceil(retry_after))} if retry_after is not None else None
    return _json({"status": {"error": message}, "time": elapsed}, status=status, headers=headers)


def _fault_error(fault: Fault, started: float) -> web.Response:
    """A ``status`` fault's answer, worded as Qdrant words that status unless the fault has a message."""
    status = fault.status or 500
    message = fault.message or _FAULT_MESSAGES.get(status, "Emulated error")
    return error_response(status, message, started, fault.retry_after)


def _presented_key(request: web.BaseRequest) -> str | None:
    key = request.headers.get("api-key")
    if key is None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme == "Bearer" and token:
            key = token
    return key


def _same(a: str, b: str | None) -> bool:
    return b is not None and hmac.compare_digest(a.encode(), b.encode())


def _auth_failure(request: web.Request, target: str) -> web.Response | None:
    api_key, read_only_key = request.app[API_KEYS]
    if api_key is None and read_only_key is None:
        return None
    key = _presented_key(request)
    if key is None:
        return web.Response(status=401, text="Must provide an API key or an Authorization bearer token")
    if _same(key, api_key):
        return None
    if _same(key, read_only_key):
        if target in _WRITE_TARGETS:
            return error_response(403, "Forbidden: Write access denied")
        return None
    return web.Response(status=401, text="Invalid API key or JWT")


def _loggable(target: str, payload: Any) -> Any:
    """The body as the request log keeps it: an upsert's vectors become their lengths, so a long ingest
    does not pin every vector it sent in memory (the log holds up to 10,000 requests)."""
    if target != "qdrant_upsert" or not isinstance(payload, dict):
        return payload
    points = payload.get("points")
    if isinstance(points, list):
        return payload | {
            "points": [
                p | {"vector": _vector_size(p.get("vector"))} if isinstance(p, dict) else p for p in points
            ]
        }
    batch = payload.get("batch")
    if isinstance(batch, dict) and isinstance(batch.get("vectors"), list):
        return payload | {"batch": batch | {"vectors": [_vector_size(v) for v in batch["vectors"]]}}
    return payload


def _vector_size(vector: Any) -> Any:
    if isinstance(vector, list):
        return len(vector)
    if isinstance(vector, dict):  # named vectors
        return {name: _vector_size(v) for name, v in vector.items()}
    return vector


def _endpoint(target: str, operation: Operation) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        state = request.app[STATE]
        name = request.match_info.get("name", "")
        raw = await request.read()
        try:
            payload: Any = orjson.loads(raw) if raw else None
            parse_error: str | None = None
        except orjson.JSONDecodeError as exc:
            payload, parse_error = None, str(exc)
        record = state.log.record(
            target,
            request.method,
            request.path,
            _loggable(target, payload),
            bearer=request.headers.get("Authorization", "").startswith("Bearer "),
            endpoint=name or None,
        )

        denied = _auth_failure(request, target)
        if denied is not None:
            record.status = denied.status
            return denied

        fault, _, early = await wire.admit(request, state, record, target, lambda f: _fault_error(f, started))
        if early is not None:
            return early

        if parse_error is not None:
            response = error_response(400, f"Format error in JSON body: {parse_error}", started)
        else:
            try:
                store = request.app[STORE]
                result = await store.run(operation, store, name, payload, dict(request.query))
            except QdrantApiError as exc:
                response = error_response(exc.status, exc.message, started)
            except ValueError as exc:  # local mode's word for bad input
                response = error_response(400, f"Bad request: {exc}", started)
            except Exception as exc:  # anything else is the server's fault, as in Qdrant
                response = error_response(500, f"Service internal error: {exc}", started)
            else:
                response = ok_response(result, started)
        return await wire.deliver(request, state, record, fault, response)

    return handle


async def _root(request: web.Request) -> web.Response:
    version = importlib.metadata.version("qdrant-client")
    return web.json_response({"title": "qdrant - vector search engine", "version": version, "commit": None})


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="healthz check passed")


async def _readyz(request: web.Request) -> web.Response:
    return web.Response(text="all shards are ready")


def _store_context(path: str | None) -> Callable[[web.Application], AsyncIterator[None]]:
    async def store_context(app: web.Application) -> AsyncIterator[None]:
        store = await asyncio.to_thread(LocalStore, path)
        app[STORE] = store
        yield
        await store.close()

    return store_context


_ROUTES: tuple[tuple[str, str, str, Operation], ...] = (
    ("GET", "/collections", "qdrant_list", LocalStore.list_collections),
    ("GET", "/collections/{name}/exists", "qdrant_exists", LocalStore.exists),
    ("GET", "/collections/{name}", "qdrant_info", LocalStore.info),
    ("PUT", "/collections/{name}", "qdrant_create", LocalStore.create),
    ("DELETE", "/collections/{name}", "qdrant_delete", LocalStore.delete),
    ("PUT", "/collections/{name}/index", "qdrant_index", LocalStore.create_index),
    ("PUT", "/collections/{name}/points", "qdrant_upsert", LocalStore.upsert),
    ("POST", "/collections/{name}/points", "qdrant_retrieve", LocalStore.retrieve),
    ("POST", "/collections/{name}/points/count", "qdrant_count", LocalStore.count),
    ("POST", "/collections/{name}/facet", "qdrant_facet", LocalStore.facet),
    ("POST", "/collections/{name}/points/query", "qdrant_search", LocalStore.query),
    ("POST", "/collections/{name}/points/query/batch", "qdrant_search", LocalStore.query_batch),
    ("POST", "/collections/{name}/points/scroll", "qdrant_scroll", LocalStore.scroll),
)


def build_qdrant_app(
    *,
    api_key: str | None = None,
    path: str | None = None,
    latency: float = 0.0,
    read_only_api_key: str | None = None,
) -> web.Application:
    """The Qdrant emulator: the REST subset above, backed by local mode in memory (or at ``path``),
    plus the ``/_emulator`` control API. ``latency`` is the base delay of every data-plane call."""
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    control.install(app, EmulatorState("qdrant", FaultPlan(QDRANT_TARGETS, {ALL_QDRANT: latency})))
    app[API_KEYS] = (api_key, read_only_api_key)
    app.cleanup_ctx.append(_store_context(path))
    app.router.add_get("/", _root)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/livez", _healthz)
    app.router.add_get("/readyz", _readyz)
    for method, route, target, operation in _ROUTES:
        app.router.add_route(method, route, _endpoint(target, operation))
    return app


# --- running it ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunningQdrantEmulator:
    """Where the emulator listens (``QDRANT_URL``) and its control client."""

    url: str
    control: EmulatorControl


@asynccontextmanager
async def running_qdrant_emulator(
    host: str = "127.0.0.1",
    port: int = 0,
    api_key: str | None = None,
    path: str | None = None,
    latency: float = 0.0,
    read_only_api_key: str | None = None,
) -> AsyncIterator[RunningQdrantEmulator]:
    """The emulator listening on ``host:port`` (0 = any free port) for the ``async with`` block.

    Raises ``EmulatorStartError`` when the port cannot be bound.
    """
    app = build_qdrant_app(api_key=api_key, path=path, latency=latency, read_only_api_key=read_only_api_key)
    async with AsyncExitStack() as stack:
        url = await listen(stack, app, host, port, "qdrant")
        yield RunningQdrantEmulator(url=url, control=EmulatorControl(url, targets=QDRANT_TARGETS))


class QdrantEmulatorThread(BackgroundContext[RunningQdrantEmulator, str]):
    """``running_qdrant_emulator`` on its own event loop in a daemon thread.

    ``start()`` blocks until the emulator listens and returns its URL; ``stop()`` shuts it down, releasing
    hanging handlers.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        path: str | None = None,
        latency: float = 0.0,
        read_only_api_key: str | None = None,
    ) -> None:
        super().__init__(
            lambda: running_qdrant_emulator(host, port, api_key, path, latency, read_only_api_key),
            thread_name="rag-gateway-qdrant-emulator",
            subject="the qdrant emulator",
            thread_subject="the qdrant emulator thread",
        )

    @property
    def emulator(self) -> RunningQdrantEmulator:
        return self._running("the qdrant emulator is not running; call start() first")

    @property
    def url(self) -> str:
        return self.emulator.url

    @property
    def control(self) -> EmulatorControl:
        return self.emulator.control

    def _handle(self) -> str:
        return self.url
