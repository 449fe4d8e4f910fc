"""``python -m rag_gateway_emulators``: the same as ``rag-gateway emulate``."""

from __future__ import annotations

import argparse
import sys

from rag_gateway_emulators.server import add_emulate_arguments, run_emulate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rag_gateway_emulators", description="Run the OpenAI and SageMaker emulators."
    )
    add_emulate_arguments(parser)
    return run_emulate(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
