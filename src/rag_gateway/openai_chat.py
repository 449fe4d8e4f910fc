"""Structured-output chat calls on the shared `AsyncOpenAI`, with its errors mapped to gateway errors."""

from __future__ import annotations

from typing import Any

import openai

from rag_gateway.errors import (
    GatewayError,
    UpstreamBadResponseError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)

UPSTREAM = "openai"


def map_openai_error(exc: openai.OpenAIError, step: str) -> GatewayError:
    """Translate an openai SDK exception (after its own retries) into what the client should see."""
    if isinstance(exc, openai.APITimeoutError):
        return UpstreamTimeoutError(f"{step}: the language model API timed out", upstream=UPSTREAM)
    if isinstance(exc, openai.APIConnectionError):
        return UpstreamUnavailableError(f"{step}: the language model API is unreachable", upstream=UPSTREAM)
    if isinstance(exc, openai.APIStatusError):
        retry_after = _retry_after(exc)
        if exc.status_code == 429 or exc.status_code == 503:
            return UpstreamUnavailableError(
                f"{step}: the language model API is overloaded or rate-limited",
                upstream=UPSTREAM,
                retry_after=retry_after,
            )
        return UpstreamBadResponseError(
            f"{step}: the language model API returned an error (HTTP {exc.status_code})", upstream=UPSTREAM
        )
    return UpstreamBadResponseError(
        f"{step}: the language model API sent an unusable answer", upstream=UPSTREAM
    )


def _retry_after(exc: openai.APIStatusError) -> float | None:
    raw = exc.response.headers.get("retry-after")
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


async def structured_chat(
    client: openai.AsyncOpenAI,
    *,
    model: str,
    system: str,
    user: str,
    schema_name: str,
    schema: dict[str, Any],
    step: str,
) -> str:
    """One chat completion constrained to a JSON schema; returns the raw message content ('' if none)."""
    try:
        completion = await client.chat.completions.create(
            model=model,
            messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": schema_name, "schema": schema, "strict": True},
            },
            temperature=0,
        )
    except openai.OpenAIError as exc:
        raise map_openai_error(exc, step) from exc
    except ValueError as exc:  # a body that is not JSON at all
        raise UpstreamBadResponseError(
            f"{step}: the language model API sent an unusable answer", upstream=UPSTREAM
        ) from exc
    choices = getattr(completion, "choices", None)
    if not isinstance(choices, list):
        raise UpstreamBadResponseError(
            f"{step}: the language model API sent an unusable answer", upstream=UPSTREAM
        )
    if not choices:
        return ""
    content = getattr(getattr(choices[0], "message", None), "content", None)
    return content if isinstance(content, str) else ""
