"""The AWS event-stream framing (``application/vnd.amazon.eventstream``) of SageMaker's response streams.

One message on the wire::

    total length (u32) | headers length (u32) | prelude CRC32 (u32) | headers | payload | message CRC32 (u32)

All integers are big-endian; the prelude CRC covers the first 8 bytes, the message CRC everything before
it. A header is ``name length (u8) | name | value type (u8) | value``; only string values (type 7,
``length (u16) | UTF-8``) are needed here. botocore's ``EventStreamBuffer`` decodes what this encodes.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Mapping
from typing import Any

CONTENT_TYPE = "application/vnd.amazon.eventstream"
_STRING = 7
_PRELUDE = struct.Struct(">II")
_CRC = struct.Struct(">I")


def _crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def encode_headers(headers: Mapping[str, str]) -> bytes:
    out = bytearray()
    for name, value in headers.items():
        raw_name, raw_value = name.encode("utf-8"), value.encode("utf-8")
        if len(raw_name) > 255 or len(raw_value) > 32767:
            raise ValueError(f"event-stream header {name!r} is too long")
        out += struct.pack(">B", len(raw_name)) + raw_name
        out += struct.pack(">BH", _STRING, len(raw_value)) + raw_value
    return bytes(out)


def encode_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One complete event-stream message."""
    raw_headers = encode_headers(headers)
    total = _PRELUDE.size + _CRC.size + len(raw_headers) + len(payload) + _CRC.size
    prelude = _PRELUDE.pack(total, len(raw_headers))
    message = prelude + _CRC.pack(_crc32(prelude)) + raw_headers + payload
    return message + _CRC.pack(_crc32(message))


def payload_part(data: bytes) -> bytes:
    """A ``PayloadPart`` event: the payload IS the part's raw bytes (``{"Bytes": data}`` once parsed)."""
    return encode_message(
        {
            ":event-type": "PayloadPart",
            ":content-type": "application/octet-stream",
            ":message-type": "event",
        },
        data,
    )


def exception_event(exception_type: str, body: Mapping[str, Any]) -> bytes:
    """A modeled stream exception (``ModelStreamError``, ``InternalStreamFailure``) with a JSON body."""
    return encode_message(
        {
            ":exception-type": exception_type,
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        json.dumps(dict(body)).encode("utf-8"),
    )
