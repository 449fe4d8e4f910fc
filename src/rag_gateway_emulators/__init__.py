"""Wire-protocol emulators of the gateway's upstreams: OpenAI chat completions and SageMaker/TGI.

They listen on loopback and speak the real protocols over HTTP, so the real ``openai`` and ``aioboto3``
clients run unmodified (auth headers, SigV4 signing, connection pooling) while tests inject faults.
"""

from __future__ import annotations

from rag_gateway_emulators.control_client import EmulatorControl
from rag_gateway_emulators.faults import Fault, FaultKind, Target
from rag_gateway_emulators.openai_emulator import build_openai_app
from rag_gateway_emulators.sagemaker_emulator import build_sagemaker_app
from rag_gateway_emulators.server import (
    EmulatorStartError,
    EmulatorThread,
    RunningEmulators,
    add_emulate_arguments,
    run_emulate,
    running_emulators,
    serve_forever,
)

__all__ = [
    "EmulatorControl",
    "EmulatorStartError",
    "EmulatorThread",
    "Fault",
    "FaultKind",
    "RunningEmulators",
    "Target",
    "add_emulate_arguments",
    "build_openai_app",
    "build_sagemaker_app",
    "run_emulate",
    "running_emulators",
    "serve_forever",
]
