"""Run an ONNX graph as a ``torch.nn.Module``: the ops the SCRFD and ArcFace-style packs use.

Why not onnx2torch: it imports torchvision at import time, and PyPI's torchvision wheels
are CUDA builds that fail to load beside the CPU torch wheel CI installs
("operator torchvision::nms does not exist"); it also has no ``DequantizeLinear``, which
the int8 SFace pack needs. The ops below cover det_500m, det_2.5g, MobileFaceNet and SFace
(after :func:`streamproc.faces.graphs.fold_dequantize`); any other op fails at load with
its name, never silently. Float constants are buffers (they follow ``.to(device)`` and
``.half()``); integer constants and shape arithmetic stay on the CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
import torch
import torch.nn.functional as F  # noqa: N812
from onnx import helper, numpy_helper

Op = Callable[[list[Any], dict[str, Any]], Any]


def _ints(value: Any) -> list[int]:
    return [int(v) for v in (value.tolist() if isinstance(value, torch.Tensor) else value)]


def _pad_for(x: torch.Tensor, pads: list[int], value: float = 0.0) -> tuple[torch.Tensor,
                                                                          list[int]]:
    """ONNX pads (begins..., ends...) as a symmetric torch padding, pre-padding if needed."""
    half = len(pads) // 2
    begin, end = pads[:half], pads[half:]
    if begin == end:
        return x, begin
    flat = [p for b, e in zip(reversed(begin), reversed(end), strict=True) for p in (b, e)]
    return F.pad(x, flat, value=value), [0] * half


def _conv(args: list[Any], a: dict[str, Any]) -> torch.Tensor:
    x, w = args[0], args[1]
    bias = args[2] if len(args) > 2 else None
    x, pad = _pad_for(x, a.get("pads", [0] * (2 * (w.dim() - 2))))
    return F.conv2d(x, w, bias, stride=a.get("strides", 1), padding=pad,
                    dilation=a.get("dilations", 1), groups=a.get("group", 1))


def _pool(kind: str) -> Op:
    def run(args: list[Any], a: dict[str, Any]) -> torch.Tensor:
        kernel = a["kernel_shape"]
        value = float("-inf") if kind == "max" else 0.0
        x, pad = _pad_for(args[0], a.get("pads", [0] * 2 * len(kernel)), value)
        stride, ceil = a.get("strides", kernel), bool(a.get("ceil_mode", 0))
        if kind == "max":
            return F.max_pool2d(x, kernel, stride, pad, ceil_mode=ceil)
        return F.avg_pool2d(x, kernel, stride, pad, ceil_mode=ceil,
                            count_include_pad=bool(a.get("count_include_pad", 0)))
    return run


def _clip(args: list[Any], a: dict[str, Any]) -> torch.Tensor:
    return torch.clamp(args[0], a.get("min"), a.get("max"))


def _reshape(args: list[Any], a: dict[str, Any]) -> torch.Tensor:
    x, shape = args[0], _ints(args[1])
    if not a.get("allowzero", 0):
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return x.reshape(shape)


def _gather(args: list[Any], a: dict[str, Any]) -> torch.Tensor:
    data, index = args[0], args[1]
    axis = a.get("axis", 0) % data.dim()
    picked = torch.index_select(data, axis, index.reshape(-1) % data.shape[axis])
    return picked.reshape(data.shape[:axis] + index.shape + data.shape[axis + 1:])


def _unsqueeze(args: list[Any], a: dict[str, Any]) -> torch.Tensor:
    x = args[0]
    axes = _ints(args[1]) if len(args) > 1 else a["axes"]
    rank = x.dim() + len(axes)
    for axis in sorted(ax % rank for ax in axes):
        x = x.unsqueeze(axis)
    return x


def _slice(args: list[Any], a: dict[str, Any]) -> torch.Tensor:
    x = args[0]
    starts, ends = _ints(args[1]), _ints(args[2])
    axes = _ints(args[3]) if len(args) > 3 and args[3] is not None else list(range(len(starts)))
    steps = _ints(args[4]) if len(args) > 4 and args[4] is not None else [1] * len(starts)
    index: list[slice] = [slice(None)] * x.dim()
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        if step <= 0:
            msg = "Slice with a negative step is not supported"
            raise NotImplementedError(msg)
        size = x.shape[axis]
        index[axis] = slice(max(-size, min(start, size)), max(-size, min(end, size)), step)
    return x[tuple(index)]


def _resize(args: list[Any], a: dict[str, Any]) -> torch.Tensor:
    x = args[0]
    mode = a.get("mode", b"nearest").decode()
    transform = a.get("coordinate_transformation_mode", b"half_pixel").decode()
    nearest = a.get("nearest_mode", b"round_prefer_floor").decode()
    if not (mode == "nearest" and transform == "asymmetric" and nearest == "floor"):
        msg = f"Resize mode={mode}/{transform}/{nearest} is not supported"
        raise NotImplementedError(msg)
    sizes = args[3] if len(args) > 3 and args[3] is not None and args[3].numel() else None
    if sizes is not None:
        size = _ints(sizes)[2:]
    else:
        scales = args[2].tolist()
        size = [int(np.floor(d * s)) for d, s in zip(x.shape[2:], scales[2:], strict=True)]
    # torch's "nearest" is ONNX nearest + asymmetric + floor.
    return F.interpolate(x, size=size, mode="nearest")


def _gemm(args: list[Any], a: dict[str, Any]) -> torch.Tensor:
    left = args[0].t() if a.get("transA", 0) else args[0]
    right = args[1].t() if a.get("transB", 0) else args[1]
    out = a.get("alpha", 1.0) * (left @ right)
    if len(args) > 2 and args[2] is not None:
        out = out + a.get("beta", 1.0) * args[2]
    return out


def _batch_norm(args: list[Any], a: dict[str, Any]) -> torch.Tensor:
    x, scale, bias, mean, var = args[:5]
    return F.batch_norm(x, mean, var, scale, bias, False, 0.0, a.get("epsilon", 1e-5))


def _flatten(args: list[Any], a: dict[str, Any]) -> torch.Tensor:
    x = args[0]
    axis = a.get("axis", 1) % (x.dim() + 1) if x.dim() else 0
    lead = int(np.prod(x.shape[:axis])) if axis else 1
    return x.reshape(lead, -1)


def _shape(args: list[Any], a: dict[str, Any]) -> torch.Tensor:
    return torch.tensor(list(args[0].shape), dtype=torch.int64)


OPS: dict[str, Op] = {
    "Conv": _conv, "MaxPool": _pool("max"), "AveragePool": _pool("avg"),
    "Relu": lambda x, a: F.relu(x[0]), "Sigmoid": lambda x, a: torch.sigmoid(x[0]),
    "PRelu": lambda x, a: torch.where(x[0] >= 0, x[0], x[0] * x[1]),
    "Add": lambda x, a: x[0] + x[1], "Sub": lambda x, a: x[0] - x[1],
    "Mul": lambda x, a: x[0] * x[1], "Clip": _clip, "Reshape": _reshape,
    "Transpose": lambda x, a: x[0].permute(a["perm"]), "Shape": _shape, "Gather": _gather,
    "Unsqueeze": _unsqueeze, "Slice": _slice, "Concat": lambda x, a: torch.cat(x, a["axis"]),
    "Resize": _resize, "Gemm": _gemm, "BatchNormalization": _batch_norm, "Flatten": _flatten,
    "Dropout": lambda x, a: x[0], "Identity": lambda x, a: x[0],
}


class OnnxModule(torch.nn.Module):
    """An ONNX graph executed node by node with torch operations (inference only)."""

    def __init__(self, model: onnx.ModelProto) -> None:
        super().__init__()
        graph = model.graph
        missing = sorted({n.op_type for n in graph.node if n.op_type not in OPS
                          and n.op_type != "Constant"})
        if missing:
            msg = f"ops not supported by the torch backend: {', '.join(missing)}"
            raise NotImplementedError(msg)
        tensors = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        self._nodes: list[tuple[str, list[str], list[str], dict[str, Any]]] = []
        for node in graph.node:
            attrs = {at.name: helper.get_attribute_value(at) for at in node.attribute}
            inputs = list(node.input)
            if node.op_type == "Constant":
                tensors[node.output[0]] = numpy_helper.to_array(attrs["value"])
                continue
            if node.op_type == "Clip":
                # Bounds as Python floats: reading them from device tensors at every call
                # would cost a GPU -> host copy per Clip.
                for key, name in zip(("min", "max"), inputs[1:3], strict=False):
                    if name:
                        attrs[key] = float(tensors[name])
                inputs = inputs[:1]
            self._nodes.append((node.op_type, inputs, list(node.output), attrs))
        self._ints: dict[str, torch.Tensor] = {}
        self._floats: dict[str, str] = {}
        for i, (name, array) in enumerate(tensors.items()):
            if np.issubdtype(array.dtype, np.floating):
                self.register_buffer(f"c{i}", torch.from_numpy(array.astype(np.float32)))
                self._floats[name] = f"c{i}"
            else:
                self._ints[name] = torch.from_numpy(np.array(array, dtype=np.int64))
        self._input = next(v.name for v in graph.input if v.name not in tensors)
        self._outputs = [o.name for o in graph.output]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """All graph outputs for input ``x``."""
        env: dict[str, Any] = {self._input: x, **self._ints}
        env.update({name: getattr(self, attr) for name, attr in self._floats.items()})
        for op, inputs, outputs, attrs in self._nodes:
            result = OPS[op]([env[i] if i else None for i in inputs], attrs)
            env[outputs[0]] = result
        return [env[name] for name in self._outputs]
