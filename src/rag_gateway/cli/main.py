"""The ``rag-gateway`` console script: serve, ingest, migrate-store, eval, demo, smoke, endpoint, emulate."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Sequence
from typing import Any

from rag_gateway.config import Settings


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from rag_gateway.app import create_app
    from rag_gateway.cli.signals import exit_quietly_after_shutdown
    from rag_gateway.observability.logs import configure_logging

    settings = Settings()
    host = args.host or settings.host
    port = settings.port if args.port is None else args.port
    if settings.workers > 1 and not settings.uses_remote_qdrant:
        print(
            f"rag-gateway serve: WORKERS={settings.workers} needs a Qdrant server (QDRANT_URL): "
            "a local Qdrant folder can be opened by one process only. Set QDRANT_URL, or WORKERS=1.",
            file=sys.stderr,
        )
        return 2
    configure_logging(settings.log_level, json_logs=settings.log_json)
    exit_quietly_after_shutdown()
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": settings.log_level,
        "access_log": False,  # the gateway writes its own JSON access lines
        "loop": "auto",  # uvloop when installed
        "http": "auto",  # httptools when installed
        "timeout_graceful_shutdown": max(1, round(settings.shutdown_grace_s)),
    }
    if settings.workers > 1:  # each worker process builds its own app (and clients) from the environment
        uvicorn.run("rag_gateway.app:create_app", factory=True, workers=settings.workers, **common)
    else:
        uvicorn.run(create_app(settings), **common)
    return 0


def emulators_installed() -> bool:
    """The emulators ship with the source checkout (development installs), not in the container image."""
    return importlib.util.find_spec("rag_gateway_emulators") is not None


def _emulators_missing(args: argparse.Namespace) -> int:
    print(
        f"rag-gateway {args.command}: the emulators are not installed here (they are a development tool, "
        "left out of the container image); run it from a source checkout after `make install`.",
        file=sys.stderr,
    )
    return 2


def build_parser() -> argparse.ArgumentParser:
    from rag_gateway.cli.demo import add_demo_arguments, run_demo
    from rag_gateway.cli.endpoint import add_endpoint_arguments, run_endpoint
    from rag_gateway.cli.migrate import add_migrate_arguments, run_migrate
    from rag_gateway.cli.smoke import add_smoke_arguments, run_smoke
    from rag_gateway.ingest.cli import add_ingest_arguments, run_ingest

    parser = argparse.ArgumentParser(prog="rag-gateway", description="RAG gateway: serve, ingest, emulate.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the HTTP API with uvicorn")
    serve.add_argument("--host", default=None, help="default: HOST setting (127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="default: PORT setting (8000)")
    serve.set_defaults(handler=_serve)

    ingest = commands.add_parser("ingest", help="load documents into the vector store")
    add_ingest_arguments(ingest)
    ingest.set_defaults(handler=run_ingest)

    migrate = commands.add_parser(
        "migrate-store", help="copy an earlier version's store folder into the embedded Qdrant engine"
    )
    add_migrate_arguments(migrate)
    migrate.set_defaults(handler=run_migrate)

    demo = commands.add_parser("demo", help="emulators + sample corpus + gateway, in the foreground")
    emulate = commands.add_parser("emulate", help="run the OpenAI and SageMaker emulators on loopback")
    evaluate = commands.add_parser("eval", help="measure retrieval quality on questions built from a corpus")
    if emulators_installed():
        from rag_gateway.cli.eval import add_eval_arguments, run_eval
        from rag_gateway_emulators.server import add_emulate_arguments, run_emulate

        add_demo_arguments(demo)
        demo.set_defaults(handler=run_demo)
        add_emulate_arguments(emulate)
        emulate.set_defaults(handler=run_emulate)
        add_eval_arguments(evaluate)
        evaluate.set_defaults(handler=run_eval)
    else:
        for parser_ in (demo, emulate, evaluate):
            parser_.add_argument("ignored", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
            parser_.set_defaults(handler=_emulators_missing)

    smoke = commands.add_parser("smoke", help="ask a running gateway one question and check the answer")
    add_smoke_arguments(smoke)
    smoke.set_defaults(handler=run_smoke)

    endpoint = commands.add_parser(
        "endpoint", help="deploy or delete the SageMaker LLM endpoint (billed AWS resources)"
    )
    add_endpoint_arguments(endpoint)
    endpoint.set_defaults(handler=run_endpoint)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
