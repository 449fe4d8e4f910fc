"""``rag-gateway migrate-store OLD NEW``: a qdrant-client local-mode folder into the embedded Qdrant engine."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from rag_gateway.cli.main import main
from rag_gateway.cli.migrate import MigrateError, migrate_store
from rag_gateway.config import Settings
from rag_gateway.rag.retrieval.schema import IndexSchema
from rag_gateway.rag.retrieval.sparse import SparseEncoder
from rag_gateway.rag.retrieval.stores import StoreUnavailableError, local, open_vector_store
from rag_gateway.rag.retrieval.stores.edge import LAYOUT_FILE, check_folder

DIM = 384
AUTHORS = ("Ada Quill", "Ben Marsh")


def local_settings(path: Path) -> Settings:
    return Settings(_env_file=None, qdrant_path=path, qdrant_url=None)


def make_points(collection: str, n: int) -> list[models.PointStruct]:
    rng = np.random.default_rng(len(collection) * 31 + n)
    points = []
    for i in range(n):
        vector = rng.standard_normal(DIM)
        points.append(
            models.PointStruct(
                id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"old/{collection}/{i}")),
                vector=(vector / np.linalg.norm(vector)).tolist(),  # the old gateway stored unit vectors
                payload={
                    "content": f"chunk {i} on {'kafka streams' if i % 4 == 0 else 'vector search'}",
                    "title": None if i == 0 else f"Title {i}",
                    "author_full_name": AUTHORS[i % 2],
                    "author_id": f"author-{i % 2}",
                    "chunk_index": i,
                    "tags": ["a", "b"][: i % 3],
                },
            )
        )
    return points


def make_old_folder(
    path: Path, points: dict[str, int], distance: models.Distance = models.Distance.DOT
) -> dict[str, list[models.PointStruct]]:
    """A store as earlier versions wrote it: qdrant-client local mode, one unnamed vector per point."""
    client = QdrantClient(path=str(path))
    data = {}
    try:
        for collection, n in points.items():
            client.create_collection(
                collection, vectors_config=models.VectorParams(size=DIM, distance=distance)
            )
            data[collection] = make_points(collection, n)
            if n:
                client.upsert(collection, data[collection])
    finally:
        client.close()
    return data


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file's content hash and modification time."""
    return {
        str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


async def read_new(path: Path, data: dict[str, list[models.PointStruct]]) -> dict[str, Any]:
    """Counts, the ids found, and the top hit per stored vector, read through the gateway's store."""
    store = open_vector_store(local_settings(path))
    try:
        found: dict[str, Any] = {"collections": await store.existing_collections()}
        for collection, points in data.items():
            ids = [str(p.id) for p in points]
            found[collection] = {
                "count": await store.count(collection),
                "ids": await store.existing_ids(collection, ids),
            }
            if points:
                queries = [np.asarray(p.vector, dtype=np.float32) for p in points]
                result = (await store.search_collections([collection], queries, None, 1))[collection]
                assert isinstance(result, list), result
                found[collection]["top"] = [
                    (hits[0].id, dict(hits[0].payload), hits[0].score) for hits in result
                ]
                by_author = (await store.search_collections([collection], queries[:1], AUTHORS[1], 50))[
                    collection
                ]
                assert isinstance(by_author, list), by_author
                found[collection]["authors"] = {hit.payload["author_full_name"] for hit in by_author[0]}
                keyword = (
                    await store.search_collections([collection], [SparseEncoder().query("kafka")], None, 100)
                )[collection]
                assert isinstance(keyword, list), keyword
                found[collection]["bm25"] = {hit.id for hit in keyword[0]}
        return found
    finally:
        await store.close()


@pytest.fixture
def old_folder(tmp_path: Path) -> Iterator[tuple[Path, dict[str, list[models.PointStruct]]]]:
    path = tmp_path / "old"
    data = make_old_folder(path, {"embedded_articles": 7, "embedded_posts": 20, "embedded_repositories": 0})
    yield path, data


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no `.env` here
    monkeypatch.delenv("QDRANT_URL", raising=False)
    monkeypatch.delenv("QDRANT_PATH", raising=False)


# --- the happy path ------------------------------------------------------------------------------------------


def test_migrate_copies_every_point_and_leaves_the_old_folder_alone(
    tmp_path: Path, cli_env: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    old = tmp_path / "old"
    data = make_old_folder(old, {"embedded_articles": 7, "embedded_posts": 60, "embedded_repositories": 0})
    monkeypatch.setattr(local, "SCROLL_PAGE", 16)  # several pages per collection (local mode writes slowly)
    new = tmp_path / "new"
    before = snapshot(old)

    assert main(["migrate-store", "--no-progress", str(old), str(new)]) == 0

    out, err = capsys.readouterr()
    assert err == ""
    assert f"migrated {old} -> {new}: " in out
    assert "7 points into embedded_articles (7 stored)" in out
    assert "60 points into embedded_posts (60 stored)" in out
    assert "0 points into embedded_repositories (0 stored)" in out
    assert f"QDRANT_PATH={new}" in out
    assert snapshot(old) == before

    found = asyncio.run(read_new(new, data))
    assert found["collections"] == set(data)
    for collection, points in data.items():
        assert found[collection]["count"] == len(points)
        assert found[collection]["ids"] == {str(p.id) for p in points}
        if points:
            assert [(hit_id, payload) for hit_id, payload, _ in found[collection]["top"]] == [
                (str(p.id), p.payload) for p in points
            ]
            assert all(score == pytest.approx(1.0, abs=1e-4) for _, _, score in found[collection]["top"])
            assert found[collection]["authors"] == {AUTHORS[1]}  # the author index works on migrated data
            # the old store had no BM25 vectors: the migration computed them from the payloads
            assert found[collection]["bm25"] == {
                str(p.id) for p in points if "kafka" in (p.payload or {})["content"]
            }

    # the gateway refuses the old folder and names the command; the new one opens
    with pytest.raises(StoreUnavailableError, match=rf"rag-gateway migrate-store {old} NEW_FOLDER"):
        check_folder(old)
    with pytest.raises(StoreUnavailableError, match="migrate-store"):
        open_vector_store(local_settings(old))
    check_folder(new)


async def test_cosine_collection_and_the_report(tmp_path: Path) -> None:
    old = tmp_path / "old"
    data = make_old_folder(old, {"embedded_articles": 3}, models.Distance.COSINE)
    report = await migrate_store(old, tmp_path / "new", local_settings(tmp_path / "ignored"), progress=False)
    assert [(c.collection, c.points, c.stored) for c in report.collections] == [("embedded_articles", 3, 3)]
    assert report.points == 3
    found = await read_new(tmp_path / "new", data)
    assert [hit_id for hit_id, _, _ in found["embedded_articles"]["top"]] == [
        str(p.id) for p in data["embedded_articles"]
    ]


def test_migrate_into_an_existing_empty_folder(
    tmp_path: Path, old_folder: tuple[Path, dict[str, list[models.PointStruct]]], cli_env: None
) -> None:
    old, _ = old_folder
    new = tmp_path / "empty"
    new.mkdir()
    assert main(["migrate-store", "--no-progress", str(old), str(new)]) == 0
    assert (new / "embedded_posts").is_dir()


# --- refusals: nothing changes ---------------------------------------------------------------------------


def test_refuses_a_new_folder_that_holds_data(
    tmp_path: Path,
    old_folder: tuple[Path, dict[str, list[models.PointStruct]]],
    cli_env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    old, _ = old_folder
    new = tmp_path / "busy"
    new.mkdir()
    (new / "notes.txt").write_text("mine", encoding="utf-8")
    before = snapshot(old)

    assert main(["migrate-store", "--no-progress", str(old), str(new)]) == 2

    assert (
        capsys.readouterr().err
        == f"error: {new} already holds data: choose a new or empty folder (nothing was changed)\n"
    )
    assert [p.name for p in new.iterdir()] == ["notes.txt"]
    assert snapshot(old) == before


def test_refuses_a_migrated_store_as_target(
    tmp_path: Path,
    old_folder: tuple[Path, dict[str, list[models.PointStruct]]],
    cli_env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    old, _ = old_folder
    new = tmp_path / "new"
    assert main(["migrate-store", "--no-progress", str(old), str(new)]) == 0
    capsys.readouterr()
    assert main(["migrate-store", "--no-progress", str(old), str(new)]) == 2
    assert "already holds data" in capsys.readouterr().err


async def test_an_engine_store_of_an_older_shape_is_rebuilt_in_the_current_one(
    tmp_path: Path, old_folder: tuple[Path, dict[str, list[models.PointStruct]]]
) -> None:
    old, data = old_folder
    current = tmp_path / "current"
    await migrate_store(old, current, local_settings(current), progress=False)
    layout = json.loads((current / LAYOUT_FILE).read_text())
    for schema in layout["schemas"].values():
        schema["bm25"]["k"] = 0.9  # as if built with other BM25 parameters
    (current / LAYOUT_FILE).write_text(json.dumps(layout))
    refused = open_vector_store(local_settings(current))
    try:
        with pytest.raises(StoreUnavailableError, match="migrate-store"):
            await refused.check_schema(IndexSchema(DIM))
    finally:
        await refused.close()

    rebuilt = tmp_path / "rebuilt"
    report = await migrate_store(current, rebuilt, local_settings(rebuilt), progress=False)
    assert report.points == sum(len(points) for points in data.values())
    store = open_vector_store(local_settings(rebuilt))
    try:
        await store.check_schema(IndexSchema(DIM))  # accepted: the current shape
    finally:
        await store.close()
    found = await read_new(rebuilt, data)
    for collection, points in data.items():
        assert found[collection]["ids"] == {str(p.id) for p in points}


@pytest.mark.parametrize("kind", ["missing", "not local mode", "same folder", "inside the old one"])
def test_refuses_bad_folders(
    tmp_path: Path,
    old_folder: tuple[Path, dict[str, list[models.PointStruct]]],
    cli_env: None,
    capsys: pytest.CaptureFixture[str],
    kind: str,
) -> None:
    old, _ = old_folder
    plain = tmp_path / "plain"
    plain.mkdir()
    source, target, message = {
        "missing": (tmp_path / "absent", tmp_path / "new", "no such folder"),
        "not local mode": (plain, tmp_path / "new", "is not a qdrant-client local-mode store"),
        "same folder": (old, old, "overlap"),
        "inside the old one": (old, old / "new", "overlap"),
    }[kind]
    before = snapshot(old)
    assert main(["migrate-store", "--no-progress", str(source), str(target)]) == 2
    assert message in capsys.readouterr().err
    assert snapshot(old) == before
    assert not (tmp_path / "new").exists()
    assert not (old / "new").exists()


async def test_refuses_named_vectors_before_writing(tmp_path: Path) -> None:
    old = tmp_path / "old"
    client = QdrantClient(path=str(old))
    client.create_collection(
        "embedded_articles",
        vectors_config={"text": models.VectorParams(size=4, distance=models.Distance.DOT)},
    )
    client.close()
    with pytest.raises(MigrateError, match="does not hold one unnamed vector per point"):
        await migrate_store(old, tmp_path / "new", local_settings(tmp_path / "new"), progress=False)
    assert not (tmp_path / "new").exists()


async def test_old_folder_in_use_is_a_clear_error_and_new_is_removed(
    tmp_path: Path, old_folder: tuple[Path, dict[str, list[models.PointStruct]]]
) -> None:
    old, _ = old_folder
    new = tmp_path / "new"
    holder = QdrantClient(path=str(old))  # an earlier gateway still running on it
    try:
        with pytest.raises(MigrateError, match=rf"cannot read {old}: .*already accessed"):
            await migrate_store(old, new, local_settings(new), progress=False)
    finally:
        holder.close()
    assert not new.exists()  # what the failed run wrote is gone, so the command can simply be run again
    assert (await migrate_store(old, new, local_settings(new), progress=False)).points == 27
