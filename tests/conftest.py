"""Shared fixtures: paths, settings that point at the offline model, and (later) live servers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rag_gateway.settings import Settings  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[1]
MODEL_DIR = PROJECT_ROOT / "models" / "all-MiniLM-L6-v2"
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def model_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings with the offline model and an empty local Qdrant folder, ignoring any `.env`."""
    if not (MODEL_DIR / "tokenizer.json").exists():
        pytest.fail(f"offline model files missing in {MODEL_DIR}: run `make install`")
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        embedding_tokenizer_dir=MODEL_DIR,
        qdrant_path=tmp_path_factory.mktemp("qdrant-empty"),
    )
