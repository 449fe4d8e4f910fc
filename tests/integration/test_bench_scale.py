"""The scale benchmark (benchmarks/bench_scale.py) at a tiny size: its pieces, then one whole run.

No timing assertions: what is checked is that the corpus is what `rag-gateway ingest FILE.jsonl` accepts, that
the exact answers are exact, and that every backend's build and measurement report their numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from benchmarks import bench_scale as bs

from rag_gateway.ingest.jsonl import validate_jsonl

SAMPLE_CORPUS = Path(__file__).resolve().parents[2] / "src" / "rag_gateway" / "sample_corpus"


def random_seed(count: int = 12, dim: int = bs.DIM) -> bs.Seed:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(count, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    payloads = [
        {
            "content": f"chunk {i} " * 200,
            "title": f"title {i}",
            "link": f"https://example.org/{i}",
            "platform": "blog",
        }
        for i in range(count)
    ]
    return bs.Seed(vectors=vectors, payloads=payloads, source="random")


def test_authors_follow_a_zipf_law_with_the_real_ones_first() -> None:
    authors = bs.make_authors(1500, {"Real Person": "real-id"})
    assert authors.names[0] == "Real Person" and authors.ids[0] == "real-id"
    assert len(set(authors.names)) == len(authors.names) == 1500
    assert authors.weights.sum() == pytest.approx(1.0)
    assert authors.weights[0] / authors.weights[9] == pytest.approx(10.0)


def test_point_ids_map_back_to_rows() -> None:
    for index in (0, 1, 499, 2**32 - 1):
        assert bs.point_index(bs.point_id(index)) == index
    assert bs.point_index("00000000-0000-0000-0000-000000000001") == -1


def test_exact_top_k_matches_a_full_sort_with_and_without_an_author() -> None:
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(1000, 16)).astype(np.float32)
    queries = rng.normal(size=(7, 16)).astype(np.float32)
    authors = rng.integers(0, 50, 1000)
    query_authors = authors[rng.integers(0, 1000, 7)]
    got = bs.exact_top_k(vectors, queries, 10, block=128)  # several blocks: the merge is exercised
    want = np.argsort(-(vectors @ queries.T), axis=0)[:10].T
    assert (got == want).all()
    filtered = bs.exact_top_k(vectors, queries, 10, authors, query_authors, block=128)
    for row, query, author in zip(filtered, queries, query_authors, strict=True):
        rows = np.flatnonzero(authors == author)
        best = rows[np.argsort(-(vectors[rows] @ query))][:10]
        assert list(row[: len(best)]) == list(best)
        assert (row[len(best) :] == -1).all()


def test_recall_at_k_ignores_padding() -> None:
    truth = np.array([[1, 2, 3, -1], [4, 5, 6, 7]])
    assert bs.recall_at_k([[1, 2, 9], [4, 5, 6, 7]], truth) == pytest.approx((2 / 3 + 1) / 2)


def test_the_generated_corpus_is_valid_import_input(tmp_path: Path) -> None:
    seed = random_seed()
    authors = bs.make_authors(30, {})
    corpus = bs.write_corpus(
        tmp_path, 500, seed, np.arange(10), authors, 0.3, np.random.default_rng(2), batch=128
    )
    checked = validate_jsonl(corpus.jsonl)  # the importer's own validation pass
    assert checked.points == {bs.COLLECTION: 500}
    lines = corpus.jsonl.read_bytes().splitlines()
    first = json.loads(lines[0])
    assert len(first["payload"]["content"]) <= bs.CONTENT_CHARS
    vectors = np.load(corpus.vectors)
    assert vectors.shape == (500, bs.DIM)
    assert np.allclose(np.asarray(first["vector"], dtype=np.float32), vectors[0])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    assert set(np.load(corpus.authors)) <= set(range(30))


def test_sizes_are_planned_with_the_comparisons_they_get() -> None:
    args = bs.build_parser().parse_args(["--sizes", "1000,20_000,300000", "--quantization-ab", "20000"])
    plans = bs.plan_sizes(args)
    assert [(p.n, p.edge_quantization_ab, p.local) for p in plans] == [
        (1000, False, True),
        (20_000, True, True),
        (300_000, False, False),  # above --local-max (100000)
    ]


def test_local_mode_build_and_measurement_in_children(tmp_path: Path) -> None:
    """qdrant-client local mode writes each point to SQLite with a commit: 40 points keep this short."""
    seed = random_seed()
    authors = bs.make_authors(5, {})
    rng = np.random.default_rng(3)
    corpus = bs.write_corpus(tmp_path, 40, seed, np.arange(8), authors, 0.3, rng)
    workload = bs.make_workload(corpus, seed, np.arange(8, 12), authors, 0.3, rng, n_requests=5, n_recall=5)
    workload.save(tmp_path / "workload.npz")
    result = bs.build_and_measure_local(corpus, tmp_path / "workload.npz", tmp_path, budget_s=120)
    build, serve = result["build"], result["serve"]
    assert build["done"] and build["points_written"] == 40 and build["disk_mb"] > 0
    assert serve["done"] and serve["search"]["n"] == serve["search_filtered"]["n"] == 5
    assert serve["recall"] == serve["recall_filtered"] == pytest.approx(1.0)  # local mode is exact


def test_a_whole_run_at_500_points(tmp_path: Path) -> None:
    """Seed embedding, corpus, ground truth, the edge store built and measured in child processes, report."""
    output = tmp_path / "results.json"
    argv = ["--sizes", "500", "--quantization-ab", "0", "--local-max", "0", "--skip-rag"]
    argv += ["--requests", "20", "--recall-queries", "20", "--authors", "40"]
    argv += ["--seed-paths", *map(str, sorted(SAMPLE_CORPUS.glob("*.json")))]
    argv += ["--workdir", str(tmp_path / "work"), "--output", str(output)]
    assert bs.main(argv) == 0

    results = json.loads(output.read_text())
    assert results["machine"]["cores"] >= 1
    assert results["seed"]["chunks"] > 10
    [size] = results["sizes"]
    assert size["n"] == 500 and "local_skipped" in size
    [edge] = size["backends"]
    build, serve = edge["build"], edge["serve"]
    assert build["done"] and serve["done"]
    assert build["points"] == 500
    assert build["import_rate"] > 0 and build["disk_mb"] > 0 and build["peak_rss_mb"] > 0
    assert serve["search"]["n"] == serve["search_filtered"]["n"] == serve["search_dense"]["n"] == 20
    assert serve["search_errors"] == 0
    # as the pipeline asks: 3 dense vectors, plus 3 BM25 queries in hybrid mode
    assert serve["queries_per_request"] == (6 if serve["retrieval_mode"] == "hybrid" else 3)
    assert 0 < serve["authors"] <= 40
    # 500 points sit below the engine's full-scan threshold: the search is exact
    assert serve["recall"] == serve["recall_filtered"] == pytest.approx(1.0)
    assert "| 500 | edge (int8) |" in results["table"]
    assert not list((tmp_path / "work").iterdir())  # nothing left behind without --keep
