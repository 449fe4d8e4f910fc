"""The emulated TGI honours generation parameters the way TGI does (grammar, stop, details, validation),
and the emulated OpenAI answers the conversation rewrite; driven by the real aioboto3 and openai clients."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from botocore.exceptions import ClientError

from rag_gateway_emulators import fake_llm
from tests import emulator_helpers
from tests.emulator_helpers import ENDPOINT, INSTRUCTION

emu = emulator_helpers.emu
_fresh_emulators = emulator_helpers._fresh_emulators
oai = emulator_helpers.oai
sm = emulator_helpers.sm

PROMPT = (
    f"{INSTRUCTION}\nUser query: What did Ada write?\nContext: Chunk 1:\nType: article\nPlatform: medium\n"
    "Author: Ada Quill\nContent: Punched cards encode operations. More text.\n"
)


async def generate(client: Any, **parameters: Any) -> dict[str, Any]:
    response = await client.invoke_endpoint(
        EndpointName=ENDPOINT,
        ContentType="application/json",
        Body=json.dumps({"inputs": PROMPT, "parameters": {"return_full_text": False, **parameters}}),
    )
    async with response["Body"] as stream:
        answer: dict[str, Any] = json.loads(await stream.read())[0]
    return answer


async def test_details_report_the_finish_reason_and_token_counts(sm: Any) -> None:
    answer = await generate(sm, details=True, decoder_input_details=True, seed=9)
    details = answer["details"]
    assert details["finish_reason"] == "eos_token" and details["seed"] == 9
    assert details["generated_tokens"] == len(answer["generated_text"].split(" ")) == len(details["tokens"])
    assert len(details["prefill"]) == len(fake_llm.prompt_tokens(PROMPT))
    assert details["prefill"][0]["logprob"] is None  # as TGI: the first prompt token has none
    assert "details" not in await generate(sm)
    assert (await generate(sm, details=True))["details"]["prefill"] == []


async def test_a_stop_sequence_ends_the_answer_and_stays_in_it(sm: Any) -> None:
    answer = await generate(sm, details=True, stop=["cards", "Quill"])
    assert answer["generated_text"] == "According to Ada Quill"
    assert answer["details"]["finish_reason"] == "stop_sequence"
    limited = await generate(sm, details=True, stop=["cards"], max_new_tokens=2)
    assert limited["generated_text"] == "According to" and limited["details"]["finish_reason"] == "length"


async def test_a_grammar_gives_json_that_follows_the_schema(sm: Any) -> None:
    schema = {
        "type": "object",
        "properties": {"author": {"type": "string"}, "score": {"type": "number", "minimum": 1}},
        "required": ["author", "score"],
    }
    answer = await generate(sm, grammar={"type": "json", "value": schema})
    value = json.loads(answer["generated_text"])
    assert value == {
        "author": "According to Ada Quill (medium): Punched cards encode operations.",
        "score": 1,
    }
    as_string = await generate(sm, grammar={"type": "json", "value": json.dumps(schema)})
    assert json.loads(as_string["generated_text"]) == value


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"stop": ["a", "b", "c", "d", "e"]}, "`stop` supports up to 4 stop sequences. Given: 5"),
        ({"grammar": {"type": "json", "value": {"type": "array"}}}, "Grammar must have a 'properties' field"),
        ({"frequency_penalty": 3}, "`frequency_penalty` must be >= -2.0 and <= 2.0"),
        ({"seed": -1}, "seed"),
        ({"temperature": 0}, "`temperature` must be strictly positive"),
        ({"top_p": 1.0}, "`top_p` must be > 0.0 and < 1.0"),
    ],
)
async def test_parameters_tgi_refuses_are_a_422_model_error(
    sm: Any, parameters: dict[str, Any], message: str
) -> None:
    with pytest.raises(ClientError) as caught:
        await generate(sm, **parameters)
    error = caught.value.response
    assert error["Error"]["Code"] == "ModelError" and error["OriginalStatusCode"] == 422
    assert message in error["OriginalMessage"]


async def test_decoder_input_details_is_refused_on_a_stream(sm: Any) -> None:
    body = json.dumps({"inputs": PROMPT, "parameters": {"decoder_input_details": True}, "stream": True})
    with pytest.raises(ClientError) as caught:
        await sm.invoke_endpoint_with_response_stream(
            EndpointName=ENDPOINT, ContentType="application/json", Body=body
        )
    assert "not supported when streaming tokens" in caught.value.response["OriginalMessage"]


async def test_the_stream_details_carry_the_prompt_length(sm: Any) -> None:
    body = json.dumps(
        {"inputs": PROMPT, "parameters": {"details": True, "max_new_tokens": 4}, "stream": True}
    )
    response = await sm.invoke_endpoint_with_response_stream(
        EndpointName=ENDPOINT, ContentType="application/json", Body=body
    )
    raw = b"".join(
        [event["PayloadPart"]["Bytes"] async for event in response["Body"] if "PayloadPart" in event]
    )
    events = [json.loads(line[5:]) for line in raw.split(b"\n") if line.startswith(b"data:")]
    details = events[-1]["details"]
    assert details["input_length"] == len(fake_llm.prompt_tokens(PROMPT))
    assert details["generated_tokens"] == 4 and details["finish_reason"] == "length"


async def test_the_rewrite_call_resolves_the_follow_up(oai: openai.AsyncOpenAI) -> None:
    transcript = (
        "Conversation:\nuser: What did Ada Quill write about punched cards?\nassistant: A lot.\n\n"
        "Follow-up question: How did she use them?"
    )
    completion = await oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "Rewrite into a standalone question."},
            {"role": "user", "content": transcript},
        ],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "standalone_question", "schema": {"type": "object"}, "strict": True},
        },
    )
    content = json.loads(completion.choices[0].message.content or "")
    assert content == {"question": "How did Ada Quill use punched cards?"}


async def test_a_generation_may_ask_for_json(oai: openai.AsyncOpenAI) -> None:
    completion = await oai.chat.completions.create(
        model="twin",
        messages=[{"role": "user", "content": PROMPT}],
        response_format={"type": "json_object"},
        stop=["zzz"],
    )
    assert json.loads(completion.choices[0].message.content or "") == {
        "answer": "According to Ada Quill (medium): Punched cards encode operations."
    }
