"""Structured JSON logs: one object per line, with the request id, never a secret.

Query text is logged only when LOG_QUERIES is on. Secrets never reach a record: settings hold them as
``SecretStr`` and error messages are the gateway's own short texts, not SDK exception strings.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

from rag_gateway.runtime.request_context import current_request_id

#: LogRecord attributes that are not "extra" fields.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}


_default_factory = logging.getLogRecordFactory()


def _record_with_request_id(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _default_factory(*args, **kwargs)
    if not hasattr(record, "request_id"):
        record.request_id = current_request_id()  # stamped where the record is made, in the request's context
    return record


def stamp_request_ids() -> None:
    """Every log record carries the id of the request it was written for (idempotent)."""
    logging.setLogRecordFactory(_record_with_request_id)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str, *, json_logs: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if json_logs else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # our access log replaces uvicorn's
    logging.getLogger("uvicorn.access").disabled = True
