"""Settings: the Handbook's names carry over, secrets stay secret, bad values are refused at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from rag_gateway.clients.aws import sagemaker_botocore_config
from rag_gateway.config import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_a_handbook_env_file_carries_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = tmp_path / ".env"
    env.write_text(
        "OPENAI_API_KEY=sk-handbook-secret\n"
        "OPENAI_MODEL_ID=gpt-4o-mini\n"
        "SAGEMAKER_ENDPOINT_INFERENCE=twin-endpoint\n"
        "AWS_REGION=us-east-1\n"
        "TEMPERATURE_INFERENCE=0.2\n"
        "TOP_P_INFERENCE=0.8\n"
        "MAX_NEW_TOKENS_INFERENCE=64\n"
        "QDRANT_URL=\n"
    )
    monkeypatch.setenv("AWS_REGION", "eu-west-1")  # the environment wins over the file
    settings = Settings(_env_file=env)  # type: ignore[call-arg]
    assert settings.openai_api_key.get_secret_value() == "sk-handbook-secret"
    assert settings.sagemaker_endpoint_inference == "twin-endpoint"
    assert settings.aws_region == "eu-west-1"
    assert (settings.temperature_inference, settings.top_p_inference, settings.max_new_tokens_inference) == (
        0.2,
        0.8,
        64,
    )
    assert settings.qdrant_url is None and not settings.uses_remote_qdrant
    assert "sk-handbook-secret" not in repr(settings) and "sk-handbook-secret" not in str(
        settings.model_dump()
    )


def test_env_example_is_loadable_and_complete(tmp_path: Path) -> None:
    example = (PROJECT_ROOT / ".env.example").read_text()
    documented = {
        line.split("=", 1)[0] for line in example.splitlines() if "=" in line and not line.startswith("#")
    }
    assert {name.upper() for name in Settings.model_fields} <= documented
    Settings(_env_file=PROJECT_ROOT / ".env.example")  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TEMPERATURE_INFERENCE", "0"),
        ("TOP_P_INFERENCE", "1"),
        ("TOP_P_INFERENCE", "0"),
        ("DEFAULT_TOP_K", "21"),
        ("QUERY_EXPANSION_N", "0"),
    ],
)
def test_values_tgi_or_the_api_would_reject_fail_at_start_up(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=name.lower()):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_sagemaker_client_makes_one_attempt_with_explicit_timeouts() -> None:
    config = sagemaker_botocore_config(Settings(_env_file=None, sagemaker_read_timeout_s=42))  # type: ignore[call-arg]
    assert config.retries == {"mode": "standard", "total_max_attempts": 1}
    assert config.read_timeout == 42
    assert config.connect_timeout == 3.0


def test_embedding_batches_hold_two_requests_unless_told_otherwise() -> None:
    def cap(**values: object) -> int:
        return Settings(_env_file=None, **values).effective_embed_batch_max_texts  # type: ignore[call-arg, arg-type]

    assert cap() == 6  # 3 queries per request by default
    assert cap(query_expansion_n=5) == 10
    assert cap(query_expansion_n=5, embed_batch_max_texts=4) == 4


def test_the_readme_documents_every_setting_and_the_ci_commands() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    missing = [name.upper() for name in Settings.model_fields if f"`{name.upper()}`" not in readme]
    assert missing == []
    ci = (PROJECT_ROOT / ".ci" / "run").read_text()
    for command in ("make lint", "make test"):
        assert command in ci and command in readme
    assert "make demo" in readme and "make smoke" in readme
