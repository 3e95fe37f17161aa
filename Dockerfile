# streamproc. CPU image by default:
#   docker build -t streamproc .
# CUDA image: onnxruntime-gpu with NVIDIA's CUDA 13 and cuDNN 9 libraries from their pip
# wheels (onnxruntime-gpu[cuda,cudnn]), loaded at start by onnxruntime.preload_dlls(). The
# host needs an NVIDIA driver for CUDA 13 (>= 580) and the NVIDIA container toolkit:
#   docker build --build-arg RUNTIME=gpu -t streamproc:gpu .
#   docker run --rm --gpus all --entrypoint python streamproc:gpu \
#       scripts/check_providers.py --require cuda
ARG RUNTIME=cpu

FROM python:3.11-slim AS base
RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY streamproc ./streamproc
COPY configs ./configs
COPY scripts/check_providers.py ./scripts/

FROM base AS runtime-cpu
RUN pip install --no-cache-dir ".[cpu,broker]" \
    && pip install --no-cache-dir --no-deps insightface==2.1

FROM base AS runtime-gpu
# What the NVIDIA container toolkit mounts into the container: the GPUs, and the driver's
# compute libraries (libcuda.so.1, the one library the image cannot ship).
ENV NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility
# The build fails here unless the CUDA provider is compiled in and every library it links
# (CUDA runtime, cuBLAS, cuFFT, cuRAND, cuDNN) is present; only the driver's comes later.
RUN pip install --no-cache-dir ".[gpu,broker]" \
    && pip install --no-cache-dir --no-deps insightface==2.1 \
    && python scripts/check_providers.py --build

FROM runtime-${RUNTIME}
# Model packs are not baked in (licences); mount them at /models/models/<pack>/.
VOLUME ["/models", "/data"]
EXPOSE 8085
HEALTHCHECK --interval=30s --timeout=5s CMD python -c \
  "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8085/health').status==200 else 1)"
# Authentication on: configs/docker.yaml reads access keys from /run/secrets/streamproc_keys
# (mount it, see docs/security.md); without keys the daemon refuses to start.
ENTRYPOINT ["streamproc", "serve", "--config", "/app/configs/docker.yaml", "--model-root", "/models", "--data-dir", "/data"]
