"""A repeated question is answered without repeating the OpenAI calls or the embedding work."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import numpy as np

from rag_gateway.rag.caches import EmbeddingCache, UnderstandingCache
from rag_gateway_emulators.server import RunningEmulators


async def test_a_repeated_question_skips_self_query_and_expansion(
    start_gateway: Callable[..., str], emulators: RunningEmulators
) -> None:
    url = start_gateway(query_cache_size=100, embedding_cache_size=100)
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        first = await http.post("/rag", json={"query": "What did Ada Quill write about punched cards?"})
        again = await http.post("/rag", json={"query": "what did  ada quill write about punched cards?"})
    assert first.status_code == again.status_code == 200
    assert again.json()["author_filter"] == first.json()["author_filter"] == "Ada Quill"
    assert [s["id"] for s in again.json()["sources"]] == [s["id"] for s in first.json()["sources"]]
    assert len(await emulators.openai.requests()) == 2  # self-query + expansion, once
    assert len(await emulators.sagemaker.requests()) == 2  # the answer itself is never cached


async def test_a_degraded_understanding_is_not_cached(
    start_gateway: Callable[..., str], emulators: RunningEmulators
) -> None:
    url = start_gateway(query_cache_size=100)
    await emulators.openai.add_fault(target="expansion", kind="status", status=500, times=None)
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        assert (await http.post("/rag", json={"query": "punched cards"})).json()["degraded"] == ["expand"]
        await emulators.openai.clear()
        healed = await http.post("/rag", json={"query": "punched cards"})
    assert healed.json()["degraded"] == [] and len(healed.json()["queries"]) == 3


async def test_the_embedding_cache_embeds_only_new_texts() -> None:
    calls: list[list[str]] = []

    async def compute(texts: list[str]) -> list[np.ndarray]:
        calls.append(texts)
        return [np.full(2, len(t), dtype=np.float32) for t in texts]

    cache = EmbeddingCache(10)
    first = await cache.embed(["a", "bb", "a"], compute)
    second = await cache.embed(["bb", "ccc"], compute)
    assert calls == [["a", "bb"], ["ccc"]]
    assert [v[0] for v in first] == [1, 2, 1] and [v[0] for v in second] == [2, 3]


def test_size_zero_turns_the_caches_off() -> None:
    cache = UnderstandingCache(0, 60)
    cache.put("q", "Ada", ["q"])
    assert cache.get("q") is None
