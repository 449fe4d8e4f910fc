"""``rag-gateway endpoint deploy|delete`` against moto's server mode: a real HTTP peer on loopback.

moto creates endpoints straight into ``InService``; the tests that need another status (Creating, Failed)
set it on moto's in-process backend between polls, through the injectable ``sleep``. Nothing sleeps.
moto's list of endpoint instance types predates the g5 family, so these tests deploy ``ml.g4dn.xlarge``
(also a GPU instance the TGI container runs on); the ``ml.g5.2xlarge`` default is checked as a setting.
"""

from __future__ import annotations

import argparse
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.sagemaker.models import sagemaker_backends
from moto.server import ThreadedMotoServer
from pydantic import ValidationError

from rag_gateway.cli import endpoint as endpoint_lifecycle
from rag_gateway.cli.endpoint import (
    DeleteReport,
    DeployReport,
    EndpointLifecycleError,
    EndpointSettings,
    add_endpoint_arguments,
    default_image_uri,
    delete_endpoint,
    deploy_endpoint,
    describe_error,
    run_endpoint,
    sagemaker_client,
    wait_in_service,
)

REGION = "eu-central-1"
ROLE = f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/twin-sagemaker-execution"
TEST_INSTANCE = "ml.g4dn.xlarge"
HF_TOKEN = "hf_test_token_0123456789_DO_NOT_PRINT"
AWS_SECRET = "aws-endpoint-test-secret-DO-NOT-PRINT"
TGI_IMAGE_EU_CENTRAL_1 = (
    "763104351884.dkr.ecr.eu-central-1.amazonaws.com/"
    "huggingface-pytorch-tgi-inference:2.4.0-tgi2.3.1-gpu-py311-cu124-ubuntu22.04"
)

#: Variables that would leak the developer's shell (or a `.env`) into these tests.
_ISOLATED_ENV = [
    *(name.upper() for name in EndpointSettings.model_fields),
    "COPIES",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
]


@pytest.fixture(autouse=True)
def _isolated_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No `.env`, no profiles, no instance metadata: only what each test sets."""
    for name in _ISOLATED_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    assert port != 0
    yield f"http://{host}:{port}"
    server.stop()


def _unique_name() -> str:
    return f"twin-{uuid.uuid4().hex[:10]}"


def make_settings(moto_url: str, **overrides: Any) -> EndpointSettings:
    values: dict[str, Any] = {
        "sagemaker_endpoint_inference": _unique_name(),
        "aws_region": REGION,
        "aws_access_key": "AKIDENDPOINTTEST",
        "aws_secret_key": AWS_SECRET,
        "aws_arn_role": ROLE,
        "aws_endpoint_url_sagemaker": moto_url,
        "gpu_instance_type": TEST_INSTANCE,
        "huggingface_access_token": HF_TOKEN,
        "endpoint_poll_interval_s": 0,
    }
    values.update(overrides)
    return EndpointSettings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def endpoint_settings(moto_url: str) -> EndpointSettings:
    return make_settings(moto_url)


@pytest.fixture
async def sm(endpoint_settings: EndpointSettings) -> AsyncIterator[Any]:
    async with sagemaker_client(endpoint_settings) as client:
        yield client


def moto_endpoint(name: str) -> Any:
    """moto's in-process record of an endpoint (the server thread serves from the same objects)."""
    return sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION].endpoints[name]


async def assert_absent(call: Any) -> None:
    with pytest.raises(ClientError) as caught:
        await call
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "Could not find" in caught.value.response["Error"]["Message"]


# --- deploy -------------------------------------------------------------------------------------------


async def test_deploy_creates_model_config_and_endpoint_and_reaches_in_service(
    endpoint_settings: EndpointSettings, sm: Any
) -> None:
    lines: list[str] = []
    report = await deploy_endpoint(endpoint_settings, sm, out=lines.append)

    name = endpoint_settings.endpoint_name
    assert isinstance(report, DeployReport)
    assert [(r.kind, r.name, r.outcome) for r in report.resources] == [
        ("model", f"{name}-model", "created"),
        ("endpoint config", f"{name}-config", "created"),
        ("endpoint", name, "created"),
    ]
    assert report.status == "InService"
    assert report.polls == 1  # moto's endpoints are InService as soon as they are created
    assert report.summary() == (
        f"created model {name}-model; created endpoint config {name}-config; created endpoint {name}; "
        f"endpoint {name} is InService (waited 0 s)"
    )

    model = await sm.describe_model(ModelName=f"{name}-model")
    assert model["ExecutionRoleArn"] == ROLE
    assert model["PrimaryContainer"]["Image"] == TGI_IMAGE_EU_CENTRAL_1
    assert model["PrimaryContainer"]["Environment"] == {
        "HF_MODEL_ID": "mlabonne/TwinLlama-3.1-8B-DPO",
        "SM_NUM_GPUS": "1",
        "MAX_INPUT_LENGTH": "2048",
        "MAX_TOTAL_TOKENS": "4096",
        "MAX_BATCH_TOTAL_TOKENS": "4096",
        "HUGGING_FACE_HUB_TOKEN": HF_TOKEN,  # the container needs it; the terminal never sees it
    }
    config = await sm.describe_endpoint_config(EndpointConfigName=f"{name}-config")
    assert config["ProductionVariants"] == [
        {
            "VariantName": "AllTraffic",
            "ModelName": f"{name}-model",
            "InstanceType": TEST_INSTANCE,
            "InitialInstanceCount": 1,
            "ContainerStartupHealthCheckTimeoutInSeconds": 900,
        }
    ]
    endpoint = await sm.describe_endpoint(EndpointName=name)
    assert endpoint["EndpointConfigName"] == f"{name}-config"
    assert endpoint["EndpointStatus"] == "InService"

    printed = "\n".join([*lines, report.summary(), repr(report), repr(endpoint_settings)])
    assert HF_TOKEN not in printed and AWS_SECRET not in printed


async def test_optional_quantize_goes_to_the_container_and_no_token_means_no_token_variable(
    moto_url: str,
) -> None:
    settings = make_settings(moto_url, huggingface_access_token="", hf_model_quantize="bitsandbytes")
    async with sagemaker_client(settings) as sm:
        await deploy_endpoint(settings, sm, out=lambda _: None)
        model = await sm.describe_model(ModelName=settings.model_name)
    environment = model["PrimaryContainer"]["Environment"]
    assert environment["HF_MODEL_QUANTIZE"] == "bitsandbytes"
    assert "HUGGING_FACE_HUB_TOKEN" not in environment


async def test_deploy_twice_reuses_everything(endpoint_settings: EndpointSettings, sm: Any) -> None:
    await deploy_endpoint(endpoint_settings, sm, out=lambda _: None)
    lines: list[str] = []
    again = await deploy_endpoint(endpoint_settings, sm, out=lines.append)
    assert [r.outcome for r in again.resources] == ["exists", "exists", "exists"]
    assert again.status == "InService"
    assert not [line for line in lines if line.startswith("note:")]
    name = endpoint_settings.endpoint_name
    assert again.summary().startswith(f"model {name}-model exists, reused; endpoint config {name}-config")

    # A changed model setting is not applied silently to the model that exists: it says so.
    changed = endpoint_settings.model_copy(update={"hf_model_id": "mlabonne/Another-Twin"})
    lines.clear()
    third = await deploy_endpoint(changed, sm, out=lines.append)
    assert third.model.outcome == "exists"
    assert any(line.startswith(f"note: model {name}-model exists with another image") for line in lines)


async def test_deploy_resumes_an_interrupted_deploy(endpoint_settings: EndpointSettings, sm: Any) -> None:
    name = endpoint_settings.endpoint_name
    await sm.create_model(
        ModelName=f"{name}-model",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={
            "Image": endpoint_settings.image_uri,
            "Environment": endpoint_settings.container_environment(),
        },
    )
    report = await deploy_endpoint(endpoint_settings, sm, out=lambda _: None)
    assert [r.outcome for r in report.resources] == ["exists", "created", "created"]
    assert report.status == "InService"


async def test_deploy_waits_while_the_endpoint_is_creating(
    endpoint_settings: EndpointSettings, sm: Any
) -> None:
    await deploy_endpoint(endpoint_settings, sm, out=lambda _: None)
    name = endpoint_settings.endpoint_name
    moto_endpoint(name).endpoint_status = "Creating"
    slept: list[float] = []

    async def sleep(seconds: float) -> None:  # the endpoint comes up during the second wait
        slept.append(seconds)
        if len(slept) == 2:
            moto_endpoint(name).endpoint_status = "InService"

    lines: list[str] = []
    report = await deploy_endpoint(endpoint_settings, sm, out=lines.append, sleep=sleep)
    assert report.endpoint.outcome == "exists"
    assert report.status == "InService"
    assert report.polls == 3
    assert slept == [0, 0]
    assert [line for line in lines if "is Creating" in line] == [f"endpoint {name} is Creating (0 s)"]


async def test_a_failed_endpoint_is_a_clear_error_with_the_reason(
    endpoint_settings: EndpointSettings, sm: Any
) -> None:
    await deploy_endpoint(endpoint_settings, sm, out=lambda _: None)
    name = endpoint_settings.endpoint_name
    record = moto_endpoint(name)
    record.endpoint_status, record.failure_reason = "Creating", None

    async def sleep(_: float) -> None:
        record.endpoint_status = "Failed"
        record.failure_reason = "The primary container for production variant AllTraffic did not pass"

    with pytest.raises(EndpointLifecycleError) as while_waiting:
        await deploy_endpoint(endpoint_settings, sm, out=lambda _: None, sleep=sleep)
    assert str(while_waiting.value) == (
        f"endpoint {name} is Failed: The primary container for production variant AllTraffic did not pass "
        "(run `rag-gateway endpoint delete` before deploying again)"
    )
    # Deploying over an endpoint that is already Failed stops at once, with the same reason.
    with pytest.raises(EndpointLifecycleError, match="did not pass"):
        await deploy_endpoint(endpoint_settings, sm, out=lambda _: None)


async def test_waiting_stops_at_the_deadline(moto_url: str) -> None:
    settings = make_settings(moto_url, endpoint_wait_timeout_s=90, endpoint_poll_interval_s=30)
    now = [1000.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    async with sagemaker_client(settings) as sm:
        await deploy_endpoint(settings, sm, out=lambda _: None)
        moto_endpoint(settings.endpoint_name).endpoint_status = "Creating"
        with pytest.raises(EndpointLifecycleError) as caught:
            await wait_in_service(settings, sm, out=lambda _: None, sleep=sleep, clock=lambda: now[0])
    assert now[0] == 1090.0  # polled at 0, 30, 60 and 90 s, then gave up
    assert f"endpoint {settings.endpoint_name} is still Creating after 90 s" in str(caught.value)


async def test_deploy_without_an_execution_role_creates_nothing(moto_url: str) -> None:
    settings = make_settings(moto_url, aws_arn_role="")
    async with sagemaker_client(settings) as sm:
        with pytest.raises(EndpointLifecycleError, match="AWS_ARN_ROLE is not set"):
            await deploy_endpoint(settings, sm, out=lambda _: None)
        await assert_absent(sm.describe_model(ModelName=settings.model_name))


# --- delete -------------------------------------------------------------------------------------------


async def test_delete_removes_all_three_and_reports_them(
    endpoint_settings: EndpointSettings, sm: Any
) -> None:
    await deploy_endpoint(endpoint_settings, sm, out=lambda _: None)
    lines: list[str] = []
    report = await delete_endpoint(endpoint_settings, sm, out=lines.append)

    name = endpoint_settings.endpoint_name
    assert isinstance(report, DeleteReport)
    assert report.summary() == (
        f"deleted endpoint {name}; deleted endpoint config {name}-config; deleted model {name}-model"
    )
    assert lines == report.summary().split("; ")
    await assert_absent(sm.describe_endpoint(EndpointName=name))
    await assert_absent(sm.describe_endpoint_config(EndpointConfigName=f"{name}-config"))
    await assert_absent(sm.describe_model(ModelName=f"{name}-model"))


async def test_delete_again_reports_everything_absent(endpoint_settings: EndpointSettings, sm: Any) -> None:
    await deploy_endpoint(endpoint_settings, sm, out=lambda _: None)
    await delete_endpoint(endpoint_settings, sm, out=lambda _: None)
    again = await delete_endpoint(endpoint_settings, sm, out=lambda _: None)
    name = endpoint_settings.endpoint_name
    assert [r.outcome for r in again.resources] == ["absent", "absent", "absent"]
    assert again.summary() == (
        f"endpoint {name} was already absent; endpoint config {name}-config was already absent; "
        f"model {name}-model was already absent"
    )


async def test_delete_follows_the_endpoint_to_its_config_and_model(moto_url: str) -> None:
    """An endpoint deployed with other names (the Handbook's config ``twin``) is still cleaned up whole."""
    name = _unique_name()
    deployed_with = make_settings(
        moto_url,
        sagemaker_endpoint_inference=name,
        sagemaker_endpoint_config_inference=f"{name}-handbook-cfg",
        sagemaker_model_name=f"{name}-handbook-model",
    )
    deleted_with = make_settings(moto_url, sagemaker_endpoint_inference=name)
    async with sagemaker_client(deployed_with) as sm:
        await deploy_endpoint(deployed_with, sm, out=lambda _: None)
        report = await delete_endpoint(deleted_with, sm, out=lambda _: None)
        await assert_absent(sm.describe_model(ModelName=f"{name}-handbook-model"))
    assert report.summary() == (
        f"deleted endpoint {name}; deleted endpoint config {name}-handbook-cfg; "
        f"deleted model {name}-handbook-model"
    )


async def test_delete_without_an_endpoint_still_removes_the_derived_config_and_model(
    endpoint_settings: EndpointSettings, sm: Any
) -> None:
    await deploy_endpoint(endpoint_settings, sm, out=lambda _: None)
    await sm.delete_endpoint(EndpointName=endpoint_settings.endpoint_name)
    report = await delete_endpoint(endpoint_settings, sm, out=lambda _: None)
    assert [r.outcome for r in report.resources] == ["absent", "deleted", "deleted"]


# --- the CLI ------------------------------------------------------------------------------------------


def _cli_env(monkeypatch: pytest.MonkeyPatch, moto_url: str, name: str) -> None:
    for key, value in {
        "SAGEMAKER_ENDPOINT_INFERENCE": name,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY": "AKIDENDPOINTCLI",
        "AWS_SECRET_KEY": AWS_SECRET,
        "AWS_ARN_ROLE": ROLE,
        "AWS_ENDPOINT_URL_SAGEMAKER": moto_url,
        "GPU_INSTANCE_TYPE": TEST_INSTANCE,
        "HUGGINGFACE_ACCESS_TOKEN": HF_TOKEN,
        "ENDPOINT_POLL_INTERVAL_S": "0",
    }.items():
        monkeypatch.setenv(key, value)


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_endpoint_arguments(parser)
    return parser.parse_args(argv)


def test_cli_deploy_then_delete(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], moto_url: str
) -> None:
    name = _unique_name()
    _cli_env(monkeypatch, moto_url, name)

    assert run_endpoint(_args("deploy")) == 0
    deployed = capsys.readouterr()
    assert deployed.err == ""
    assert deployed.out.splitlines()[0] == f"deploy endpoint {name} in {REGION} via {moto_url}"
    assert deployed.out.splitlines()[-1] == (
        f"created model {name}-model; created endpoint config {name}-config; created endpoint {name}; "
        f"endpoint {name} is InService (waited 0 s)"
    )

    assert run_endpoint(_args("delete")) == 0
    deleted = capsys.readouterr()
    assert deleted.err == ""
    assert deleted.out.splitlines()[-1] == (
        f"deleted endpoint {name}; deleted endpoint config {name}-config; deleted model {name}-model"
    )

    assert run_endpoint(_args("delete")) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith(f"model {name}-model was already absent")
    for output in (deployed, deleted):
        assert HF_TOKEN not in output.out + output.err and AWS_SECRET not in output.out + output.err


def test_cli_reads_the_control_plane_url_from_dot_env(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], moto_url: str
) -> None:
    """botocore only reads AWS_ENDPOINT_URL_SAGEMAKER from the environment; `.env` works through settings."""
    name = _unique_name()
    (tmp_path / ".env").write_text(
        f"SAGEMAKER_ENDPOINT_INFERENCE={name}\n"
        f"AWS_REGION={REGION}\n"
        "AWS_ACCESS_KEY=AKIDENDPOINTDOTENV\n"
        f"AWS_SECRET_KEY={AWS_SECRET}\n"
        f"AWS_ARN_ROLE={ROLE}\n"
        f"AWS_ENDPOINT_URL_SAGEMAKER={moto_url}\n"
        f"GPU_INSTANCE_TYPE={TEST_INSTANCE}\n"
        "COPIES=2\n"
        "HUGGINGFACE_ACCESS_TOKEN=\n"
        "ENDPOINT_POLL_INTERVAL_S=0\n"
    )
    assert run_endpoint(_args("deploy")) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith(f"endpoint {name} is InService (waited 0 s)")
    config = boto3.client(
        "sagemaker",
        region_name=REGION,
        endpoint_url=moto_url,
        aws_access_key_id="AKIDENDPOINTDOTENV",
        aws_secret_access_key=AWS_SECRET,
    ).describe_endpoint_config(EndpointConfigName=f"{name}-config")
    assert config["ProductionVariants"][0]["InitialInstanceCount"] == 2
    assert run_endpoint(_args("delete")) == 0


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err and HF_TOKEN not in err and AWS_SECRET not in err
    return err.strip()


def test_cli_without_credentials_says_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], moto_url: str
) -> None:
    _cli_env(monkeypatch, moto_url, _unique_name())
    monkeypatch.delenv("AWS_ACCESS_KEY")
    monkeypatch.delenv("AWS_SECRET_KEY")
    assert run_endpoint(_args("delete")) == 1
    assert _one_error_line(capsys).startswith("endpoint delete: error: no usable AWS credentials")


def test_cli_reports_rejected_credentials_and_access_denied(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], moto_url: str
) -> None:
    iam = boto3.client(
        "iam", region_name=REGION, endpoint_url=moto_url, aws_access_key_id="x", aws_secret_access_key="x"
    )
    user = f"no-sagemaker-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    _cli_env(monkeypatch, moto_url, _unique_name())

    httpx.post(f"{moto_url}/moto-api/reset-auth", content=b"0").raise_for_status()  # moto enforces IAM
    try:
        assert run_endpoint(_args("deploy")) == 1  # a key moto's IAM does not know
        rejected = _one_error_line(capsys)
        assert rejected.startswith("endpoint deploy: error: AWS rejected the credentials on DescribeModel")
        assert "InvalidClientTokenId" in rejected

        monkeypatch.setenv("AWS_ACCESS_KEY", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_KEY", key["SecretAccessKey"])
        assert run_endpoint(_args("deploy")) == 1  # a real user without a single policy
        denied = _one_error_line(capsys)
        assert denied.startswith("endpoint deploy: error: access denied on DescribeModel")
        assert "is not authorized to perform: sagemaker:DescribeModel" in denied
        assert key["SecretAccessKey"] not in denied
    finally:
        httpx.post(f"{moto_url}/moto-api/reset-auth", content=b"inf").raise_for_status()


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("MAX_INPUT_LENGTH", "4096", "MAX_INPUT_LENGTH must be less than MAX_TOTAL_TOKENS"),
        ("SM_NUM_GPUS", "one-SECRET-LOOKING-VALUE", "SM_NUM_GPUS: Input should be a valid integer"),
        ("SAGEMAKER_ENDPOINT_INFERENCE", "twin_llm", "is not a valid SageMaker name"),
    ],
)
def test_cli_refuses_bad_settings_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    moto_url: str,
    name: str,
    value: str,
    expected: str,
) -> None:
    _cli_env(monkeypatch, moto_url, _unique_name())
    monkeypatch.setenv(name, value)
    assert run_endpoint(_args("deploy")) == 1
    line = _one_error_line(capsys)
    assert line.startswith("endpoint deploy: error: invalid settings: ") and expected in line
    assert "SECRET-LOOKING" not in line


def test_cli_interrupted_while_waiting_says_what_goes_on(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], moto_url: str
) -> None:
    _cli_env(monkeypatch, moto_url, _unique_name())

    async def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(endpoint_lifecycle, "_run", interrupted)
    assert run_endpoint(_args("deploy")) == 130
    assert _one_error_line(capsys).startswith("endpoint deploy: interrupted; whatever SageMaker had started")


def test_an_aws_error_that_echoes_a_secret_is_masked() -> None:
    settings = EndpointSettings(_env_file=None, huggingface_access_token=HF_TOKEN, aws_secret_key=AWS_SECRET)  # type: ignore[call-arg]
    error = ClientError(
        {"Error": {"Code": "ValidationException", "Message": f"bad env value {HF_TOKEN}\nand {AWS_SECRET}"}},
        "CreateModel",
    )
    assert (
        describe_error(error, settings)
        == "CreateModel failed (ValidationException): bad env value *** and ***"
    )


# --- settings -----------------------------------------------------------------------------------------


def test_defaults_follow_the_handbook() -> None:
    settings = EndpointSettings(_env_file=None)  # type: ignore[call-arg]
    assert (settings.endpoint_name, settings.endpoint_config_name, settings.model_name) == (
        "twin",
        "twin-config",
        "twin-model",
    )
    assert settings.hf_model_id == "mlabonne/TwinLlama-3.1-8B-DPO"
    assert settings.gpu_instance_type == "ml.g5.2xlarge"
    assert settings.image_uri == TGI_IMAGE_EU_CENTRAL_1
    assert settings.initial_instance_count == 1
    assert settings.huggingface_access_token is None and settings.aws_arn_role is None
    assert settings.container_environment() == {
        "HF_MODEL_ID": "mlabonne/TwinLlama-3.1-8B-DPO",
        "SM_NUM_GPUS": "1",
        "MAX_INPUT_LENGTH": "2048",
        "MAX_TOTAL_TOKENS": "4096",
        "MAX_BATCH_TOTAL_TOKENS": "4096",
    }


def test_image_uri_follows_the_region_registry() -> None:
    assert default_image_uri("us-east-1").startswith("763104351884.dkr.ecr.us-east-1.amazonaws.com/")
    assert default_image_uri("me-south-1").startswith("217643126080.dkr.ecr.me-south-1.amazonaws.com/")
    assert default_image_uri("cn-north-1").startswith("727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn/")
    custom = EndpointSettings(_env_file=None, sagemaker_image_uri="my.registry/tgi:latest")  # type: ignore[call-arg]
    assert custom.image_uri == "my.registry/tgi:latest"


def test_settings_refuse_what_tgi_or_sagemaker_would_refuse() -> None:
    with pytest.raises(ValidationError, match="MAX_BATCH_TOTAL_TOKENS must be at least MAX_TOTAL_TOKENS"):
        EndpointSettings(_env_file=None, max_batch_total_tokens=2048)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="SAGEMAKER_ENDPOINT_CONFIG_INFERENCE"):
        EndpointSettings(_env_file=None, sagemaker_endpoint_inference="a" * 60)  # type: ignore[call-arg]
