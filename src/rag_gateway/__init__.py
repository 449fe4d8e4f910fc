"""rag-gateway: an async HTTP gateway in front of a retrieval-augmented generation pipeline."""

__version__ = "0.1.0"
