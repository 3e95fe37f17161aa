"""Persistent state, input image limits, and where ``S3Object`` references are read from."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from streamproc.config.base import Secret, Section


class ImagesConfig(Section):
    """Limits on input images."""

    max_pixels: int = Field(40_000_000, gt=0, description="Reject larger images unread.")
    s3_max_bytes: int = Field(15 * 1024 * 1024, gt=0, description="S3 image size limit.")
    max_concurrent_decodes: int = Field(
        2, ge=1, description="Images read and decoded at once (the rest wait): peak decode "
        "memory is about this many times the largest image's decode.")


class ObjectsConfig(Section):
    """Where ``S3Object`` references are read from, and where jobs write their results."""

    local_root: Path | None = Field(
        None, description="Serve S3Object from ROOT/bucket/name (when no s3_endpoint is set).")
    s3_endpoint: str | None = Field(
        None, pattern=r"^https?://", description="An S3-compatible endpoint (AWS S3, MinIO, "
        "Ceph) read through boto3; takes precedence over local_root.")
    s3_region: str = Field("us-east-1", description="Region for request signing.")
    s3_access_key_id: str | None = Field(
        None, description="Access key; null = boto3's usual chain (environment, ~/.aws).")
    s3_secret_access_key: Secret | None = Field(None, description="Secret (or env:VARNAME).")
    s3_addressing_style: Literal["path", "virtual", "auto"] = Field(
        "path", description="path suits MinIO/Ceph/moto; virtual suits AWS.")
    timeout_s: float = Field(10.0, gt=0, description="Connect and read timeout per request.")
    buckets: list[str] | None = Field(
        None, description="S3Object references may name only these buckets (every read: "
        "images, videos, manifests and their source-refs); null = any.")
    output_buckets: list[str] | None = Field(
        None, description="Jobs write results only into these buckets; null = any bucket the "
        "store has.")


class StorageConfig(Section):
    """Persistent state."""

    data_dir: Path = Field(Path("~/.streamproc"), description="SQLite + indexes live here.")
    max_collections: int = Field(
        1000, gt=0, description="CreateCollection refuses more (ServiceQuotaExceededException).")
    max_faces_per_collection: int = Field(
        20_000_000, gt=0, description="IndexFaces refuses faces beyond this in one collection "
        "(ServiceQuotaExceededException).")
    max_users_per_collection: int = Field(
        10_000_000, gt=0, description="CreateUser refuses more (ServiceQuotaExceededException).")
    flat_max_elements: int = Field(
        12_800_000, gt=0, description="Exact search while faces x dim stays under this; an "
        "IVF index (rebuilt in the background) above it.")
    ivf_nprobe: int = Field(32, ge=1, description="Inverted lists searched per IVF query.")
    faiss_threads: int = Field(1, ge=1, description="OpenMP threads for FAISS (searches are "
                               "small; more threads spin-wait).")
