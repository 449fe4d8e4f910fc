"""The second LLM backend: any OpenAI-compatible server (vLLM, TGI's Messages API, Ollama, OpenAI).

It rides on the gateway's one pooled `AsyncOpenAI`: ``with_options`` gives a view with its own base URL and
key that shares the same connection pool.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import openai
from openai.types.chat import ChatCompletionMessageParam

from rag_gateway.clients.openai import map_openai_error
from rag_gateway.config import Settings
from rag_gateway.errors import GatewayError, UpstreamBadResponseError
from rag_gateway.llm.base import (
    DEFAULT_PARAMS,
    Generation,
    GenerationParams,
    StreamEnd,
    StreamEvent,
    TokenDelta,
)
from rag_gateway.resilience import UpstreamGuard
from rag_gateway.runtime.request_context import current_request_id

STEP = "generation"
UPSTREAM = "llm"


def _generation_error(exc: openai.OpenAIError) -> GatewayError:
    # a failed generation is not retried: it would regenerate the answer
    return map_openai_error(exc, STEP, upstream=UPSTREAM, retry_bad_response=False)


class OpenAICompatibleLLM:
    name = "openai-compatible"

    def __init__(self, client: openai.AsyncOpenAI, guard: UpstreamGuard, settings: Settings) -> None:
        overrides: dict[str, Any] = {}
        if settings.llm_base_url:
            overrides["base_url"] = settings.llm_base_url
        if settings.llm_api_key is not None:
            overrides["api_key"] = settings.llm_api_key.get_secret_value()
        self._client = client.with_options(**overrides) if overrides else client
        self._guard = guard
        self.model = settings.llm_model_id or settings.openai_model_id
        self._max_tokens = settings.max_new_tokens_inference
        self._temperature = settings.temperature_inference
        self._top_p = settings.top_p_inference

    def _messages(self, prompt: str) -> list[ChatCompletionMessageParam]:
        return [{"role": "user", "content": prompt}]

    def options(self, params: GenerationParams) -> dict[str, Any]:
        """The request's parameters as OpenAI's chat fields (the settings where it gives none).

        The server applies its own rules (vLLM takes temperature 0 as greedy); ``response_format`` is passed
        through as the client sent it.
        """
        options: dict[str, Any] = {
            "max_tokens": params.max_new_tokens or self._max_tokens,
            "temperature": self._temperature if params.temperature is None else params.temperature,
            "top_p": self._top_p if params.top_p is None else params.top_p,
        }
        if params.stop:
            options["stop"] = list(params.stop)
        if params.seed is not None:
            options["seed"] = params.seed
        if params.frequency_penalty:
            options["frequency_penalty"] = params.frequency_penalty
        if params.response_format is not None:
            options["response_format"] = params.response_format
        return options

    async def generate(self, prompt: str, params: GenerationParams = DEFAULT_PARAMS) -> Generation:
        async def attempt() -> Generation:
            try:
                completion = await self._client.chat.completions.create(
                    model=self.model,
                    messages=self._messages(prompt),
                    **self.options(params),
                    extra_headers={"X-Request-ID": current_request_id()},
                )
            except openai.OpenAIError as exc:
                raise _generation_error(exc) from exc
            except ValueError as exc:
                raise UpstreamBadResponseError(
                    "the LLM sent an unreadable answer", upstream=UPSTREAM
                ) from exc
            choices = getattr(completion, "choices", None)
            if not isinstance(choices, list) or not choices:
                raise UpstreamBadResponseError("the LLM sent an answer without choices", upstream=UPSTREAM)
            usage = getattr(completion, "usage", None)
            return Generation(
                (choices[0].message.content or "").strip(),
                choices[0].finish_reason,
                getattr(usage, "completion_tokens", None),
                getattr(usage, "prompt_tokens", None),
            )

        return await self._guard.call(attempt)

    async def _open_stream(self, prompt: str, params: GenerationParams) -> Any:
        try:
            return await self._client.chat.completions.create(
                model=self.model,
                messages=self._messages(prompt),
                stream=True,
                stream_options={"include_usage": True},
                **self.options(params),
                extra_headers={"X-Request-ID": current_request_id()},
            )
        except openai.OpenAIError as exc:
            raise _generation_error(exc) from exc

    async def stream(
        self, prompt: str, params: GenerationParams = DEFAULT_PARAMS
    ) -> AsyncIterator[StreamEvent]:
        chunks = await self._guard.call(lambda: self._open_stream(prompt, params))
        finish_reason: str | None = None
        tokens = 0
        usage_tokens: int | None = None
        prompt_tokens: int | None = None
        try:
            async for chunk in chunks:
                if chunk.usage is not None:
                    usage_tokens = chunk.usage.completion_tokens
                    prompt_tokens = chunk.usage.prompt_tokens
                for choice in chunk.choices:
                    if choice.delta.content:
                        tokens += 1
                        yield TokenDelta(choice.delta.content)
                    finish_reason = choice.finish_reason or finish_reason
        except openai.OpenAIError as exc:
            raise UpstreamBadResponseError("the LLM stream failed mid-answer", upstream=UPSTREAM) from exc
        except ValueError as exc:
            raise UpstreamBadResponseError(
                "the LLM stream sent an unreadable event", upstream=UPSTREAM
            ) from exc
        finally:
            await chunks.close()
        if finish_reason is None:
            raise UpstreamBadResponseError(
                "the LLM stream ended before the answer was complete", upstream=UPSTREAM
            )
        yield StreamEnd(finish_reason, usage_tokens if usage_tokens is not None else tokens, prompt_tokens)
