"""Bulk import of pre-embedded chunks (``rag-gateway ingest FILE.jsonl``) into both store backends."""

from __future__ import annotations

import asyncio
import json
import math
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag_gateway.cli.main import main
from rag_gateway.config import COLLECTIONS, Settings
from rag_gateway.errors import GatewayError
from rag_gateway.ingest import IngestError
from rag_gateway.ingest.jsonl import ImportReport, import_jsonl, validate_jsonl
from rag_gateway.rag.retrieval.embedding import EMBEDDING_DIM
from rag_gateway.rag.retrieval.schema import IndexSchema
from rag_gateway.rag.retrieval.sparse import SparseEncoder
from rag_gateway.rag.retrieval.stores import Hit, open_vector_store
from rag_gateway.rag.retrieval.stores.base import SearchVector
from rag_gateway_emulators.qdrant_emulator import QdrantEmulatorThread

AUTHORS = ("Ada Quill", "Ben Marsh", "Cleo Hart")
TOPICS = ("kafka", "tokenizers", "reranking", "quantization", "orchestration")
#: Points per collection in the generated file: 300 over two collections.
SPLIT = {"embedded_articles": 200, "embedded_posts": 100}
#: AsyncQdrantClient may warn from a background thread when the emulator is gone first, and the emulator
#: (local mode inside) that it ignores search params: neither is about the code under test.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Failed to obtain server version:UserWarning"),
    pytest.mark.filterwarnings("ignore:Local mode performs exact:UserWarning"),
]


# --- helpers ----------------------------------------------------------------------------------------------


def local_settings(path: Path) -> Settings:
    return Settings(_env_file=None, qdrant_path=path, qdrant_url=None)


def point_id(collection: str, i: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"bulk/{collection}/{i}"))


def make_records(split: dict[str, int] = SPLIT, seed: int = 7) -> list[dict[str, Any]]:
    """Deterministic chunks: random vectors of varied lengths (not unit), three authors, full payloads."""
    rng = np.random.default_rng(seed)
    records = []
    for collection, n in split.items():
        for i in range(n):
            vector = rng.standard_normal(EMBEDDING_DIM) * (0.5 + i % 5)
            author = AUTHORS[i % len(AUTHORS)]
            records.append(
                {
                    "id": point_id(collection, i),
                    "collection": collection,
                    "vector": vector.tolist(),
                    "payload": {
                        "content": f"chunk {i} of {collection}: notes on {TOPICS[i % len(TOPICS)]}",
                        "title": None if i % 4 == 0 else f"Title {i // 3}",
                        "link": f"https://example.com/{collection}/{i // 3}",
                        "platform": "medium" if collection == "embedded_articles" else "linkedin",
                        "author_id": f"author-{i % len(AUTHORS)}",
                        "author_full_name": author,
                        "document_id": f"{collection}-doc-{i // 3}",
                        "chunk_index": i % 3,
                        "type": "article" if collection == "embedded_articles" else "post",
                    },
                }
            )
    return records


def write_jsonl(path: Path, records: list[Any], raw_lines: dict[int, str] | None = None) -> Path:
    """One record per line (stdlib json, so NaN stays NaN); `raw_lines` replaces given 1-based lines."""
    lines = [json.dumps(record) for record in records]
    for number, text in (raw_lines or {}).items():
        lines[number - 1] = text
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def unit(vector: list[float]) -> np.ndarray:
    array = np.asarray(vector, dtype=np.float64)
    return (array / np.linalg.norm(array)).astype(np.float32)


async def store_counts(settings: Settings) -> dict[str, int]:
    store = open_vector_store(settings)
    try:
        existing = await store.existing_collections()
        return {name: await store.count(name) for name in sorted(existing)}
    finally:
        await store.close()


async def search(
    settings: Settings, vectors: list[SearchVector], author: str | None, limit: int = 10
) -> dict[str, list[list[Hit]] | GatewayError]:
    store = open_vector_store(settings)
    try:
        return await store.search_collections(list(SPLIT), vectors, author, limit)
    finally:
        await store.close()


def hits_of(result: Any) -> list[list[Hit]]:
    assert isinstance(result, list), result
    return result


@pytest.fixture
def records() -> list[dict[str, Any]]:
    return make_records()


@pytest.fixture
def jsonl_file(tmp_path: Path, records: list[dict[str, Any]]) -> Path:
    return write_jsonl(tmp_path / "chunks.jsonl", records)


# --- import and search back ---------------------------------------------------------------------------------


async def test_import_then_search_with_and_without_author(
    tmp_path: Path, jsonl_file: Path, records: list[dict[str, Any]]
) -> None:
    settings = local_settings(tmp_path / "store")
    report = await import_jsonl(jsonl_file, settings, progress=False, batch_size=64)

    assert isinstance(report, ImportReport)
    assert {c.collection: (c.read, c.new, c.count_after) for c in report.collections} == {
        name: (n, n, n) for name, n in SPLIT.items()
    }
    assert report.read == report.new == 300
    assert report.points_per_second > 0
    assert re.fullmatch(
        r"imported chunks\.jsonl: 200 points \(200 new, 200 stored\) into embedded_articles; "
        r"100 points \(100 new, 100 stored\) into embedded_posts in \d+\.\d s \([\d,]+ points/s\)",
        report.summary(),
    ), report.summary()
    # every collection exists (the gateway searches all three), the untouched one empty
    assert await store_counts(settings) == {**dict.fromkeys(COLLECTIONS, 0), **SPLIT}

    # each stored vector is the input scaled to unit length: querying with it finds the point at score 1
    probes = [records[0], records[5], records[250]]
    results = await search(settings, [unit(r["vector"]) for r in probes], author=None)
    for query_index, probe in enumerate(probes):
        hits = hits_of(results[probe["collection"]])[query_index]
        top = hits[0]
        assert top.id == probe["id"]
        assert top.payload == probe["payload"]
        assert top.score == pytest.approx(1.0, abs=1e-4)  # two unit vectors with a dot product of 1: equal

    # with an author filter, only that author's chunks come back, from both collections
    probe = records[0]  # by AUTHORS[0]
    other = AUTHORS[1]
    filtered = await search(settings, [unit(probe["vector"])], author=other, limit=50)
    seen = 0
    for collection in SPLIT:
        hits = hits_of(filtered[collection])[0]
        assert hits, collection
        assert all(hit.payload["author_full_name"] == other for hit in hits)
        assert probe["id"] not in {hit.id for hit in hits}
        seen += len(hits)
    assert seen == 50 + 33  # min(limit, that author's chunks): 50 of 67 articles, all 33 posts

    await assert_bm25_finds(
        settings, "tokenizers", per_collection={"embedded_articles": 40, "embedded_posts": 20}
    )


async def assert_bm25_finds(settings: Settings, topic: str, per_collection: dict[str, int]) -> None:
    """Imported points carry BM25 vectors computed from their text: a keyword query finds exactly its chunks."""
    results = await search(settings, [SparseEncoder().query(topic)], author=None, limit=100)
    for collection, expected in per_collection.items():
        hits = hits_of(results[collection])[0]
        assert len(hits) == expected, collection
        assert all(topic in hit.payload["content"] for hit in hits)


async def test_reimport_adds_nothing(tmp_path: Path, jsonl_file: Path) -> None:
    settings = local_settings(tmp_path / "store")
    first = await import_jsonl(jsonl_file, settings, progress=False)
    second = await import_jsonl(jsonl_file, settings, progress=False, batch_size=7)

    assert first.new == 300
    assert second.read == 300
    assert second.new == 0
    assert {c.collection: (c.count_before, c.count_after) for c in second.collections} == {
        name: (n, n) for name, n in SPLIT.items()
    }
    assert await store_counts(settings) == {**dict.fromkeys(COLLECTIONS, 0), **SPLIT}


async def test_repeated_id_in_file_last_line_wins(tmp_path: Path, records: list[dict[str, Any]]) -> None:
    """Within one batch and across batches, a repeated id is stored once with its last line's content."""
    first, second = records[0], records[1]
    again = {**first, "payload": {**first["payload"], "content": "the second version"}}
    again_second = {**second, "vector": records[2]["vector"], "payload": {**second["payload"], "title": "v2"}}
    path = write_jsonl(tmp_path / "dups.jsonl", [first, second, again, records[3], records[4], again_second])
    settings = local_settings(tmp_path / "store")

    report = await import_jsonl(path, settings, progress=False, batch_size=2)

    [articles] = report.collections
    assert (articles.read, articles.new, articles.count_after) == (6, 4, 4)
    results = await search(settings, [unit(first["vector"]), unit(records[2]["vector"])], None, limit=1)
    hits = hits_of(results["embedded_articles"])
    assert hits[0][0].id == first["id"]
    assert hits[0][0].payload["content"] == "the second version"
    assert hits[1][0].id == second["id"]  # its vector was replaced by the later line's
    assert hits[1][0].payload["title"] == "v2"


async def test_blank_lines_and_empty_file(tmp_path: Path, records: list[dict[str, Any]]) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n  \n", encoding="utf-8")
    settings = local_settings(tmp_path / "store")
    report = await import_jsonl(empty, settings, progress=False)
    assert report.collections == ()
    assert report.summary().startswith(f"imported nothing: {empty} holds no points")
    assert not (tmp_path / "store").exists()  # the store is not even opened

    spaced = tmp_path / "spaced.jsonl"
    spaced.write_text(f"\n{json.dumps(records[0])}\n\n{json.dumps(records[1])}\n\n", encoding="utf-8")
    assert (await import_jsonl(spaced, settings, progress=False)).new == 2


# --- validation: a bad line anywhere means nothing written ---------------------------------------------------

BAD_LINE = 250  # after more good lines than one batch holds: a streaming importer must not have written them


def _replace(key: str, value: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda record: {**record, key: value}


def _payload_without(*keys: str) -> Callable[[dict[str, Any]], Any]:
    return lambda record: {**record, "payload": {k: v for k, v in record["payload"].items() if k not in keys}}


def _vector_with(index: int, value: Any) -> Callable[[dict[str, Any]], Any]:
    def change(record: dict[str, Any]) -> dict[str, Any]:
        vector = list(record["vector"])
        vector[index] = value
        return {**record, "vector": vector}

    return change


BAD_CASES: dict[str, tuple[Callable[[dict[str, Any]], Any] | str, str]] = {
    "bad json": ('{"id": "x", "collection": ', r"not valid JSON"),
    "not an object": ("[1, 2, 3]", r"expected a JSON object, got a list"),
    "missing top-level key": (
        lambda r: {k: v for k, v in r.items() if k != "vector"},
        r"missing vector$",
    ),
    "bad uuid": (_replace("id", "chunk-250"), r"id 'chunk-250' is not a UUID"),
    "numeric id": (_replace("id", 250), r"id must be a UUID string, got 250"),
    "unknown collection": (
        _replace("collection", "embedded_videos"),
        r"unknown collection 'embedded_videos' \(expected one of embedded_posts, embedded_articles, "
        r"embedded_repositories\)",
    ),
    "wrong dimension": (lambda r: {**r, "vector": r["vector"][:383]}, r"vector has 383 values, expected 384"),
    "vector not a list": (_replace("vector", {"0": 1.0}), r"vector must be a list of numbers, got an object"),
    "nan": (_vector_with(17, math.nan), r"vector\[17\] is nan, expected a finite number"),
    "infinity": (_vector_with(3, -math.inf), r"vector\[3\] is -inf, expected a finite number"),
    "string in vector": (_vector_with(5, "0.5"), r"vector\[5\] is a string \('0\.5'\), expected a number"),
    "bool in vector": (_vector_with(0, True), r"vector\[0\] is true, expected a number"),
    "null in vector": (_vector_with(383, None), r"vector\[383\] is null, expected a number"),
    "zero vector": (_replace("vector", [0.0] * EMBEDDING_DIM), r"vector is all zeros"),
    "missing payload keys": (
        _payload_without("author_full_name", "chunk_index"),
        r"payload is missing author_full_name, chunk_index$",
    ),
    "payload not an object": (_replace("payload", "text"), r"payload must be a JSON object, got a string"),
    "author not a string": (
        lambda r: {**r, "payload": {**r["payload"], "author_full_name": 7}},
        r"payload\.author_full_name must be a string, got 7",
    ),
    "negative chunk index": (
        lambda r: {**r, "payload": {**r["payload"], "chunk_index": -1}},
        r"payload\.chunk_index must be a non-negative integer, got -1",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
async def test_bad_line_is_named_and_nothing_is_written(
    tmp_path: Path, records: list[dict[str, Any]], case: str
) -> None:
    change, expected = BAD_CASES[case]
    raw = change if isinstance(change, str) else json.dumps(change(records[BAD_LINE - 1]))
    path = write_jsonl(tmp_path / "bad.jsonl", records, {BAD_LINE: raw})
    settings = local_settings(tmp_path / "store")

    with pytest.raises(IngestError) as caught:
        await import_jsonl(path, settings, progress=False, batch_size=10)

    message = str(caught.value)
    assert message.startswith(f"{path}:{BAD_LINE}: "), message
    assert re.search(expected, message.removeprefix(f"{path}:{BAD_LINE}: ")), message
    assert await store_counts(settings) == {}  # no collection was even created


def test_line_numbers_count_blank_lines(tmp_path: Path, records: list[dict[str, Any]]) -> None:
    path = tmp_path / "gaps.jsonl"
    path.write_text(f"{json.dumps(records[0])}\n\n\n{{oops\n", encoding="utf-8")
    with pytest.raises(IngestError, match=rf"^{re.escape(str(path))}:4: not valid JSON"):
        validate_jsonl(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="no such file"):
        validate_jsonl(tmp_path / "absent.jsonl")


# --- a store another process holds -----------------------------------------------------------------------


async def test_locked_folder_is_a_clear_error_and_nothing_is_written(
    tmp_path: Path, jsonl_file: Path
) -> None:
    settings = local_settings(tmp_path / "store")
    holder = open_vector_store(settings)
    try:
        await holder.ensure_collections(IndexSchema(EMBEDDING_DIM), COLLECTIONS)
        with pytest.raises(IngestError, match="is in use by another process"):
            await import_jsonl(jsonl_file, settings, progress=False)
    finally:
        await holder.close()
    assert await store_counts(settings) == dict.fromkeys(COLLECTIONS, 0)


async def test_store_of_another_index_shape_is_refused(tmp_path: Path, jsonl_file: Path) -> None:
    settings = local_settings(tmp_path / "store")
    other = open_vector_store(settings)
    try:
        await other.ensure_collections(IndexSchema(16), ["embedded_posts"])
    finally:
        await other.close()
    with pytest.raises(IngestError, match="built with another index shape"):
        await import_jsonl(jsonl_file, settings, progress=False)
    assert await store_counts(settings) == {"embedded_posts": 0}


# --- the command line ----------------------------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The CLI reads settings from the environment (and a `.env` in the working directory: none here)."""
    store = tmp_path / "cli-store"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QDRANT_PATH", str(store))
    monkeypatch.setenv("QDRANT_URL", "")
    yield store


def test_cli_imports_jsonl_and_exits_0(
    cli_env: Path, jsonl_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ingest", "--no-progress", "--batch-size", "50", str(jsonl_file)]) == 0
    out, err = capsys.readouterr()
    assert "imported chunks.jsonl: 200 points (200 new, 200 stored) into embedded_articles" in out
    assert "100 points (100 new, 100 stored) into embedded_posts" in out
    assert err == ""

    assert main(["ingest", "--no-progress", str(jsonl_file)]) == 0
    assert "200 points (0 new, 200 stored) into embedded_articles" in capsys.readouterr().out
    assert asyncio.run(store_counts(local_settings(cli_env))) == {**dict.fromkeys(COLLECTIONS, 0), **SPLIT}


def test_cli_bad_line_exits_2(
    cli_env: Path, tmp_path: Path, records: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write_jsonl(
        tmp_path / "bad.jsonl", records, {12: json.dumps({**records[11], "vector": [1.0] * 383})}
    )
    assert main(["ingest", "--no-progress", str(bad)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"error: {bad}:12: vector has 383 values, expected 384\n"
    assert not cli_env.exists()


def test_cli_every_jsonl_is_validated_before_any_is_written(
    cli_env: Path,
    tmp_path: Path,
    jsonl_file: Path,
    records: list[dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = write_jsonl(tmp_path / "later.jsonl", records[:3], {3: "not json"})
    assert main(["ingest", "--no-progress", str(jsonl_file), str(bad)]) == 2
    assert f"{bad}:3: not valid JSON" in capsys.readouterr().err
    assert not cli_env.exists()


def test_cli_bad_export_with_jsonl_writes_nothing(
    cli_env: Path, tmp_path: Path, jsonl_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = tmp_path / "articles.json"
    export.write_text('[{"_id": "a"}]', encoding="utf-8")
    assert main(["ingest", "--no-progress", str(jsonl_file), str(export)]) == 2
    assert "articles.json" in capsys.readouterr().err
    assert asyncio.run(store_counts(local_settings(cli_env))) == {}


def test_cli_locked_folder_exits_2(
    cli_env: Path, jsonl_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = local_settings(cli_env)

    async def hold_and_import() -> int:
        holder = open_vector_store(settings)
        try:
            await holder.ensure_collections(IndexSchema(EMBEDDING_DIM), COLLECTIONS)
            # main runs its own event loop: call it from a worker thread while this one holds the folder
            return await asyncio.to_thread(main, ["ingest", "--no-progress", str(jsonl_file)])
        finally:
            await holder.close()

    assert asyncio.run(hold_and_import()) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: the vector store folder {cli_env} is in use by another process")
    assert asyncio.run(store_counts(settings)) == dict.fromkeys(COLLECTIONS, 0)


def test_cli_rejects_a_zero_batch_size(cli_env: Path, jsonl_file: Path) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["ingest", "--batch-size", "0", str(jsonl_file)])
    assert exited.value.code == 2


# --- a Qdrant server (the REST emulator) ------------------------------------------------------------------


@pytest.fixture
def qdrant_url() -> Iterator[str]:
    thread = QdrantEmulatorThread()
    url = thread.start()
    yield url
    thread.stop()


def remote_settings(url: str) -> Settings:
    return Settings(_env_file=None, qdrant_url=url, qdrant_api_key=None, qdrant_timeout_s=5)


async def test_import_into_a_qdrant_server(
    qdrant_url: str, jsonl_file: Path, records: list[dict[str, Any]]
) -> None:
    settings = remote_settings(qdrant_url)
    report = await import_jsonl(jsonl_file, settings, progress=False, batch_size=128)
    assert {c.collection: (c.read, c.new, c.count_after) for c in report.collections} == {
        name: (n, n, n) for name, n in SPLIT.items()
    }
    again = await import_jsonl(jsonl_file, settings, progress=False)
    assert again.new == 0
    assert await store_counts(settings) == {**dict.fromkeys(COLLECTIONS, 0), **SPLIT}

    probe = records[210]  # an embedded_posts chunk by AUTHORS[210 % 3]
    results = await search(settings, [unit(probe["vector"])], author=None, limit=3)
    top = hits_of(results["embedded_posts"])[0][0]
    assert (top.id, top.payload) == (probe["id"], probe["payload"])
    assert top.score == pytest.approx(1.0, abs=1e-4)
    other = AUTHORS[(210 + 1) % 3]
    filtered = await search(settings, [unit(probe["vector"])], author=other, limit=5)
    for collection in SPLIT:
        hits = hits_of(filtered[collection])[0]
        assert len(hits) == 5
        assert all(hit.payload["author_full_name"] == other for hit in hits)
    await assert_bm25_finds(settings, "kafka", per_collection={"embedded_articles": 40, "embedded_posts": 20})


async def test_unreachable_server_is_a_clear_error(tmp_path: Path, jsonl_file: Path) -> None:
    thread = QdrantEmulatorThread()
    url = thread.start()
    thread.stop()  # nothing listens there any more
    with pytest.raises(IngestError, match=rf"cannot reach Qdrant at {re.escape(url)}"):
        await import_jsonl(jsonl_file, remote_settings(url), progress=False)
