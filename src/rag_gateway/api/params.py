"""A request's generation parameters, as the LLM backend will get them, and the ones it cannot honour.

Both faces take OpenAI's sampling fields (``/rag`` a subset). What the gateway cannot honour is refused
with a 400 naming the parameter (OpenAI's ``invalid_request_error`` shape on ``/v1``), never silently
dropped; the rest becomes one `GenerationParams` the backend maps to its wire format (TGI: see
`rag_gateway.llm.sagemaker.SageMakerLLM.parameters`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rag_gateway.config import Settings
from rag_gateway.errors import InvalidParameterError
from rag_gateway.llm.base import GenerationParams

#: TGI's default (and SageMaker's TGI containers') ``--max-stop-sequences``.
MAX_STOP_SEQUENCES = 4
#: What ``response_format: {"type": "json_object"}`` becomes: any JSON object. TGI needs ``properties``.
JSON_OBJECT_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": True}
U64 = 2**64

#: OpenAI parameters the gateway cannot honour, with the values that ask for nothing (accepted). Any other
#: value is a 400 naming the parameter.
UNSUPPORTED: dict[str, tuple[Any, ...]] = {
    "n": (None, 1),
    "tools": (None, []),
    "tool_choice": (None, "none"),
    "functions": (None, []),
    "function_call": (None, "none"),
    "logprobs": (None, False),
    "top_logprobs": (None, 0),
    "audio": (None,),
    "modalities": (None, ["text"]),
    "logit_bias": (None, {}),
    "prediction": (None,),
    "presence_penalty": (None, 0),
    "web_search_options": (None,),
}
WHY = {
    "n": "one answer per request (n must be 1)",
    "tools": "no tool calling",
    "tool_choice": "no tool calling",
    "functions": "no function calling",
    "function_call": "no function calling",
    "logprobs": "no log probabilities",
    "top_logprobs": "no log probabilities",
    "audio": "text only",
    "modalities": "text only",
    "logit_bias": "no logit bias",
    "prediction": "no predicted outputs",
    "presence_penalty": "no presence penalty (frequency_penalty is supported)",
    "web_search_options": "no web search: answers come from the indexed corpus",
}


def _same(value: Any, neutral: Any) -> bool:
    # `False == 0` in Python: a bool only matches a bool
    return value == neutral and isinstance(value, bool) == isinstance(neutral, bool)


def refuse_unsupported(fields: Mapping[str, Any]) -> None:
    """A 400 for the first parameter the gateway cannot honour that asks for something."""
    for name, neutral in UNSUPPORTED.items():
        if name in fields and not any(_same(fields[name], value) for value in neutral):
            raise InvalidParameterError(
                f"'{name}' is not supported by this gateway: {WHY[name]}.", param=name
            )


def stop_sequences(stop: str | list[str] | None) -> tuple[str, ...]:
    """``stop`` as a tuple; more than TGI's 4, or an empty string, is a 400."""
    if stop is None:
        return ()
    sequences = [stop] if isinstance(stop, str) else list(stop)
    if len(sequences) > MAX_STOP_SEQUENCES:
        raise InvalidParameterError(
            f"'stop' takes at most {MAX_STOP_SEQUENCES} sequences (the LLM's limit); {len(sequences)} given.",
            param="stop",
            code="invalid_value",
        )
    if any(not s for s in sequences):
        raise InvalidParameterError("'stop' sequences must not be empty.", param="stop", code="invalid_value")
    return tuple(dict.fromkeys(sequences))


def json_schema_of(response_format: Mapping[str, Any] | None, settings: Settings) -> dict[str, Any] | None:
    """The JSON schema an answer must follow, from OpenAI's ``response_format``; None for plain text.

    On the SageMaker backend TGI compiles the schema into a grammar and needs an object schema with
    ``properties``: anything else would come back as the LLM's error, so it is a 400 here.
    """
    if response_format is None:
        return None
    kind = response_format.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return JSON_OBJECT_SCHEMA
    if kind != "json_schema":
        raise InvalidParameterError(
            "'response_format.type' must be text, json_object or json_schema.",
            param="response_format",
            code="invalid_value",
        )
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, Mapping) else None
    if not isinstance(schema, Mapping):
        raise InvalidParameterError(
            "'response_format.json_schema.schema' must be a JSON schema object.",
            param="response_format",
            code="invalid_value",
        )
    if settings.llm_backend == "sagemaker" and not isinstance(schema.get("properties"), Mapping):
        raise InvalidParameterError(
            "'response_format.json_schema.schema' must describe an object with 'properties' "
            "(the LLM's grammar needs them).",
            param="response_format",
            code="invalid_value",
        )
    return dict(schema)


def generation_params(
    settings: Settings,
    *,
    max_tokens: int | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    stop: str | list[str] | None = None,
    seed: int | None = None,
    frequency_penalty: float | None = None,
    response_format: Mapping[str, Any] | None = None,
) -> GenerationParams:
    """One request's parameters, checked (ranges are the schema's job) and mapped for the backend.

    ``max_tokens`` is lowered to MAX_NEW_TOKENS_LIMIT (the answer's ``finish_reason`` says ``length`` when
    that cut it); a negative ``seed`` is taken modulo 2**64 (TGI's seed is unsigned).
    """
    return GenerationParams(
        max_new_tokens=min(max_tokens, settings.max_new_tokens_limit) if max_tokens is not None else None,
        temperature=temperature,
        top_p=top_p,
        stop=stop_sequences(stop),
        seed=seed % U64 if seed is not None else None,
        frequency_penalty=frequency_penalty or None,
        json_schema=json_schema_of(response_format, settings),
        response_format=dict(response_format) if response_format is not None else None,
    )
