"""Micro-batching: concurrent embed calls share one model run, and each caller gets its own vectors."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from rag_gateway.rag.retrieval.batching import MicroBatcher


async def test_concurrent_calls_share_one_run_and_get_their_own_vectors() -> None:
    runs: list[list[str]] = []

    async def compute(texts: list[str]) -> list[np.ndarray]:
        runs.append(texts)
        return [np.full(1, float(len(t)), dtype=np.float32) for t in texts]

    batcher = MicroBatcher(compute, window_s=0.01)
    first, second = await asyncio.gather(batcher.embed(["a", "bb"]), batcher.embed(["ccc"]))
    assert runs == [["a", "bb", "ccc"]]
    assert [v[0] for v in first] == [1, 2] and [v[0] for v in second] == [3]


async def test_a_full_batch_runs_without_waiting_for_the_window() -> None:
    runs: list[list[str]] = []

    async def compute(texts: list[str]) -> list[np.ndarray]:
        runs.append(texts)
        return [np.zeros(1, dtype=np.float32) for _ in texts]

    batcher = MicroBatcher(compute, window_s=3600, max_texts=2)  # the window would never end in time
    await asyncio.wait_for(batcher.embed(["a", "b"]), timeout=10)
    assert runs == [["a", "b"]]


async def test_a_failed_run_fails_every_caller_in_it() -> None:
    async def compute(texts: list[str]) -> list[np.ndarray]:
        raise RuntimeError("model failed")

    batcher = MicroBatcher(compute, window_s=0.01)
    results = await asyncio.gather(batcher.embed(["a"]), batcher.embed(["b"]), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)


async def test_a_cancelled_caller_does_not_break_the_others() -> None:
    async def compute(texts: list[str]) -> list[np.ndarray]:
        return [np.full(1, float(len(t)), dtype=np.float32) for t in texts]

    batcher = MicroBatcher(compute, window_s=0.05)
    doomed = asyncio.create_task(batcher.embed(["xx"]))
    survivor = asyncio.create_task(batcher.embed(["yyy"]))
    await asyncio.sleep(0)  # both are queued in the window
    doomed.cancel()
    assert [v[0] for v in await survivor] == [3]
    with pytest.raises(asyncio.CancelledError):
        await doomed


async def test_callers_arriving_while_a_batch_runs_leave_together_in_the_next_one() -> None:
    runs: list[list[str]] = []
    started, release = asyncio.Event(), asyncio.Event()

    async def compute(texts: list[str]) -> list[np.ndarray]:
        runs.append(texts)
        started.set()
        if len(runs) == 1:
            await release.wait()  # the first batch is still on the model
        return [np.full(1, float(len(t)), dtype=np.float32) for t in texts]

    batcher = MicroBatcher(compute, window_s=0, max_in_flight=1)  # a zero window: flush on the next tick
    first = asyncio.create_task(batcher.embed(["a"]))
    await started.wait()
    later = []
    for text in ("bb", "ccc", "dddd"):  # one at a time, each given many ticks to be flushed on its own
        later.append(asyncio.create_task(batcher.embed([text])))
        for _ in range(10):
            await asyncio.sleep(0)
    assert runs == [["a"]]  # no second batch while the only slot is taken
    release.set()
    results = await asyncio.gather(first, *later)
    assert runs == [["a"], ["bb", "ccc", "dddd"]]
    assert [[v[0] for v in r] for r in results] == [[1], [2], [3], [4]]


async def test_a_backlog_larger_than_a_batch_is_split_without_splitting_a_caller() -> None:
    runs: list[list[str]] = []

    async def compute(texts: list[str]) -> list[np.ndarray]:
        runs.append(texts)
        return [np.zeros(1, dtype=np.float32) for _ in texts]

    batcher = MicroBatcher(compute, window_s=0.01, max_texts=3, max_in_flight=1)
    await asyncio.gather(batcher.embed(["a", "b"]), batcher.embed(["c", "d"]), batcher.embed(["e"]))
    assert runs == [["a", "b"], ["c", "d", "e"]]
