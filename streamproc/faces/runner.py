"""Execution of ONNX models behind one small interface, with onnxruntime as the default.

A runner owns one model on one device: ``load()`` reads it (constructors do no I/O),
``run()`` takes one input tensor and returns every output as numpy, ``status`` says which
provider really runs it. :class:`OrtRunner` is onnxruntime; ``torch_runner.TorchRunner``
runs the same graphs in PyTorch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import onnx

from streamproc.faces.providers import (
    CPU,
    ExecutionOptions,
    ProviderStatus,
    ort_fallback,
    ort_providers,
    resolve_providers,
    wanted_providers,
)

logger = logging.getLogger(__name__)
GraphTransform = Callable[[onnx.ModelProto], onnx.ModelProto]
T = TypeVar("T")

__all__ = ["GraphTransform", "OrtRunner", "Runner", "RunnerBase", "load_graph",
           "resolve_providers"]


class Runner(Protocol):
    """What the detector and embedder need from an execution backend."""

    path: Path

    def load(self) -> None:
        """Read the model and place it on its device."""

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """Run the model on one input tensor; every output, as float32 numpy arrays."""

    def output_shape(self) -> list[int | str | None]:
        """Shape of the first output as the model declares it (may hold symbols)."""

    @property
    def status(self) -> ProviderStatus:
        """The provider asked for and the one actually running (after :meth:`load`)."""

    @property
    def providers(self) -> list[str]:
        """Providers the loaded model runs on, best first."""


def load_graph(path: Path, transform: GraphTransform | None) -> onnx.ModelProto | None:
    """The model, rewritten in memory by ``transform``; None when there is nothing to do."""
    if not path.is_file():
        msg = f"model file not found: {path}"
        raise FileNotFoundError(msg)
    return transform(onnx.load(str(path))) if transform is not None else None


class RunnerBase:
    """What every runner shares: its file, placement options, graph rewrite and status."""

    def __init__(self, path: Path, options: ExecutionOptions | None,
                 transform: GraphTransform | None) -> None:
        self.path = Path(path)
        self.options = options or ExecutionOptions()
        self._transform = transform
        self._status: ProviderStatus | None = None

    def _loaded(self, value: T | None) -> T:
        """``value``, or a clear error when :meth:`load` has not run yet."""
        if value is None:
            msg = f"runner for {self.path.name} is not loaded"
            raise RuntimeError(msg)
        return value

    def _report(self, status: ProviderStatus) -> None:
        self._status = status
        log_status(status)

    @property
    def status(self) -> ProviderStatus:
        """The provider asked for and the one actually running."""
        return self._loaded(self._status)

    @property
    def providers(self) -> list[str]:
        """Providers the loaded model runs on, best first."""
        return self.status.providers


class OrtRunner(RunnerBase):
    """Owns one ``InferenceSession``; no I/O until :meth:`load`.

    onnxruntime's ``run`` is thread-safe, so several API threads and processors may
    share a runner without a lock.
    """

    def __init__(self, path: Path, options: ExecutionOptions | None = None,
                 session_config: dict[str, str] | None = None,
                 transform: GraphTransform | None = None) -> None:
        super().__init__(path, options, transform)
        self._config = dict(session_config or {})
        self._session: Any = None  # an onnxruntime.InferenceSession (untyped library)

    def load(self) -> None:
        """Create the session (reads the model file) and check where it really runs."""
        import onnxruntime as ort

        graph = load_graph(self.path, self._transform)
        available = ort.get_available_providers()
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if self.options.intra_op_threads:
            options.intra_op_num_threads = self.options.intra_op_threads
        # Idle intra-op threads spin by default, burning cores that decoding and the other
        # stages need when inference is one of several busy stages (streaming).
        config = {"session.intra_op.allow_spinning": "0",
                  "session.inter_op.allow_spinning": "0", **self._config}
        for key, value in config.items():
            options.add_session_config_entry(key, value)
        providers = ort_providers(self.options, available)
        if any(name != CPU for name, _ in providers) and hasattr(ort, "preload_dlls"):
            # onnxruntime-gpu[cuda,cudnn] brings CUDA and cuDNN as NVIDIA's pip wheels, which
            # the dynamic linker does not search: onnxruntime's documented preload loads them
            # (a no-op for what is already loaded, e.g. from a CUDA base image or torch).
            ort.preload_dlls()
        model: bytes | str = graph.SerializeToString() if graph is not None else str(self.path)
        self._session = ort.InferenceSession(model, options, providers=providers)
        actual = self._session.get_providers()
        self._report(ProviderStatus(
            model=self.path.name, backend=f"onnxruntime {ort.__version__}",
            requested=wanted_providers(self.options.providers), providers=actual,
            fp16=self.options.fp16 and actual[0] == "TensorrtExecutionProvider",
            fallback=ort_fallback(self.options.providers, available, actual, ort.__version__)))
        if self.options.fp16 and not self.status.fp16:
            logger.warning("%s: fp16 applies with TensorRT (or the torch backend on CUDA); "
                           "%s runs the graph as stored", self.path.name, actual[0])

    @property
    def session(self) -> Any:
        """The loaded session; raises if :meth:`load` was not called."""
        return self._loaded(self._session)

    def input_name(self) -> str:
        """Name of the single input tensor."""
        return self.session.get_inputs()[0].name

    def output_shape(self) -> list[int | str | None]:
        """Shape of the first output as the model declares it (may hold symbols)."""
        return list(self.session.get_outputs()[0].shape)

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """Run the model on one input tensor; return all outputs."""
        return self.session.run(None, {self.input_name(): batch})


def log_status(status: ProviderStatus) -> None:
    """One line per model at start; a loud one when the GPU asked for is not in use."""
    if status.fallback is not None:
        logger.error("GPU NOT IN USE for %s: %s", status.model, status.fallback)
    else:
        logger.info("%s runs on %s (%s%s)", status.model, status.provider, status.backend,
                    ", fp16" if status.fp16 else "")
