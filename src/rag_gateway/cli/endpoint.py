"""``rag-gateway endpoint deploy|delete``: the SageMaker endpoint that serves the LLM twin.

The Handbook's ``poetry poe deploy-inference-endpoint`` / ``delete-inference-endpoint``, with the plain
SageMaker control-plane API (aioboto3 ``sagemaker`` client) instead of the SageMaker SDK:

- ``deploy`` creates the Hugging Face TGI *model*, the *endpoint config* (one production variant) and the
  *endpoint*, then polls ``DescribeEndpoint`` until ``InService``. A resource that already exists is
  reused, so running it again resumes a deploy that was interrupted or is still creating.
- ``delete`` deletes the endpoint, its endpoint config and its model. A resource that is already gone is
  reported as absent, so it is safe to run twice.

Names derive from ``SAGEMAKER_ENDPOINT_INFERENCE`` (``twin`` → model ``twin-model``, config
``twin-config``) unless ``SAGEMAKER_MODEL_NAME`` / ``SAGEMAKER_ENDPOINT_CONFIG_INFERENCE`` name them.
Secrets (``HUGGINGFACE_ACCESS_TOKEN``, ``AWS_SECRET_KEY``) are never printed, not even inside an AWS
error message.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
)
from pydantic import AliasChoices, Field, SecretStr, ValidationError, model_validator

from rag_gateway.clients.aws import aws_session
from rag_gateway.config import EnvSettings

#: The Hugging Face TGI deep-learning container (TGI 2.3.1) that serves the model.
TGI_IMAGE = "huggingface-pytorch-tgi-inference:2.4.0-tgi2.3.1-gpu-py311-cu124-ubuntu22.04"
#: AWS's deep-learning-container registry account; the regions listed below use their own.
DLC_ACCOUNT = "763104351884"
DLC_ACCOUNT_BY_REGION = {
    "af-south-1": "626614931356",
    "ap-east-1": "871362719292",
    "ap-northeast-3": "364406365360",
    "ap-south-2": "772153158452",
    "ap-southeast-3": "907027046896",
    "ap-southeast-4": "457447274322",
    "ca-west-1": "204538143572",
    "cn-north-1": "727897471807",
    "cn-northwest-1": "727897471807",
    "eu-central-2": "380420809688",
    "eu-south-1": "692866216735",
    "eu-south-2": "503227376785",
    "il-central-1": "780543022126",
    "me-central-1": "914824155844",
    "me-south-1": "217643126080",
    "us-gov-east-1": "446045086412",
    "us-gov-west-1": "442386744353",
}

#: SageMaker's rule for model, endpoint-config and endpoint names.
_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_ROLE_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/\S+$")

#: Endpoint states that end by themselves; anything else but InService/Failed needs a person.
_TRANSITIONAL = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack"})


def default_image_uri(region: str) -> str:
    """The TGI DLC image URI for ``region`` (set ``SAGEMAKER_IMAGE_URI`` for any other image)."""
    account = DLC_ACCOUNT_BY_REGION.get(region, DLC_ACCOUNT)
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{domain}/{TGI_IMAGE}"


class EndpointSettings(EnvSettings):
    """What ``rag-gateway endpoint`` needs. Field names map to upper-case environment variables."""

    # --- names ------------------------------------------------------------------------------------
    sagemaker_endpoint_inference: str = "twin"
    sagemaker_endpoint_config_inference: str | None = Field(
        None, description="Handbook name; default: <endpoint>-config."
    )
    sagemaker_model_name: str | None = Field(None, description="Default: <endpoint>-model.")

    # --- AWS --------------------------------------------------------------------------------------
    aws_region: str = "eu-central-1"
    aws_access_key: SecretStr | None = Field(None, description="Handbook name; AWS_ACCESS_KEY_ID also works.")
    aws_secret_key: SecretStr | None = Field(None, description="Handbook name; AWS_SECRET_ACCESS_KEY too.")
    aws_arn_role: str | None = Field(None, description="Handbook name: the SageMaker execution role ARN.")
    aws_endpoint_url_sagemaker: str | None = Field(
        None, description="botocore's own variable for the control plane; also honoured from .env."
    )

    # --- the model and its container -------------------------------------------------------------------
    hf_model_id: str = "mlabonne/TwinLlama-3.1-8B-DPO"
    huggingface_access_token: SecretStr | None = Field(None, description="For gated or private models.")
    hf_model_quantize: str | None = Field(None, description="TGI's --quantize, e.g. bitsandbytes.")
    sagemaker_image_uri: str | None = Field(None, description="Default: the TGI DLC in AWS_REGION.")
    gpu_instance_type: str = "ml.g5.2xlarge"
    sm_num_gpus: int = Field(1, ge=1)
    max_input_length: int = Field(2048, ge=1)
    max_total_tokens: int = Field(4096, ge=2)
    max_batch_total_tokens: int = Field(4096, ge=2)
    initial_instance_count: int = Field(
        1, ge=1, validation_alias=AliasChoices("initial_instance_count", "copies")
    )
    container_startup_health_check_timeout_s: int = Field(900, ge=60, le=3600)

    # --- waiting for InService --------------------------------------------------------------------------
    endpoint_wait_timeout_s: float = Field(1800.0, gt=0)
    endpoint_poll_interval_s: float = Field(30.0, ge=0)

    @model_validator(mode="after")
    def _check(self) -> EndpointSettings:
        for setting, name in (
            ("SAGEMAKER_ENDPOINT_INFERENCE", self.endpoint_name),
            ("SAGEMAKER_ENDPOINT_CONFIG_INFERENCE", self.endpoint_config_name),
            ("SAGEMAKER_MODEL_NAME", self.model_name),
        ):
            if not _NAME_RE.match(name):
                raise ValueError(
                    f"{setting}: {name!r} is not a valid SageMaker name "
                    "(letters, digits and hyphens, at most 63 characters)"
                )
        if self.max_input_length >= self.max_total_tokens:
            raise ValueError("MAX_INPUT_LENGTH must be less than MAX_TOTAL_TOKENS (TGI refuses to start)")
        if self.max_batch_total_tokens < self.max_total_tokens:
            raise ValueError(
                "MAX_BATCH_TOTAL_TOKENS must be at least MAX_TOTAL_TOKENS (TGI refuses to start)"
            )
        return self

    @property
    def endpoint_name(self) -> str:
        return self.sagemaker_endpoint_inference

    @property
    def endpoint_config_name(self) -> str:
        return self.sagemaker_endpoint_config_inference or f"{self.sagemaker_endpoint_inference}-config"

    @property
    def model_name(self) -> str:
        return self.sagemaker_model_name or f"{self.sagemaker_endpoint_inference}-model"

    @property
    def image_uri(self) -> str:
        return self.sagemaker_image_uri or default_image_uri(self.aws_region)

    def container_environment(self) -> dict[str, str]:
        """The TGI container's environment. Holds the token when one is set: never print it."""
        env = {
            "HF_MODEL_ID": self.hf_model_id,
            "SM_NUM_GPUS": str(self.sm_num_gpus),
            "MAX_INPUT_LENGTH": str(self.max_input_length),
            "MAX_TOTAL_TOKENS": str(self.max_total_tokens),
            "MAX_BATCH_TOTAL_TOKENS": str(self.max_batch_total_tokens),
        }
        if self.hf_model_quantize:
            env["HF_MODEL_QUANTIZE"] = self.hf_model_quantize
        if self.huggingface_access_token:
            env["HUGGING_FACE_HUB_TOKEN"] = self.huggingface_access_token.get_secret_value()
        return env

    def secrets(self) -> list[str]:
        """Values that must never reach the terminal."""
        values = (self.huggingface_access_token, self.aws_secret_key, self.aws_access_key)
        return [v.get_secret_value() for v in values if v is not None and v.get_secret_value()]


# --- reports ----------------------------------------------------------------------------------------------

Outcome = Literal["created", "exists", "deleted", "absent", "deleting"]


@dataclass(frozen=True)
class ResourceResult:
    kind: Literal["model", "endpoint config", "endpoint"]
    name: str
    outcome: Outcome

    def describe(self) -> str:
        if self.outcome == "created":
            return f"created {self.kind} {self.name}"
        if self.outcome == "deleted":
            return f"deleted {self.kind} {self.name}"
        if self.outcome == "exists":
            return f"{self.kind} {self.name} exists, reused"
        if self.outcome == "deleting":
            return f"{self.kind} {self.name} was already being deleted"
        return f"{self.kind} {self.name} was already absent"


@dataclass(frozen=True)
class DeployReport:
    model: ResourceResult
    endpoint_config: ResourceResult
    endpoint: ResourceResult
    status: str
    waited_s: float
    polls: int

    @property
    def resources(self) -> tuple[ResourceResult, ...]:
        return (self.model, self.endpoint_config, self.endpoint)

    def summary(self) -> str:
        steps = "; ".join(r.describe() for r in self.resources)
        return f"{steps}; endpoint {self.endpoint.name} is {self.status} (waited {self.waited_s:.0f} s)"


@dataclass(frozen=True)
class DeleteReport:
    endpoint: ResourceResult
    endpoint_config: ResourceResult
    models: tuple[ResourceResult, ...]

    @property
    def resources(self) -> tuple[ResourceResult, ...]:
        return (self.endpoint, self.endpoint_config, *self.models)

    def summary(self) -> str:
        return "; ".join(r.describe() for r in self.resources)


class EndpointLifecycleError(Exception):
    """A deploy or delete that cannot go on; the message is one line meant for a person."""


Out = Callable[[str], object]
Sleep = Callable[[float], Awaitable[object]]
Clock = Callable[[], float]


# --- AWS errors ---------------------------------------------------------------------------------------

_XML_CODE = re.compile(r"<Code>([^<]+)</Code>")
_XML_MESSAGE = re.compile(r"<Message>([^<]*)</Message>")


def _error_code_and_message(exc: ClientError) -> tuple[str, str]:
    error = exc.response.get("Error", {})
    code, message = str(error.get("Code", "")), str(error.get("Message", ""))
    # A 403 from a gateway or an emulator can come as an XML body that botocore's JSON parser keeps whole.
    if message.lstrip().startswith("<"):
        inner_code, inner_message = _XML_CODE.search(message), _XML_MESSAGE.search(message)
        code = inner_code.group(1) if inner_code else code
        message = inner_message.group(1) if inner_message else ""
    return code, message


def _is_not_found(exc: ClientError) -> bool:
    code, message = _error_code_and_message(exc)
    lowered = message.lower()
    return code == "ResourceNotFound" or (
        code == "ValidationException" and ("could not find" in lowered or "does not exist" in lowered)
    )


def _is_already_existing(exc: ClientError) -> bool:
    code, message = _error_code_and_message(exc)
    return code == "ValidationException" and "already exist" in message.lower()


_ACCESS_DENIED = frozenset({"AccessDenied", "AccessDeniedException"})
_BAD_CREDENTIALS = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
    }
)


def describe_error(exc: BaseException, settings: EndpointSettings | None = None) -> str:
    """One line for a person, with every secret the settings hold masked."""
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        line = (
            "no usable AWS credentials: set AWS_ACCESS_KEY and AWS_SECRET_KEY (or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run with an instance role)"
        )
    elif isinstance(exc, EndpointConnectionError):
        line = f"cannot reach SageMaker: {exc}"
    elif isinstance(exc, ClientError):
        code, message = _error_code_and_message(exc)
        operation = exc.operation_name or "SageMaker call"
        if code in _ACCESS_DENIED:
            line = (
                f"access denied on {operation}: {message} (the caller needs sagemaker permissions and "
                "iam:PassRole on AWS_ARN_ROLE)"
            )
        elif code in _BAD_CREDENTIALS:
            line = f"AWS rejected the credentials on {operation} ({code}): {message}"
        else:
            line = f"{operation} failed ({code}): {message}"
    elif isinstance(exc, ValidationError):
        problems = []
        for error in exc.errors(include_input=False, include_url=False):
            where = ".".join(str(part) for part in error["loc"]).upper()
            problems.append(f"{where}: {error['msg']}" if where else str(error["msg"]))
        line = "invalid settings: " + "; ".join(problems)
    elif isinstance(exc, BotoCoreError | EndpointLifecycleError):
        line = str(exc)
    else:
        line = f"{type(exc).__name__}: {exc}"
    for secret in settings.secrets() if settings is not None else ():
        line = line.replace(secret, "***")
    return " ".join(line.split())


# --- the client ---------------------------------------------------------------------------------------


def control_plane_config() -> Config:
    """Control-plane calls are small; standard retries cover throttling (a retried create that had
    already gone through comes back as "already existing", which deploy treats as reuse)."""
    return Config(connect_timeout=5, read_timeout=60, retries={"mode": "standard", "max_attempts": 4})


@asynccontextmanager
async def sagemaker_client(settings: EndpointSettings) -> AsyncIterator[Any]:
    """One aioboto3 ``sagemaker`` (control-plane) client for one command.

    Credentials: ``AWS_ACCESS_KEY``/``AWS_SECRET_KEY`` when both are set, else botocore's own chain.
    Endpoint: ``AWS_ENDPOINT_URL_SAGEMAKER`` from the settings (so `.env` works too); botocore also reads
    it from the environment by itself.
    """
    session = aws_session(settings.aws_region, settings.aws_access_key, settings.aws_secret_key)
    kwargs: dict[str, Any] = {"config": control_plane_config()}
    if settings.aws_endpoint_url_sagemaker:
        kwargs["endpoint_url"] = settings.aws_endpoint_url_sagemaker
    async with session.client("sagemaker", **kwargs) as client:
        yield client


async def _describe(call: Awaitable[dict[str, Any]]) -> dict[str, Any] | None:
    """The description, or None when SageMaker says the resource does not exist."""
    try:
        return await call
    except ClientError as exc:
        if _is_not_found(exc):
            return None
        raise


async def _delete(call: Awaitable[object]) -> bool:
    """True when deleted, False when it was already gone."""
    try:
        await call
    except ClientError as exc:
        if _is_not_found(exc):
            return False
        raise
    return True


# --- deploy -------------------------------------------------------------------------------------------


async def _ensure_model(settings: EndpointSettings, client: Any, out: Out) -> ResourceResult:
    name = settings.model_name
    existing = await _describe(client.describe_model(ModelName=name))
    if existing is not None:
        container = existing.get("PrimaryContainer", {})
        wanted = {k: v for k, v in settings.container_environment().items() if k != "HUGGING_FACE_HUB_TOKEN"}
        current = {k: v for k, v in container.get("Environment", {}).items() if k != "HUGGING_FACE_HUB_TOKEN"}
        if container.get("Image") != settings.image_uri or current != wanted:
            out(
                f"note: model {name} exists with another image or TGI settings than configured; "
                "run `rag-gateway endpoint delete` then deploy to apply them"
            )
        return ResourceResult("model", name, "exists")
    role = settings.aws_arn_role
    if not role:
        raise EndpointLifecycleError(
            "AWS_ARN_ROLE is not set: it is the SageMaker execution role the endpoint runs as "
            "(arn:aws:iam::<account>:role/<name>)"
        )
    if not _ROLE_RE.match(role):
        raise EndpointLifecycleError(f"AWS_ARN_ROLE {role!r} is not an IAM role ARN")
    out(f"creating model {name}: {settings.hf_model_id} on {settings.image_uri}")
    try:
        await client.create_model(
            ModelName=name,
            ExecutionRoleArn=role,
            PrimaryContainer={"Image": settings.image_uri, "Environment": settings.container_environment()},
        )
    except ClientError as exc:
        if _is_already_existing(exc):
            return ResourceResult("model", name, "exists")
        raise
    return ResourceResult("model", name, "created")


async def _ensure_endpoint_config(settings: EndpointSettings, client: Any, out: Out) -> ResourceResult:
    name = settings.endpoint_config_name
    if await _describe(client.describe_endpoint_config(EndpointConfigName=name)) is not None:
        return ResourceResult("endpoint config", name, "exists")
    out(f"creating endpoint config {name}: {settings.initial_instance_count} x {settings.gpu_instance_type}")
    try:
        await client.create_endpoint_config(
            EndpointConfigName=name,
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": settings.model_name,
                    "InstanceType": settings.gpu_instance_type,
                    "InitialInstanceCount": settings.initial_instance_count,
                    "ContainerStartupHealthCheckTimeoutInSeconds": (
                        settings.container_startup_health_check_timeout_s
                    ),
                }
            ],
        )
    except ClientError as exc:
        if _is_already_existing(exc):
            return ResourceResult("endpoint config", name, "exists")
        raise
    return ResourceResult("endpoint config", name, "created")


def _failed(name: str, description: dict[str, Any]) -> EndpointLifecycleError:
    reason = description.get("FailureReason") or "no reason given"
    return EndpointLifecycleError(
        f"endpoint {name} is Failed: {reason} (run `rag-gateway endpoint delete` before deploying again)"
    )


async def _ensure_endpoint(settings: EndpointSettings, client: Any, out: Out) -> ResourceResult:
    name = settings.endpoint_name
    existing = await _describe(client.describe_endpoint(EndpointName=name))
    if existing is not None:
        status = existing.get("EndpointStatus", "")
        if status == "Failed":
            raise _failed(name, existing)
        if status == "Deleting":
            raise EndpointLifecycleError(f"endpoint {name} is being deleted; deploy again once it is gone")
        if existing.get("EndpointConfigName") != settings.endpoint_config_name:
            out(
                f"note: endpoint {name} uses endpoint config {existing.get('EndpointConfigName')}, "
                f"not {settings.endpoint_config_name}"
            )
        return ResourceResult("endpoint", name, "exists")
    out(f"creating endpoint {name}")
    try:
        await client.create_endpoint(EndpointName=name, EndpointConfigName=settings.endpoint_config_name)
    except ClientError as exc:
        if _is_already_existing(exc):
            return ResourceResult("endpoint", name, "exists")
        raise
    return ResourceResult("endpoint", name, "created")


async def wait_in_service(
    settings: EndpointSettings,
    client: Any,
    *,
    out: Out = print,
    sleep: Sleep = asyncio.sleep,
    clock: Clock = time.monotonic,
) -> tuple[str, float, int]:
    """Poll ``DescribeEndpoint`` every ``ENDPOINT_POLL_INTERVAL_S`` until InService, for at most
    ``ENDPOINT_WAIT_TIMEOUT_S``. Returns (status, seconds waited, polls)."""
    name = settings.endpoint_name
    start = clock()
    deadline = start + settings.endpoint_wait_timeout_s
    last_status, last_said, polls = "", start, 0
    while True:
        description = await _describe(client.describe_endpoint(EndpointName=name))
        polls += 1
        if description is None:
            raise EndpointLifecycleError(f"endpoint {name} disappeared while waiting for it")
        status = str(description.get("EndpointStatus", ""))
        now = clock()
        if status == "InService":
            return status, now - start, polls
        if status == "Failed":
            raise _failed(name, description)
        if status not in _TRANSITIONAL:
            raise EndpointLifecycleError(f"endpoint {name} is {status}, not InService")
        if status != last_status or now - last_said >= 60:
            out(f"endpoint {name} is {status} ({now - start:.0f} s)")
            last_status, last_said = status, now
        if now >= deadline:
            raise EndpointLifecycleError(
                f"endpoint {name} is still {status} after {settings.endpoint_wait_timeout_s:.0f} s "
                "(ENDPOINT_WAIT_TIMEOUT_S); it keeps going in AWS: run `rag-gateway endpoint deploy` "
                "again to wait more, or `rag-gateway endpoint delete`"
            )
        await sleep(min(settings.endpoint_poll_interval_s, max(0.0, deadline - now)))


async def deploy_endpoint(
    settings: EndpointSettings,
    client: Any,
    *,
    out: Out = print,
    sleep: Sleep = asyncio.sleep,
    clock: Clock = time.monotonic,
) -> DeployReport:
    """Create (or reuse) the model, the endpoint config and the endpoint; wait until InService."""
    model = await _ensure_model(settings, client, out)
    out(model.describe())
    config = await _ensure_endpoint_config(settings, client, out)
    out(config.describe())
    endpoint = await _ensure_endpoint(settings, client, out)
    out(endpoint.describe())
    status, waited, polls = await wait_in_service(settings, client, out=out, sleep=sleep, clock=clock)
    return DeployReport(model, config, endpoint, status, waited, polls)


# --- delete -------------------------------------------------------------------------------------------


async def delete_endpoint(settings: EndpointSettings, client: Any, *, out: Out = print) -> DeleteReport:
    """Delete the endpoint, its endpoint config and its model(s); anything already gone is "absent"."""
    name = settings.endpoint_name
    config_name = settings.endpoint_config_name
    described = await _describe(client.describe_endpoint(EndpointName=name))
    if described is None:
        endpoint = ResourceResult("endpoint", name, "absent")
    else:
        config_name = described.get("EndpointConfigName") or config_name
        if described.get("EndpointStatus") == "Deleting":
            endpoint = ResourceResult("endpoint", name, "deleting")
        else:
            deleted = await _delete(client.delete_endpoint(EndpointName=name))
            endpoint = ResourceResult("endpoint", name, "deleted" if deleted else "absent")
    out(endpoint.describe())

    model_names = [settings.model_name]
    config_description = await _describe(client.describe_endpoint_config(EndpointConfigName=config_name))
    if config_description is None:
        endpoint_config = ResourceResult("endpoint config", config_name, "absent")
    else:
        variants = config_description.get("ProductionVariants", [])
        model_names = list(dict.fromkeys(v["ModelName"] for v in variants if v.get("ModelName")))
        model_names = model_names or [settings.model_name]
        deleted = await _delete(client.delete_endpoint_config(EndpointConfigName=config_name))
        endpoint_config = ResourceResult("endpoint config", config_name, "deleted" if deleted else "absent")
    out(endpoint_config.describe())

    models = []
    for model_name in model_names:
        deleted = await _delete(client.delete_model(ModelName=model_name))
        models.append(ResourceResult("model", model_name, "deleted" if deleted else "absent"))
        out(models[-1].describe())
    return DeleteReport(endpoint, endpoint_config, tuple(models))


# --- CLI ----------------------------------------------------------------------------------------------


def add_endpoint_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        choices=("deploy", "delete"),
        help="deploy: create model, endpoint config and endpoint, wait for InService; "
        "delete: remove all three (safe to repeat)",
    )


async def _run(action: str, settings: EndpointSettings, out: Out) -> DeployReport | DeleteReport:
    async with sagemaker_client(settings) as client:
        if action == "deploy":
            return await deploy_endpoint(settings, client, out=out)
        return await delete_endpoint(settings, client, out=out)


def run_endpoint(args: argparse.Namespace) -> int:
    """``rag-gateway endpoint deploy|delete``: 0 on success, else one line on stderr and 1."""
    action: str = args.action
    settings: EndpointSettings | None = None

    def out(line: str) -> None:
        print(line, flush=True)

    try:
        settings = EndpointSettings()
        out(
            f"{action} endpoint {settings.endpoint_name} in {settings.aws_region}"
            + (f" via {settings.aws_endpoint_url_sagemaker}" if settings.aws_endpoint_url_sagemaker else "")
        )
        report = asyncio.run(_run(action, settings, out))
    except (EndpointLifecycleError, BotoCoreError, ClientError, ValidationError) as exc:
        print(f"endpoint {action}: error: {describe_error(exc, settings)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            f"endpoint {action}: interrupted; whatever SageMaker had started goes on in AWS "
            f"(run `rag-gateway endpoint {action}` again to finish)",
            file=sys.stderr,
        )
        return 130
    print(report.summary())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rag-gateway endpoint")
    add_endpoint_arguments(parser)
    return run_endpoint(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
