"""The one aioboto3 ``sagemaker-runtime`` client, built in the lifespan, and the AWS credentials rule.

Retry ownership: botocore makes exactly one attempt (``total_max_attempts=1``); every retry belongs to the
gateway's per-upstream guard (`rag_gateway.resilience.guard`). botocore's default would also retry read
timeouts, and a retried invocation regenerates a whole answer on the GPU.
"""

from __future__ import annotations

import platform
from contextlib import AsyncExitStack
from typing import Any

import aioboto3
import aiobotocore
import botocore
from botocore.config import Config
from pydantic import SecretStr

from rag_gateway import __version__
from rag_gateway.config import Settings


def gateway_user_agent() -> str:
    """The User-Agent of the SageMaker calls, fixed at start-up.

    botocore rebuilds its own header twice per call from about 30 sanitised parts, a measurable share of
    the call's CPU on the event loop (docs/performance.md). A fixed string names the same software; what
    it leaves out are the SDK's per-request usage metrics.
    """
    return (
        f"rag-gateway/{__version__} aiobotocore/{aiobotocore.__version__} "
        f"botocore/{botocore.__version__} Python/{platform.python_version()} {platform.system()}"
    )


def sagemaker_botocore_config(settings: Settings) -> Config:
    return Config(
        user_agent=gateway_user_agent(),
        connect_timeout=settings.sagemaker_connect_timeout_s,
        read_timeout=settings.sagemaker_read_timeout_s,
        max_pool_connections=settings.sagemaker_max_pool_connections,
        retries={"mode": "standard", "total_max_attempts": 1},
        tcp_keepalive=True,
    )


def aws_credentials(access_key: SecretStr | None, secret_key: SecretStr | None) -> dict[str, str]:
    """The Handbook's AWS_ACCESS_KEY/AWS_SECRET_KEY as boto keyword arguments when both are set; else none,
    so botocore uses its own credential chain (AWS_ACCESS_KEY_ID, profiles, instance and IRSA roles)."""
    if access_key and secret_key:
        return {
            "aws_access_key_id": access_key.get_secret_value(),
            "aws_secret_access_key": secret_key.get_secret_value(),
        }
    return {}


def aws_session(region: str, access_key: SecretStr | None, secret_key: SecretStr | None) -> aioboto3.Session:
    """An aioboto3 session with ``aws_credentials``."""
    return aioboto3.Session(region_name=region, **aws_credentials(access_key, secret_key))


async def make_sagemaker_client(settings: Settings, stack: AsyncExitStack) -> Any:
    """One aioboto3 ``sagemaker-runtime`` client, closed when ``stack`` unwinds.

    Credentials: the Handbook's ``AWS_ACCESS_KEY``/``AWS_SECRET_KEY`` when set, else botocore's own chain
    (``AWS_ACCESS_KEY_ID``, profiles, instance roles). The endpoint URL:
    ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``, read by botocore itself from the environment, or from `.env`
    through the settings.
    """
    session = aws_session(settings.aws_region, settings.aws_access_key, settings.aws_secret_key)
    client_kwargs: dict[str, Any] = {"config": sagemaker_botocore_config(settings)}
    if settings.aws_endpoint_url_sagemaker_runtime:
        client_kwargs["endpoint_url"] = settings.aws_endpoint_url_sagemaker_runtime
    return await stack.enter_async_context(session.client("sagemaker-runtime", **client_kwargs))
