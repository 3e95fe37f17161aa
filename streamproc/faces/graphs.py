"""ONNX graph rewrites done in memory at load time (the user's model files are never touched).

* :func:`batch_scrfd` gives an SCRFD detector a real batch axis. insightface's exports end
  every head in ``Transpose(perm=[2, 3, 0, 1]) -> Reshape([-1, k])``, which folds the batch
  into the anchor axis, so the published graphs take one image per call. Turning each pair
  into ``Transpose(perm=[0, 2, 3, 1]) -> Reshape([0, -1, k])`` keeps the batch axis first:
  outputs become ``(N, H*W*anchors, k)``, and the values of image ``i`` are exactly what a
  call with that image alone returns (the same approach as InsightFace-REST's batched SCRFD).
* :func:`fold_dequantize` turns ``DequantizeLinear`` of constant weights (int8 packs such as
  SFace) into float constants, for runtimes without quantised kernels (the torch backend).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

_HEAD_PERM = [2, 3, 0, 1]
_BATCH_PERM = [0, 2, 3, 1]


class GraphRewriteError(ValueError):
    """The graph does not have the structure the rewrite expects."""


def _constants(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    found = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            found[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return found


def _set_batch_dim(value: onnx.ValueInfoProto, rank: int | None = None) -> None:
    shape = value.type.tensor_type.shape
    dims = list(shape.dim)
    if rank is not None and len(dims) != rank:
        del shape.dim[:]
        for _ in range(rank):
            shape.dim.add()
        dims = list(shape.dim)
    dims[0].Clear()
    dims[0].dim_param = "N"
    for dim in dims[1:] if rank is not None else []:
        dim.Clear()


def batch_scrfd(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of an SCRFD graph whose input and outputs have a dynamic batch axis.

    Raises :class:`GraphRewriteError` when a head does not end in the expected
    ``Transpose -> Reshape([-1, k]) [-> Sigmoid]`` pattern (then detect per frame).
    """
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    consts = _constants(model)
    producers = {out: node for node in graph.node for out in node.output}
    new_inits: list[onnx.TensorProto] = []
    for output in graph.output:
        node = producers.get(output.name)
        if node is not None and node.op_type == "Sigmoid":
            node = producers.get(node.input[0])
        if node is None or node.op_type != "Reshape":
            msg = f"output {output.name} is not produced by a Reshape"
            raise GraphRewriteError(msg)
        transpose = producers.get(node.input[0])
        perm = [list(a.ints) for a in transpose.attribute if a.name == "perm"] if transpose else []
        shape = consts.get(node.input[1])
        if (transpose is None or transpose.op_type != "Transpose" or perm != [_HEAD_PERM]
                or shape is None or shape.tolist()[:1] != [-1] or shape.size != 2):
            msg = f"output {output.name}: head is not Transpose{_HEAD_PERM} -> Reshape([-1, k])"
            raise GraphRewriteError(msg)
        for attr in transpose.attribute:
            if attr.name == "perm":
                attr.CopyFrom(helper.make_attribute("perm", _BATCH_PERM))
        name = f"{node.input[1]}_batched"
        if name not in consts:
            new_inits.append(numpy_helper.from_array(
                np.array([0, -1, int(shape[1])], np.int64), name))
            consts[name] = shape
        node.input[1] = name
        _set_batch_dim(output, rank=3)
        output.type.tensor_type.shape.dim[2].dim_value = int(shape[1])
    graph.initializer.extend(new_inits)
    for value in graph.input:
        if value.name not in consts:
            _set_batch_dim(value)
    # Intermediate shapes were inferred for batch 1; let the runtime infer them again.
    del graph.value_info[:]
    onnx.checker.check_model(model)
    return model


def fold_dequantize(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy where every ``DequantizeLinear`` of constants is replaced by its float result."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    consts = _constants(model)
    kept, folded = [], []
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and all(i in consts for i in node.input if i):
            folded.append(numpy_helper.from_array(_dequantize(node, consts), node.output[0]))
            consts[node.output[0]] = numpy_helper.to_array(folded[-1])
        else:
            kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)
    graph.initializer.extend(folded)
    return model


def _dequantize(node: onnx.NodeProto, consts: dict[str, np.ndarray]) -> np.ndarray:
    """``(x - zero_point) * scale`` with ONNX's per-tensor, per-axis and blocked forms."""
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    x = consts[node.input[0]].astype(np.float32)
    scale = consts[node.input[1]].astype(np.float32)
    zero = (consts[node.input[2]].astype(np.float32) if len(node.input) > 2 and node.input[2]
            else np.zeros_like(scale))
    if scale.ndim == 0:
        return ((x - zero) * scale).astype(np.float32)
    axis = attrs.get("axis", 1) % x.ndim
    block = attrs.get("block_size", 0)
    if block:
        scale = np.repeat(scale, block, axis=axis).take(range(x.shape[axis]), axis=axis)
        zero = np.repeat(zero, block, axis=axis).take(range(x.shape[axis]), axis=axis)
    else:
        view = [1] * x.ndim
        view[axis] = -1
        scale, zero = scale.reshape(view), zero.reshape(view)
    return ((x - zero) * scale).astype(np.float32)
