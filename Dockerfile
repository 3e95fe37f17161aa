# streamproc: CPU image by default; build with --build-arg RUNTIME=gpu for onnxruntime-gpu.
FROM python:3.11-slim AS base
ARG RUNTIME=cpu
RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY streamproc ./streamproc
COPY configs ./configs
RUN pip install --no-cache-dir ".[${RUNTIME},broker]" \
    && pip install --no-cache-dir --no-deps insightface==2.1
# Model packs are not baked in (licences); mount them at /models/models/<pack>/.
VOLUME ["/models", "/data"]
EXPOSE 8085
HEALTHCHECK --interval=30s --timeout=5s CMD python -c \
  "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8085/health').status==200 else 1)"
# Authentication on: configs/docker.yaml reads access keys from /run/secrets/streamproc_keys
# (mount it, see README "Security"); without keys the daemon refuses to start.
ENTRYPOINT ["streamproc", "serve", "--config", "/app/configs/docker.yaml", "--model-root", "/models", "--data-dir", "/data"]
