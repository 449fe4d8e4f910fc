"""Small ONNX models the tests build themselves, so no model hub is needed."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "config.json")


def build_keyword_cross_encoder(dest: Path, tokenizer_dir: Path, keyword_token_id: int) -> Path:
    """A stand-in cross-encoder with the real one's interface (``input_ids``, ``attention_mask`` ->
    ``logits [batch, 1]``): its score is how often one token occurs in the (query, document) pair, so a
    test knows which document must rank first."""
    dest.mkdir(parents=True, exist_ok=True)
    input_ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"])
    attention_mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"])
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 1])
    keyword = numpy_helper.from_array(np.array(keyword_token_id, dtype=np.int64), name="keyword")
    axes = numpy_helper.from_array(np.array([1], dtype=np.int64), name="axes")
    nodes = [
        helper.make_node("Equal", ["input_ids", "keyword"], ["is_keyword"]),
        helper.make_node("Cast", ["is_keyword"], ["is_keyword_i"], to=TensorProto.INT64),
        helper.make_node("Mul", ["is_keyword_i", "attention_mask"], ["counted"]),
        helper.make_node("Cast", ["counted"], ["counted_f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["counted_f", "axes"], ["logits"], keepdims=1),
    ]
    graph = helper.make_graph(
        nodes, "keyword_cross_encoder", [input_ids, attention_mask], [logits], [keyword, axes]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, dest / "model.onnx")
    for name in TOKENIZER_FILES:
        shutil.copyfile(tokenizer_dir / name, dest / name)
    return dest
