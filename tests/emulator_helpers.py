"""Fixtures and helpers shared by the OpenAI/SageMaker emulator tests.

pytest finds a fixture in the module that uses it, so each test module binds the ones it needs by name
(``emu = emulator_helpers.emu``); importing them instead would trip the linter on every parameter.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aioboto3
import openai
import pytest_asyncio
from botocore.config import Config

from rag_gateway_emulators import running_emulators
from rag_gateway_emulators.server import RunningEmulators

ENDPOINT = "twin"
INSTRUCTION = (
    "You are a content creator. Write what the user asked you to while using the provided context as the "
    "primary source of information for the content."
)


@pytest_asyncio.fixture(scope="session")
async def emu() -> AsyncIterator[RunningEmulators]:
    async with running_emulators(endpoint_name=ENDPOINT) as emulators:
        yield emulators


@pytest_asyncio.fixture(autouse=True)
async def _fresh_emulators(emu: RunningEmulators) -> AsyncIterator[None]:
    await emu.openai.reset()
    await emu.sagemaker.reset()
    yield


@pytest_asyncio.fixture(scope="session")
async def oai(emu: RunningEmulators) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=emu.openai_url, api_key="test-key", max_retries=0, timeout=5.0)
    yield client
    await client.close()


def sagemaker_client(emu: RunningEmulators, read_timeout: float = 5.0) -> Any:
    return aioboto3.Session().client(
        "sagemaker-runtime",
        endpoint_url=emu.sagemaker_url,
        region_name="eu-central-1",
        aws_access_key_id="AKIDTEST",
        aws_secret_access_key="secret",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=read_timeout, connect_timeout=2.0),
    )


@pytest_asyncio.fixture(scope="session")
async def sm(emu: RunningEmulators) -> AsyncIterator[Any]:
    async with sagemaker_client(emu) as client:
        yield client
