"""The OpenAI face as a chat-grade API, through the real openai SDK and LangChain's ChatOpenAI.

Conversations (the follow-up rewritten to stand alone before retrieval), each sampling parameter as TGI
receives it, refusals of what the gateway cannot honour, model names, true usage and finish reasons,
structured output, and citations that survive any client.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from rag_gateway.rag.tokens import TokenCounter
from rag_gateway_emulators import fake_llm
from rag_gateway_emulators.server import RunningEmulators
from tests.conftest import MODEL_DIR

QUESTION = "What did Ada Quill write about punched cards?"
CONVERSATION: list[dict[str, Any]] = [
    {"role": "user", "content": QUESTION},
    {"role": "assistant", "content": "That the analytical engine read its programs from punched cards [1]."},
    {"role": "user", "content": "How did she use them in the engine?"},
]
REWRITTEN = "How did Ada Quill use punched cards in the engine?"


@pytest.fixture
def gateway_openai(gateway_url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{gateway_url}/v1", api_key="unused", max_retries=0)


async def _calls(emulators: RunningEmulators, target: str) -> list[dict[str, Any]]:
    calls = await emulators.openai.requests() + await emulators.sagemaker.requests()
    return [call for call in calls if call["target"] == target]


async def _tgi_parameters(emulators: RunningEmulators) -> dict[str, Any]:
    (call,) = [c for c in await emulators.sagemaker.requests() if c["target"].startswith("invocations")]
    parameters: dict[str, Any] = call["payload"]["parameters"]
    return parameters


# --- conversations -----------------------------------------------------------------------------------


async def test_a_follow_up_is_rewritten_from_the_history_and_drives_retrieval(
    gateway_openai: openai.AsyncOpenAI, emulators: RunningEmulators
) -> None:
    completion = await gateway_openai.chat.completions.create(model="llm-twin", messages=CONVERSATION)  # type: ignore[arg-type]
    extra = completion.model_extra or {}
    assert extra["queries"][0] == REWRITTEN and extra["degraded"] == []
    assert {s["author"] for s in extra["sources"]} == {"Ada Quill"}  # self-query found her in the rewrite

    (rewrite,) = await _calls(emulators, "rewrite")
    messages = rewrite["payload"]["messages"]
    assert [m["role"] for m in messages] == ["system", "user"]
    assert f"user: {QUESTION}" in messages[1]["content"]  # the emulator saw the history
    assert "assistant: That the analytical engine read" in messages[1]["content"]
    assert messages[1]["content"].endswith("Follow-up question: How did she use them in the engine?")
    (self_query,) = await _calls(emulators, "self_query")
    assert self_query["payload"]["messages"][1]["content"] == REWRITTEN
    openai_targets = [c["target"] for c in await emulators.openai.requests()]
    assert openai_targets[0] == "rewrite"  # before self-query and expansion

    prompt = (await _calls(emulators, "invocations"))[0]["payload"]["inputs"]
    assert f"Conversation so far:\nUser: {QUESTION}\nAssistant: That the analytical engine" in prompt
    assert f"\nUser query: {REWRITTEN}\nContext: " in prompt


async def test_a_single_turn_makes_no_rewrite_call(
    gateway_openai: openai.AsyncOpenAI, emulators: RunningEmulators
) -> None:
    await gateway_openai.chat.completions.create(
        model="llm-twin",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": QUESTION}],
    )
    assert sorted(c["target"] for c in await emulators.openai.requests()) == ["expansion", "self_query"]
    prompt = (await _calls(emulators, "invocations"))[0]["payload"]["inputs"]
    assert "\nSystem message: Be brief.\nUser query: " in prompt  # the system message reaches the LLM
    assert "Conversation so far" not in prompt


@pytest.mark.parametrize("fault", [{"kind": "status", "status": 500}, {"kind": "content", "body": "junk"}])
async def test_a_failed_rewrite_degrades_to_the_last_message(
    gateway_openai: openai.AsyncOpenAI, emulators: RunningEmulators, fault: dict[str, Any]
) -> None:
    await emulators.openai.add_fault(target="rewrite", times=None, **fault)
    completion = await gateway_openai.chat.completions.create(model="llm-twin", messages=CONVERSATION)  # type: ignore[arg-type]
    extra = completion.model_extra or {}
    assert extra["degraded"] == ["rewrite"]
    assert extra["queries"][0] == "How did she use them in the engine?"
    assert completion.choices[0].message.content


async def test_the_history_in_the_prompt_keeps_to_its_token_budget(
    start_gateway: Callable[..., str], emulators: RunningEmulators
) -> None:
    url = start_gateway(chat_history_tokens=40)
    old = [
        {"role": "user", "content": f"An old question number {i} about sourdough starters?"} for i in range(6)
    ]
    async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0) as client:
        await client.chat.completions.create(model="llm-twin", messages=[*old, *CONVERSATION])  # type: ignore[list-item]
    prompt = (await _calls(emulators, "invocations"))[0]["payload"]["inputs"]
    assert f"User: {QUESTION}" in prompt and "Assistant: That the analytical engine" in prompt
    assert "old question number 0" not in prompt  # the oldest turns did not fit


# --- parameters, as TGI understands them ----------------------------------------------------------------


async def test_each_parameter_reaches_tgi_as_mapped(
    gateway_openai: openai.AsyncOpenAI, emulators: RunningEmulators
) -> None:
    await gateway_openai.chat.completions.create(
        model="llm-twin",
        messages=[{"role": "user", "content": QUESTION}],
        max_tokens=40,
        temperature=0.7,
        top_p=0.5,
        stop=["zzz", "qqq"],
        seed=7,
        frequency_penalty=0.5,
    )
    parameters = await _tgi_parameters(emulators)
    assert parameters == {
        "max_new_tokens": 40,
        "repetition_penalty": 1.1,
        "return_full_text": False,
        "details": True,
        "do_sample": True,
        "temperature": 0.7,
        "top_p": 0.5,
        "seed": 7,
        "stop": ["zzz", "qqq"],
        "frequency_penalty": 0.5,
    }


@pytest.mark.parametrize(
    ("asked", "expected"),
    [
        ({"max_completion_tokens": 5000}, {"max_new_tokens": 1024}),  # capped at MAX_NEW_TOKENS_LIMIT
        ({"max_tokens": 10, "max_completion_tokens": 20}, {"max_new_tokens": 20}),  # the newer name wins
        ({"top_p": 1.0}, {"top_p": None, "temperature": 0.01}),  # 1 = no nucleus filter: TGI refuses 1
        ({"seed": -1}, {"seed": 2**64 - 1}),  # TGI's seed is unsigned
        ({}, {"max_new_tokens": 150, "temperature": 0.01, "top_p": 0.9, "seed": None, "stop": None}),
    ],
)
async def test_parameter_edges_reach_tgi_within_its_rules(
    gateway_openai: openai.AsyncOpenAI,
    emulators: RunningEmulators,
    asked: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    completion = await gateway_openai.chat.completions.create(
        model="llm-twin", messages=[{"role": "user", "content": QUESTION}], **asked
    )
    assert completion.choices[0].message.content
    parameters = await _tgi_parameters(emulators)
    assert {name: parameters.get(name) for name in expected} == expected


async def test_temperature_zero_is_greedy_decoding(
    gateway_openai: openai.AsyncOpenAI, emulators: RunningEmulators
) -> None:
    completion = await gateway_openai.chat.completions.create(
        model="llm-twin", messages=[{"role": "user", "content": QUESTION}], temperature=0, top_p=0.5
    )
    assert completion.choices[0].message.content
    parameters = await _tgi_parameters(emulators)
    assert parameters["do_sample"] is False
    assert "temperature" not in parameters and "top_p" not in parameters  # either would turn sampling on


async def test_stop_sequences_end_the_answer_without_being_in_it(gateway_openai: openai.AsyncOpenAI) -> None:
    whole = await gateway_openai.chat.completions.create(
        model="llm-twin", messages=[{"role": "user", "content": QUESTION}]
    )
    assert (whole.choices[0].message.content or "").startswith("According to Ada Quill")
    stopped = await gateway_openai.chat.completions.create(
        model="llm-twin", messages=[{"role": "user", "content": QUESTION}], stop="Quill"
    )
    assert stopped.choices[0].message.content == "According to Ada"
    assert stopped.choices[0].finish_reason == "stop"
    stream = await gateway_openai.chat.completions.create(
        model="llm-twin", messages=[{"role": "user", "content": QUESTION}], stop=["Quill"], stream=True
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip() == "According to Ada"
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_the_token_limit_gives_finish_reason_length(gateway_openai: openai.AsyncOpenAI) -> None:
    completion = await gateway_openai.chat.completions.create(
        model="llm-twin", messages=[{"role": "user", "content": QUESTION}], max_tokens=3
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.choices[0].message.content == "According to Ada"
    assert completion.usage is not None and completion.usage.completion_tokens == 3


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n", 2),
        ("tools", [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]),
        ("tool_choice", "auto"),
        ("functions", [{"name": "f", "parameters": {"type": "object"}}]),
        ("function_call", "auto"),
        ("logprobs", True),
        ("top_logprobs", 2),
        ("audio", {"voice": "alloy", "format": "wav"}),
        ("modalities", ["text", "audio"]),
        ("logit_bias", {"50256": -100}),
        ("prediction", {"type": "content", "content": "x"}),
        ("presence_penalty", 0.5),
        ("web_search_options", {}),
    ],
)
async def test_a_parameter_the_gateway_cannot_honour_is_a_400_naming_it(
    gateway_openai: openai.AsyncOpenAI, emulators: RunningEmulators, field: str, value: Any
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await gateway_openai.chat.completions.create(
            model="llm-twin", messages=[{"role": "user", "content": QUESTION}], extra_body={field: value}
        )
    error = caught.value
    assert error.status_code == 400
    assert (
        error.param == field
        and error.code == "unsupported_parameter"
        and error.type == "invalid_request_error"
    )
    assert field in error.message
    assert await emulators.openai.requests() == [] and await emulators.sagemaker.requests() == []


async def test_neutral_values_of_unsupported_parameters_are_accepted(
    gateway_openai: openai.AsyncOpenAI,
) -> None:
    completion = await gateway_openai.chat.completions.create(
        model="llm-twin",
        messages=[{"role": "user", "content": QUESTION}],
        n=1,
        logprobs=False,
        presence_penalty=0,
        tool_choice="none",
        user="someone",
        metadata={"k": "v"},
    )
    assert completion.choices[0].message.content


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"stop": [""]}, "stop"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
            "messages[0].content",
        ),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {"type": "array"}},
                }
            },
            "response_format",
        ),
    ],
)
async def test_values_beyond_what_tgi_takes_are_a_400_in_openai_shape(
    client: httpx.AsyncClient, emulators: RunningEmulators, payload: dict[str, Any], param: str
) -> None:
    body = {"model": "llm-twin", "messages": [{"role": "user", "content": QUESTION}], **payload}
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 400, response.text
    error = response.json()
    assert set(error) == {"error", "request_id"} and error["request_id"] == response.headers["x-request-id"]
    assert set(error["error"]) == {"message", "type", "param", "code"}
    assert error["error"]["param"] == param and error["error"]["type"] == "invalid_request_error"
    assert await emulators.sagemaker.requests() == []


async def test_an_out_of_range_value_names_the_parameter(client: httpx.AsyncClient) -> None:
    body = {"model": "llm-twin", "messages": [{"role": "user", "content": QUESTION}], "temperature": 3}
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["param"] == "temperature"


# --- model names ------------------------------------------------------------------------------------------


async def test_an_unknown_model_is_a_404_model_not_found(
    gateway_openai: openai.AsyncOpenAI, emulators: RunningEmulators
) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await gateway_openai.chat.completions.create(
            model="gpt-5", messages=[{"role": "user", "content": QUESTION}]
        )
    assert caught.value.code == "model_not_found" and caught.value.param == "model"
    assert await emulators.openai.requests() == []


async def test_aliases_are_served_and_listed(start_gateway: Callable[..., str]) -> None:
    url = start_gateway(served_model_aliases="twin, gpt-4o-mini")
    async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0) as client:
        assert [m.id for m in (await client.models.list()).data] == ["llm-twin", "twin", "gpt-4o-mini"]
        completion = await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": QUESTION}]
        )
        assert completion.model == "llm-twin"  # like vLLM: the served name answers
        with pytest.raises(openai.NotFoundError):
            await client.chat.completions.create(
                model="twin2", messages=[{"role": "user", "content": QUESTION}]
            )


# --- usage and finish reasons ---------------------------------------------------------------------------------


async def test_usage_adds_up_plain_and_streamed(
    gateway_openai: openai.AsyncOpenAI, emulators: RunningEmulators
) -> None:
    messages: Any = [{"role": "user", "content": QUESTION}]
    plain = await gateway_openai.chat.completions.create(model="llm-twin", messages=messages)
    usage = plain.usage
    assert usage is not None and usage.prompt_tokens > 100 and usage.completion_tokens > 3
    assert usage.prompt_tokens + usage.completion_tokens == usage.total_tokens
    prompt = (await _calls(emulators, "invocations"))[0]["payload"]["inputs"]
    assert usage.prompt_tokens == TokenCounter(MODEL_DIR / "tokenizer.json").count(
        prompt
    )  # the gateway's count
    assert usage.completion_tokens == len(
        (plain.choices[0].message.content or "").split()
    )  # TGI's: a word a token

    stream = await gateway_openai.chat.completions.create(
        model="llm-twin", messages=messages, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert last.usage.prompt_tokens == len(fake_llm.prompt_tokens(prompt))  # TGI's own count (input_length)
    assert last.usage.completion_tokens == usage.completion_tokens
    assert last.usage.prompt_tokens + last.usage.completion_tokens == last.usage.total_tokens
    assert all(c.usage is None for c in chunks[:-1])
    content = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content) == usage.completion_tokens
    assert chunks[-2].choices[0].finish_reason == "stop"

    no_usage = await gateway_openai.chat.completions.create(model="llm-twin", messages=messages, stream=True)
    assert all(c.usage is None and c.choices for c in [chunk async for chunk in no_usage])


# --- structured output ------------------------------------------------------------------------------------------


class Summary(BaseModel):
    author: str
    topic: str
    sources_used: int


async def test_a_json_schema_answer_parses_with_the_sdk(
    gateway_openai: openai.AsyncOpenAI, emulators: RunningEmulators
) -> None:
    completion = await gateway_openai.chat.completions.parse(
        model="llm-twin",
        messages=[{"role": "user", "content": QUESTION}],
        response_format=Summary,
        extra_body={"citations": True},  # never appended to JSON
    )
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Summary) and parsed.author
    grammar = (await _tgi_parameters(emulators))["grammar"]
    assert grammar["type"] == "json" and set(grammar["value"]["properties"]) == {
        "author",
        "topic",
        "sources_used",
    }


async def test_json_object_mode_answers_a_json_object(gateway_openai: openai.AsyncOpenAI) -> None:
    completion = await gateway_openai.chat.completions.create(
        model="llm-twin",
        messages=[{"role": "user", "content": QUESTION}],
        response_format={"type": "json_object"},
    )
    assert isinstance(json.loads(completion.choices[0].message.content or ""), dict)


async def test_the_openai_compatible_backend_gets_the_parameters_and_response_format(
    start_gateway: Callable[..., str], emulators: RunningEmulators
) -> None:
    url = start_gateway(llm_backend="openai", llm_model_id="twin-vllm")
    async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0) as client:
        completion = await client.chat.completions.parse(
            model="llm-twin",
            messages=[{"role": "user", "content": QUESTION}],
            response_format=Summary,
            temperature=0,
            seed=3,
            stop=["zzz"],
            max_tokens=300,
        )
    assert isinstance(completion.choices[0].message.parsed, Summary)
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens + usage.completion_tokens == usage.total_tokens
    (generation,) = await _calls(emulators, "generate")
    payload = generation["payload"]
    assert payload["response_format"]["type"] == "json_schema"
    assert (payload["temperature"], payload["seed"], payload["stop"], payload["max_tokens"]) == (
        0,
        3,
        ["zzz"],
        300,
    )


# --- citations ---------------------------------------------------------------------------------------------------


async def test_citations_survive_langchain(gateway_url: str, emulators: RunningEmulators) -> None:
    llm = ChatOpenAI(
        base_url=f"{gateway_url}/v1",
        api_key="unused",  # type: ignore[arg-type]
        model="llm-twin",
        max_retries=0,
        extra_body={"citations": True},
    )
    reply = await llm.ainvoke([SystemMessage("Be brief."), HumanMessage(QUESTION)])
    text = str(reply.content)
    assert "[1]" in text.split("\n\nSources:\n")[0]  # the model cites by number, as the prompt asks
    sources = text.split("\n\nSources:\n")[1].splitlines()
    assert sources[0].startswith("[1] ") and " — https://" in sources[0]
    streamed = "".join([str(chunk.content) async for chunk in llm.astream([HumanMessage(QUESTION)])])
    assert streamed.strip() == text


async def test_langchain_carries_a_conversation(gateway_url: str, emulators: RunningEmulators) -> None:
    llm = ChatOpenAI(base_url=f"{gateway_url}/v1", api_key="unused", model="llm-twin", max_retries=0)  # type: ignore[arg-type]
    reply = await llm.ainvoke(
        [
            HumanMessage(QUESTION),
            AIMessage(CONVERSATION[1]["content"]),
            HumanMessage(CONVERSATION[2]["content"]),
        ]
    )
    assert "Ada Quill" in str(reply.content)
    (self_query,) = await _calls(emulators, "self_query")
    assert self_query["payload"]["messages"][1]["content"] == REWRITTEN


async def test_appending_citations_can_be_the_default(start_gateway: Callable[..., str]) -> None:
    url = start_gateway(append_citations=True)
    async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0) as client:
        completion = await client.chat.completions.create(
            model="llm-twin", messages=[{"role": "user", "content": QUESTION}]
        )
        assert "\n\nSources:\n[1] " in (completion.choices[0].message.content or "")
        off = await client.chat.completions.create(
            model="llm-twin",
            messages=[{"role": "user", "content": QUESTION}],
            extra_body={"citations": False},
        )
        assert "Sources:" not in (off.choices[0].message.content or "")
