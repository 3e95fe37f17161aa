"""Execution providers: what was asked for, what the runtime offers, what actually runs.

onnxruntime silently runs a session on CPU when the CUDA or TensorRT provider cannot load
(for example ``onnxruntime-gpu`` without the CUDA/cuDNN libraries). Runners therefore
compare the provider asked for with the one the session really got, and say why they differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamproc.config import ModelsConfig, PackConfig

CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
CPU = "CPUExecutionProvider"
_WANTED = {"auto": [CUDA, CPU], "cpu": [CPU], "cuda": [CUDA, CPU],
           "tensorrt": [TENSORRT, CUDA, CPU]}


@dataclass(frozen=True)
class ExecutionOptions:
    """Everything a runner needs to place a model, merged from the models and pack config."""

    providers: str | tuple[str, ...] = "auto"
    device_id: int = 0
    fp16: bool = False
    trt_engine_cache_dir: Path | None = None
    trt_workspace_mb: int = 2048
    intra_op_threads: int = 0

    @classmethod
    def for_pack(cls, models: ModelsConfig, pack: PackConfig) -> ExecutionOptions:
        """Pack settings where given, else the models-wide defaults."""
        execution = pack.execution
        choice = execution.providers if execution.providers is not None else models.providers
        return cls(
            providers=choice if isinstance(choice, str) else tuple(choice),
            device_id=models.device_id if execution.device_id is None else execution.device_id,
            fp16=execution.fp16,
            trt_engine_cache_dir=execution.trt_engine_cache_dir,
            trt_workspace_mb=execution.trt_workspace_mb,
            intra_op_threads=models.intra_op_threads,
        )


def wanted_providers(choice: str | Sequence[str]) -> list[str]:
    """The providers a choice asks for, best first (before looking at what is installed)."""
    return list(_WANTED[choice]) if isinstance(choice, str) else list(choice)


def resolve_providers(choice: str | Sequence[str], available: Sequence[str]) -> list[str]:
    """Turn the configured provider choice into an explicit, available list.

    ``auto`` puts CUDA first when this onnxruntime build has it, and always ends with
    CPU so that a machine without a GPU (CI) still runs.
    """
    wanted = wanted_providers(choice)
    chosen = [p for p in wanted if p in available]
    if not chosen:
        msg = f"none of the providers {wanted} is available (onnxruntime has {list(available)})"
        raise RuntimeError(msg)
    return chosen


def ort_providers(options: ExecutionOptions,
                  available: Sequence[str]) -> list[tuple[str, dict[str, str]]]:
    """(provider, options) pairs for ``InferenceSession(providers=...)``."""
    device = str(options.device_id)
    out: list[tuple[str, dict[str, str]]] = []
    for name in resolve_providers(options.providers, available):
        if name == TENSORRT:
            trt = {"device_id": device, "trt_fp16_enable": str(options.fp16),
                   "trt_max_workspace_size": str(options.trt_workspace_mb * 1024 * 1024)}
            if options.trt_engine_cache_dir is not None:
                cache = Path(options.trt_engine_cache_dir).expanduser()
                trt.update(trt_engine_cache_enable="True", trt_engine_cache_path=str(cache))
            out.append((name, trt))
        elif name == CUDA:
            out.append((name, {"device_id": device}))
        else:
            out.append((name, {}))
    return out


def ort_fallback(choice: str | Sequence[str], available: Sequence[str],
                 actual: Sequence[str], version: str) -> str | None:
    """Why the session does not run on the provider asked for, or None when it does.

    ``auto`` on an onnxruntime without CUDA is not a fallback (CPU is what auto means
    there); ``auto`` with CUDA compiled in but not loading is.
    """
    first = wanted_providers(choice)[0]
    running = actual[0] if actual else "nothing"
    if first == CPU or running == first:
        return None
    if first not in available:
        if choice == "auto":
            return None
        return (f"{first} was requested but this onnxruntime ({version}) does not have it "
                f"(it has {', '.join(available)}): install onnxruntime-gpu (scripts/setup.sh "
                f"--gpu, or the CUDA image); running on {running}")
    return (f"{first} is in onnxruntime {version} but did not load (no GPU or driver visible, "
            f"or CUDA, cuDNN or TensorRT libraries missing or not matching: see onnxruntime's "
            f"error above and run scripts/check_providers.py); running on {running}")


def is_gpu(provider: str) -> bool:
    """Whether a provider name (onnxruntime's, or ``torch:<device>``) runs on a GPU."""
    return provider in (CUDA, TENSORRT) or provider.startswith("torch:cuda")


@dataclass(frozen=True)
class ProviderStatus:
    """What one runner asked for and got; reported at start, in /health and as a metric."""

    model: str
    backend: str
    requested: list[str]
    providers: list[str]
    fp16: bool
    fallback: str | None = None

    @property
    def provider(self) -> str:
        """The provider that runs most of the graph (the first one the session kept)."""
        return self.providers[0] if self.providers else "none"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"model": self.model, "backend": self.backend, "requested": self.requested,
                "providers": self.providers, "provider": self.provider,
                "gpu": is_gpu(self.provider), "fp16": self.fp16, "fallback": self.fallback}
