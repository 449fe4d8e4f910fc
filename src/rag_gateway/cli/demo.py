"""``rag-gateway demo``: the whole gateway on one machine with no accounts and no servers.

Starts the OpenAI and SageMaker emulators on free loopback ports, ingests the project's own sample corpus
into a local Qdrant folder (chunks already stored are skipped, so later runs reuse it), and serves the
gateway in the foreground. Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
from importlib.resources import files
from pathlib import Path

import uvicorn
from pydantic import SecretStr

from rag_gateway.app import create_app
from rag_gateway.cli.signals import exit_quietly_after_shutdown
from rag_gateway.config import Settings
from rag_gateway.ingest import IngestError, ingest_paths
from rag_gateway.observability.logs import configure_logging

SAMPLE_CORPUS = files("rag_gateway") / "sample_corpus"
EXIT_USAGE = 2


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--qdrant-path", type=Path, default=Path("demo_data/qdrant"))


def bind_or_explain(host: str, port: int) -> socket.socket | None:
    """Bind the gateway's socket up front, so a busy port is one clear line and not a traceback."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        print(
            f"rag-gateway demo: port {port} on {host} is not available ({exc.strerror}); "
            "stop whatever uses it or run `make demo PORT=8010`",
            file=sys.stderr,
        )
        return None
    return sock


def run_demo(args: argparse.Namespace) -> int:
    sock = bind_or_explain(args.host, args.port)
    if sock is None:
        return EXIT_USAGE
    from rag_gateway_emulators import EmulatorThread  # a development package, absent from the image

    base = Settings()
    configure_logging(base.log_level, json_logs=False)
    with EmulatorThread(endpoint_name=base.sagemaker_endpoint_inference) as emulators:
        settings = base.model_copy(
            update={
                "openai_base_url": emulators.openai_url,
                "openai_api_key": SecretStr("demo-key"),
                "aws_endpoint_url_sagemaker_runtime": emulators.sagemaker_url,
                "aws_access_key": SecretStr("demo"),
                "aws_secret_key": SecretStr("demo"),
                "qdrant_url": None,
                "qdrant_path": args.qdrant_path,
            }
        )
        corpus = sorted(Path(str(SAMPLE_CORPUS)).glob("*.json"))
        try:
            report = asyncio.run(ingest_paths(corpus, settings, progress=False))
        except IngestError as exc:
            print(f"rag-gateway demo: {exc}", file=sys.stderr)
            return EXIT_USAGE
        url = f"http://{args.host}:{args.port}"
        print(f"openai emulator:    {emulators.openai_url}")
        print(f"sagemaker emulator: {emulators.sagemaker_url}")
        print(f"sample corpus:      {report.summary()} ({args.qdrant_path})")
        print(f"gateway:            {url}  (API docs: {url}/docs)")
        print("next, in another terminal:  make smoke")
        print(f"""  or: curl -s {url}/rag -H 'content-type: application/json' \\
        -d '{{"query": "What does Tomas Berg say about chunking articles?"}}'""")
        print("Ctrl-C stops everything.", flush=True)
        exit_quietly_after_shutdown()
        server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning", lifespan="on"))
        server.run(sockets=[sock])
    return 0
