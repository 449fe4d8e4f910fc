"""The scale benchmark (benchmarks/bench_scale.py) at a tiny size: its pieces, then one whole run.

No timing assertions: what is checked is that the corpus is what `rag-gateway ingest FILE.jsonl` accepts, that
the exact answers are exact, and that every backend's build and measurement report their numbers.
"""

from __future__ import annotations

import json
import re
import statistics
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


def tagged_seed(count: int = 12, dim: int = 32) -> bs.Seed:
    """Seeds whose words name their seed (``s3w7``), in sentences and one long unpunctuated run."""
    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(count, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    payloads = []
    for i in range(count):
        sentences = " ".join(f"s{i}w{j} s{i}x{j} s{i}y{j}." for j in range(40))
        code = " ".join(f"s{i}c{j}" for j in range(150))  # no sentence end: cut into word spans
        payloads.append({"content": f"{sentences} {code}", "title": f"t{i}", "link": "https://example.org/"})
    return bs.Seed(vectors=vectors, payloads=payloads, source="tagged")


def seeds_named(text: str) -> set[int]:
    """The seeds a text's words come from (every word of a tagged seed is ``s<seed><letter><n>``)."""
    words = text.split()
    named = {int(m.group(1)) for m in map(re.compile(r"s(\d+)[wxyc]\d+\.?$").match, words) if m}
    assert len(named) and all(re.match(r"s\d+[wxyc]\d+\.?$", w) for w in words), text
    return named


def test_text_units_are_sentences_and_spans_of_long_ones() -> None:
    text = "One two. Three four five! Six? " + "word " * 200
    units = bs.text_units(text, span=50)
    assert units[:3] == ["One two.", "Three four five!", "Six?"]
    assert all(len(u) <= 50 for u in units[3:]) and " ".join(units[3:]) == ("word " * 200).strip()
    assert bs.text_units("") == [""]


def test_partners_are_the_most_similar_other_seeds() -> None:
    seed = tagged_seed()
    sources = np.arange(2, 12)
    table = bs.partner_table(seed.vectors, sources, 3)
    assert table.shape == (10, 3)
    sims = seed.vectors[sources] @ seed.vectors[sources].T
    for position, row in enumerate(table):
        assert position not in row
        others = [p for p in np.argsort(-sims[position]) if p != position]
        assert list(row) == others[:3]
    assert bs.partner_table(seed.vectors, sources, None).shape == (10, 9)  # any other seed


def test_mixtures_have_2_or_3_distinct_members_and_weights_largest_first() -> None:
    table = bs.partner_table(tagged_seed().vectors, np.arange(12), 4)
    members, weights = bs.mixture_batch(2000, table, np.random.default_rng(4))
    assert np.allclose(weights.sum(axis=1), 1.0)
    assert (np.diff(weights, axis=1) <= 0).all()  # column 0 is the primary
    sizes = (weights > 0).sum(axis=1)
    assert set(sizes) == {2, 3} and 0.4 < (sizes == 2).mean() < 0.6
    for row, w in zip(members, weights, strict=True):
        used = row[w > 0]
        assert len(set(used)) == len(used)  # distinct seeds
        first = next(
            m for m in row if set(used) - {m} <= set(table[m])
        )  # one member's partners hold the rest
        assert first in used
    alone, w1 = bs.mixture_batch(10, np.zeros((1, 0), dtype=np.int64), np.random.default_rng(4))
    assert (alone == 0).all() and (w1[:, 0] == 1.0).all()  # one seed: nothing to mix


@pytest.mark.parametrize("kind", bs.CORPORA)
def test_the_generated_corpus_is_valid_import_input(tmp_path: Path, kind: str) -> None:
    seed = random_seed()
    authors = bs.make_authors(30, {})
    corpus = bs.write_corpus(
        tmp_path, 500, seed, np.arange(10), authors, 0.3, np.random.default_rng(2), batch=128, kind=kind
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
    assert set(np.load(corpus.primary)) <= set(range(10))
    assert corpus.stats["kind"] == kind and corpus.stats["distinct_texts_of"] == 500


def test_a_mixed_chunk_is_made_of_its_seeds(tmp_path: Path) -> None:
    """Its text is sentences (or word spans) of 2-3 seeds, its primary among them, partners of the seed
    drawn first; its vector is unit length and nearest its own seeds."""
    seed = tagged_seed()
    sources = np.arange(10)
    table = bs.partner_table(seed.vectors, sources, 4)
    authors = bs.make_authors(5, {})
    corpus = bs.write_corpus(
        tmp_path, 300, seed, sources, authors, 0.05, np.random.default_rng(6), batch=64, mix_neighbours=4
    )
    vectors, primary = np.load(corpus.vectors), np.load(corpus.primary)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    sizes = []
    for line, vector, first in zip(corpus.jsonl.read_bytes().splitlines(), vectors, primary, strict=True):
        content = json.loads(line)["payload"]["content"]
        assert 0 < len(content) <= bs.CONTENT_CHARS
        named = seeds_named(content)
        sizes.append(len(named))
        assert first in named
        # the seed drawn first (not always the primary; its text may be too short to show) had the others
        # among its partners
        assert any(named - {m} <= set(sources[table[m]]) for m in range(len(sources)))
        # noise 0.05 keeps a chunk far nearer its own seeds than any other
        best = np.argsort(-(seed.vectors[sources] @ vector))[: len(named)]
        assert int(sources[best[0]]) in named
    assert set(sizes) <= {1, 2, 3} and statistics.fmean(sizes) > 2.0  # a tiny weight may take no text


def test_corpora_are_deterministic_and_mixtures_have_no_near_copies(tmp_path: Path) -> None:
    seed = random_seed()
    authors = bs.make_authors(10, {})

    def corpus(folder: str, kind: str, noise: float) -> bs.CorpusFiles:
        rng = np.random.default_rng(7)
        return bs.write_corpus(tmp_path / folder, 400, seed, np.arange(10), authors, noise, rng, kind=kind)

    first, again = corpus("a", "mixtures", 0.3), corpus("b", "mixtures", 0.3)
    assert first.jsonl.read_bytes() == again.jsonl.read_bytes()
    assert (np.load(first.vectors) == np.load(again.vectors)).all()

    def nearest_other(files: bs.CorpusFiles) -> np.ndarray:
        vectors = np.load(files.vectors)
        cos = vectors @ vectors.T
        np.fill_diagonal(cos, -1.0)
        return cos.max(axis=1)

    # without noise, copies are exact duplicates; mixtures (continuous weights) are not
    assert nearest_other(corpus("c", "noisy-copies", 0.0)).min() > 0.9999
    mixed = corpus("d", "mixtures", 0.0)
    assert np.median(nearest_other(mixed)) < 0.99
    assert mixed.stats["distinct_texts"] == 400
    assert corpus("e", "noisy-copies", 0.3).stats["distinct_texts"] <= 10


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
    """Seed embedding, corpus, ground truth, the edge store built and measured in child processes, /rag
    through a gateway serving that store, report."""
    output = tmp_path / "results.json"
    argv = ["--sizes", "500", "--quantization-ab", "0", "--local-max", "0"]
    argv += ["--rag-levels", "1", "--rag-duration", "2"]
    argv += ["--requests", "20", "--recall-queries", "20", "--authors", "40"]
    argv += ["--ef-sweep", "16", "--hnsw-m", "12", "--payload-memory", "cold"]
    argv += ["--seed-paths", *map(str, sorted(SAMPLE_CORPUS.glob("*.json")))]
    argv += ["--workdir", str(tmp_path / "work"), "--output", str(output)]
    assert bs.main(argv) == 0

    results = json.loads(output.read_text())
    assert results["machine"]["cores"] >= 1
    assert results["seed"]["chunks"] > 10
    [size] = results["sizes"]
    assert size["n"] == 500 and "local_skipped" in size
    assert results["corpus"] == "mixtures" and size["corpus"]["kind"] == "mixtures"
    assert size["corpus"]["distinct_texts"] == 500
    assert 0 < size["corpus"]["mean_cos_top10"] <= size["corpus"]["mean_cos_top1"] <= 1
    assert 0 < size["corpus"]["point_cos_10th"] <= size["corpus"]["point_cos_nn"] <= 1
    assert 0 <= size["corpus"]["top10_same_primary"] <= 1 and size["corpus"]["bm25_term_share"] > 0
    [edge] = size["backends"]
    build, serve = edge["build"], edge["serve"]
    assert build["done"] and serve["done"]
    assert build["points"] == 500
    assert build["import_rate"] > 0 and build["disk_mb"] > 0 and build["peak_rss_mb"] > 0
    assert serve["search"]["n"] == serve["search_filtered"]["n"] == serve["search_dense"]["n"] == 20
    assert serve["search_errors"] == 0
    assert serve["rerank_scores"]["n"] == 20  # the reranker's dense_scores, timed after each search
    assert serve["search_question_bm25"]["n"] in (0, 20)
    # the gateway served the store that was built (not an empty folder of the same name)
    rag = edge["rag"]
    assert "error" not in rag, rag.get("error")
    [level] = rag["levels"]
    assert level["concurrency"] == 1 and level["rps"] > 0 and level["errors"] == 0
    # the shards were created with the overrides, and the engine recorded them
    assert results["engine_overrides"] == {"hnsw_m": 12, "payload_memory": "cold"}
    assert build["store_config"] == serve["store_config"]
    assert serve["store_config"]["hnsw_m"] == 12 and serve["store_config"]["payload_memory"] == "cold"
    assert serve["store_config"]["hnsw_ef_construct"] == 100  # not overridden: the store's own
    assert serve["serving_rss_anon_mb"] > 0 and serve["serving_rss_file_mb"] > 0
    assert serve["serving_rss_by_file"] and serve["search_sparse"]["n"] in (0, 20)
    [swept] = serve["ef_sweep"]
    assert swept["vector_search_ef"] == 16 and swept["search"]["n"] == 20
    # the graph is searched at a breadth of 16 for 10 hits (times the rescoring's oversampling): close to
    # the exact answer, not always equal to it
    assert 0.95 <= swept["recall"] <= 1.0
    # as the pipeline asks: 3 dense vectors, plus 3 BM25 queries in hybrid mode
    assert serve["queries_per_request"] == (6 if serve["retrieval_mode"] == "hybrid" else 3)
    assert 0 < serve["authors"] <= 40
    # an author's few points sit below the engine's full-scan threshold: the filtered search is exact; the
    # unfiltered one walks the HNSW graph (an indexed segment), near the exact answer
    assert serve["recall_filtered"] == pytest.approx(1.0)
    assert 0.95 <= serve["recall"] <= 1.0
    assert "| 500 | edge (int8) |" in results["table"]
    assert not list((tmp_path / "work").iterdir())  # nothing left behind without --keep


def test_a_kept_store_is_measured_again_under_other_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--keep, then --remeasure with common BM25 terms left out even at this size: the same searches,
    now without the terms the sample found common."""
    work = tmp_path / "work"
    argv = ["--sizes", "300", "--quantization-ab", "0", "--local-max", "0", "--skip-rag", "--keep"]
    argv += ["--requests", "10", "--recall-queries", "10", "--authors", "20"]
    argv += ["--seed-paths", *map(str, sorted(SAMPLE_CORPUS.glob("*.json")))]
    argv += ["--workdir", str(work), "--output", str(tmp_path / "results.json")]
    assert bs.main(argv) == 0
    [run] = list(work.iterdir())
    first = json.loads((tmp_path / "results.json").read_text())["sizes"][0]["backends"][0]["serve"]
    assert first["common_terms"] == {}  # 300 chunks: below HYBRID_COMMON_TERM_MIN_POINTS

    monkeypatch.setenv("HYBRID_COMMON_TERM_MIN_POINTS", "0")
    monkeypatch.setenv("HYBRID_COMMON_TERM_SHARE", "0.3")
    again = tmp_path / "again.json"
    assert bs.main(["--remeasure", str(run / "n300"), "--output", str(again)]) == 0
    results = json.loads(again.read_text())
    [size] = results["sizes"]
    serve = size["backends"][0]["serve"]
    assert size["n"] == 300 and serve["common_term_share"] == 0.3
    assert serve["common_terms"]["embedded_articles"] > 0
    assert serve["search"]["n"] == serve["search_question_bm25_all_terms"]["n"] == 10
    assert serve["recall"] == pytest.approx(first["recall"])  # the same store and queries
    assert "| 300 | edge (int8) |" in results["table"]
    assert bs.main(["--remeasure", str(tmp_path), "--output", str(again)]) == 2  # no kept store there
