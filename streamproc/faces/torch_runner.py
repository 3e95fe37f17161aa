"""PyTorch execution of the ONNX packs: the GPU backend where onnxruntime-gpu is not there.

Same interface as :class:`streamproc.faces.runner.OrtRunner`. The graph is read with
``onnx``, rewritten like onnxruntime's (batch axis, dequantised weights) and executed by
:class:`streamproc.faces.torch_graph.OnnxModule`. Needs the optional extra
``streamproc[torch]``; torch is imported only in :meth:`TorchRunner.load`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx

from streamproc.faces.errors import ModelPackError
from streamproc.faces.graphs import fold_dequantize
from streamproc.faces.providers import ExecutionOptions, ProviderStatus
from streamproc.faces.runner import GraphTransform, RunnerBase, load_graph


def torch_device(choice: str | tuple[str, ...], device_id: int, cuda_ok: bool) -> str:
    """``cuda:N`` when asked for (or ``auto``) and available, else ``cpu``."""
    names = [choice] if isinstance(choice, str) else [c.lower() for c in choice]
    wants_gpu = any(n in ("auto", "cuda", "tensorrt") or n.startswith(("cuda", "tensorrt"))
                    for n in names)
    return f"cuda:{device_id}" if wants_gpu and cuda_ok else "cpu"


class TorchRunner(RunnerBase):
    """One ONNX model as a torch module on ``cuda:N`` (when available) or the CPU."""

    def __init__(self, path: Path, options: ExecutionOptions | None = None,
                 transform: GraphTransform | None = None) -> None:
        super().__init__(path, options, transform)
        # torch's types: torch is optional and imported only in load().
        self._module: Any = None
        self._device: Any = None
        self._dtype: Any = None
        self._output_shape: list[int | str | None] = []

    def load(self) -> None:
        """Read and convert the graph, move it to the device (half precision if asked)."""
        try:
            import torch

            from streamproc.faces.torch_graph import OnnxModule
        except ImportError as exc:
            msg = (f"models.backend torch needs PyTorch ({exc}): pip install "
                   f"'streamproc[torch]'")
            raise ModelPackError(msg) from exc

        def transform(model: onnx.ModelProto) -> onnx.ModelProto:
            model = self._transform(model) if self._transform is not None else model
            return fold_dequantize(model)

        graph = load_graph(self.path, transform)
        assert graph is not None
        cuda_ok = torch.cuda.is_available()
        device = torch_device(self.options.providers, self.options.device_id, cuda_ok)
        half = self.options.fp16 and device.startswith("cuda")
        module = OnnxModule(graph).eval().to(device)
        self._module = module.half() if half else module
        self._device, self._dtype = torch.device(device), torch.float16 if half else torch.float32
        dims = graph.graph.output[0].type.tensor_type.shape.dim
        self._output_shape = [d.dim_value if d.HasField("dim_value") else d.dim_param
                              for d in dims]
        gpu = torch_device(self.options.providers, self.options.device_id, True)
        requested = [f"torch:{gpu}", "torch:cpu"] if gpu != "cpu" else ["torch:cpu"]
        fallback = None
        if device == "cpu" and gpu != "cpu" and self.options.providers != "auto":
            fallback = (f"CUDA was requested but torch {torch.__version__} has no usable GPU "
                        f"(torch.cuda.is_available() is False); running on torch:cpu")
        self._report(ProviderStatus(
            model=self.path.name, backend=f"torch {torch.__version__}",
            requested=requested, providers=[f"torch:{device}"], fp16=half,
            fallback=fallback))

    def output_shape(self) -> list[int | str | None]:
        """Shape of the first output as the model declares it (may hold symbols)."""
        return list(self._output_shape)

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """Run the model on one input tensor; all outputs as float32 numpy arrays."""
        import torch

        module = self._loaded(self._module)
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch)).to(self._device, self._dtype)
            outputs = module(x)
            return [o.float().cpu().numpy() for o in outputs]
