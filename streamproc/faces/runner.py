"""Execution of ONNX models: one class owns an onnxruntime session and its providers."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

_CUDA = "CUDAExecutionProvider"
_TRT = "TensorrtExecutionProvider"
_CPU = "CPUExecutionProvider"


def resolve_providers(choice: str | Sequence[str], available: Sequence[str]) -> list[str]:
    """Turn the configured provider choice into an explicit, available list.

    ``auto`` puts CUDA first when this onnxruntime build has it, and always ends with
    CPU so that a machine without a GPU (CI) still runs.
    """
    if isinstance(choice, str):
        wanted = {
            "auto": [_CUDA, _CPU],
            "cpu": [_CPU],
            "cuda": [_CUDA, _CPU],
            "tensorrt": [_TRT, _CUDA, _CPU],
        }[choice]
    else:
        wanted = list(choice)
    chosen = [p for p in wanted if p in available]
    if not chosen:
        msg = f"none of the providers {wanted} is available (onnxruntime has {list(available)})"
        raise RuntimeError(msg)
    return chosen


class OrtRunner:
    """Owns one ``InferenceSession``; no I/O until :meth:`load`.

    onnxruntime's ``run`` is thread-safe, so several API threads and processors may
    share a runner without a lock.
    """

    def __init__(
        self,
        path: Path,
        providers: str | Sequence[str] = "auto",
        intra_op_threads: int = 0,
        session_config: dict[str, str] | None = None,
    ) -> None:
        self.path = Path(path)
        self._choice = providers
        self._threads = intra_op_threads
        self._config = dict(session_config or {})
        self._session: Any = None
        self.providers: list[str] = []

    def load(self) -> None:
        """Create the session (reads the model file)."""
        import onnxruntime as ort

        if not self.path.is_file():
            msg = f"model file not found: {self.path}"
            raise FileNotFoundError(msg)
        providers = resolve_providers(self._choice, ort.get_available_providers())
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if self._threads:
            options.intra_op_num_threads = self._threads
        # Idle intra-op threads spin by default, burning cores that decoding and the other
        # stages need when inference is one of several busy stages (streaming).
        config = {"session.intra_op.allow_spinning": "0",
                  "session.inter_op.allow_spinning": "0", **self._config}
        for key, value in config.items():
            options.add_session_config_entry(key, value)
        self._session = ort.InferenceSession(str(self.path), options, providers=providers)
        self.providers = self._session.get_providers()
        logger.info("loaded %s with providers %s", self.path.name, self.providers)

    @property
    def session(self) -> Any:
        """The loaded session; raises if :meth:`load` was not called."""
        if self._session is None:
            msg = f"runner for {self.path.name} is not loaded"
            raise RuntimeError(msg)
        return self._session

    def input_name(self) -> str:
        """Name of the single input tensor."""
        return self.session.get_inputs()[0].name

    def output_shape(self) -> list[Any]:
        """Shape of the first output as the model declares it (may hold symbols)."""
        return list(self.session.get_outputs()[0].shape)

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """Run the model on one input tensor; return all outputs."""
        return self.session.run(None, {self.input_name(): batch})
