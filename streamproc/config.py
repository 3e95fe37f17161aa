"""Typed daemon configuration (pydantic, unknown keys rejected).

Every default here is repeated, with a comment, in ``configs/streamproc.yaml``.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(_Base):
    """The HTTP control API."""

    host: str = Field("127.0.0.1", description="Bind address; loopback unless told otherwise.")
    port: int = Field(8085, ge=0, le=65535, description="TCP port; 0 picks a free one.")
    max_request_bytes: int = Field(
        8 * 1024 * 1024, gt=0, description="Largest request body accepted (5 MB image as base64)."
    )
    worker_threads: int = Field(8, ge=1, description="Threads that run API operations.")
    shutdown_timeout_s: float = Field(5.0, gt=0, description="Bound on graceful HTTP shutdown.")
    max_concurrent_requests: int = Field(
        64, ge=1, description="Requests in progress beyond this get LimitExceededException "
        "(counted once the body is read and its signature verified).")
    max_body_reads: int = Field(
        128, ge=1, description="Request bodies arriving at once beyond this get "
        "LimitExceededException (each holds up to max_request_bytes). A body that arrives "
        "with its headers is read at once and takes no place here.")
    max_body_reads_per_client: int = Field(
        16, ge=1, description="Of max_body_reads, at most this many from one client address "
        "(an IPv4 address, an IPv6 /64); above boto3's pool of 10 connections, so one "
        "client uploading in parallel is not refused; behind a proxy every client is the "
        "proxy's address.")
    max_body_reads_per_key: int | None = Field(
        None, ge=1, description="With auth on, of max_body_reads at most this many claiming "
        "one access key id (not yet verified); null = max_body_reads / 8, at least 1.")
    min_body_rate_bytes_s: float = Field(
        4096.0, ge=0, description="After body_rate_grace_s a body must have arrived at this "
        "average rate or faster, else RequestTimeoutException (408) and the connection is "
        "closed; 0 = no minimum (body_timeout_s alone).")
    body_rate_grace_s: float = Field(
        2.0, gt=0, description="How long a body may take before min_body_rate_bytes_s counts.")
    max_connections: int = Field(
        1024, ge=1, description="Open connections beyond this are closed as they arrive "
        "(the open-files limit is raised to fit at start, as far as the hard limit allows).")
    max_connections_per_client: int = Field(
        128, ge=1, description="Of max_connections, at most this many from one client address "
        "(an IPv4 address, an IPv6 /64).")
    body_timeout_s: float = Field(
        60.0, gt=0, description="A request body must arrive whole within this; "
        "else RequestTimeoutException (408) and the connection is closed. Also bounds the "
        "unread rest of a body refused early (too large, body budget full).")
    header_timeout_s: float = Field(
        20.0, gt=0, description="A request's line and headers must arrive within this (from "
        "connect, or from its first byte on a kept-alive connection); else it is closed.")
    keep_alive_s: int = Field(
        75, ge=1, description="Idle keep-alive connections are closed after this; longer "
        "than clients' pools keep them, so a client never reuses one being closed.")
    tls_certfile: Path | None = Field(None, description="PEM certificate: serve HTTPS.")
    tls_keyfile: Path | None = Field(None, description="PEM private key for tls_certfile.")
    region: str = Field("us-east-1", description="Region written into ARNs.")
    account_id: str = Field(
        "000000000000", pattern=r"^\d{12}$", description="Account id written into ARNs."
    )
    allow_unauthenticated: bool = Field(
        False, description="Serve a non-loopback address with auth off (warned at every start)."
    )


def resolve_secret(value: str) -> str:
    """``env:NAME`` reads the environment, ``file:PATH`` a (mounted secret) file, at load time.

    Errors name the variable or file, never the value.
    """
    if value.startswith("env:"):
        name = value[4:]
        resolved = os.environ.get(name)
        if resolved is None:
            msg = f"environment variable {name} is not set"
            raise ValueError(msg)
        return resolved
    if value.startswith("file:"):
        path = Path(value[5:]).expanduser()
        try:
            return path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            msg = f"secret file {path}: {exc.strerror}"
            raise ValueError(msg) from None
    return value


Secret = Annotated[str, AfterValidator(resolve_secret)]
# Like Secret, but masked in repr/str, so a printed or logged config never shows it.
HiddenSecret = Annotated[SecretStr, BeforeValidator(
    lambda v: resolve_secret(v) if isinstance(v, str) else v)]


class AuthConfig(_Base):
    """API authentication."""

    enabled: bool = Field(False, description="Verify AWS SigV4 signatures on every request.")
    access_keys: dict[str, Secret] = Field(
        default_factory=dict, description="access key id -> secret (or env:VARNAME, file:PATH).")
    access_keys_file: Path | None = Field(
        None, description="YAML mapping access key id -> secret (a mounted secret); merged "
        "with access_keys and re-read on SIGHUP.")
    policy_file: Path | None = Field(
        None, description="YAML/JSON mapping access key id -> IAM policy document; keys "
        "without one have full access. Re-read on SIGHUP.")
    max_clock_skew_s: float = Field(900.0, gt=0, description="Accepted X-Amz-Date skew.")


class CalibrationKnot(_Base):
    """One point of the cosine -> Similarity mapping."""

    cosine: float = Field(ge=-1.0, le=1.0)
    similarity: float = Field(ge=0.0, le=100.0)


class ConfidenceKnot(_Base):
    """One point of the detector score -> Confidence mapping."""

    score: float = Field(ge=0.0, le=1.0)
    confidence: float = Field(ge=0.0, le=100.0)


def _increasing(pairs: list[tuple[float, float]], name: str) -> None:
    """Knots must rise strictly in x and never fall in y (so the mapping is monotonic)."""
    if len(pairs) < 2:
        msg = f"{name} needs at least two knots"
        raise ValueError(msg)
    for (x0, y0), (x1, y1) in itertools.pairwise(pairs):
        if not (x1 > x0 and y1 >= y0):
            msg = f"{name} knots must increase"
            raise ValueError(msg)


# SCRFD score -> Confidence. Calibrated on det_500m over every photo and clip frame of
# shared/data (README: Confidence calibration): all 210 faces of 40 px or more score
# 0.713-0.890 (Confidence >= 99.1); half-hidden faces 0.57-0.71 (78-99); hands and clothing
# 0.20-0.28, below the detection threshold, which (0.5 by default) maps to Confidence 50.
_DET_CONFIDENCE = [(0.0, 0.0), (0.5, 50.0), (0.6, 90.0), (0.7, 99.0), (0.8, 99.9), (1.0, 100.0)]


def default_confidence() -> list[ConfidenceKnot]:
    """The built-in score -> Confidence knots (SCRFD detectors)."""
    return [ConfidenceKnot(score=s, confidence=c) for s, c in _DET_CONFIDENCE]


ProviderChoice = Literal["auto", "cpu", "cuda", "tensorrt"] | list[str]


class ExecutionConfig(_Base):
    """How one pack's models execute on the accelerator; unset fields take ``models.*``."""

    providers: ProviderChoice | None = Field(
        None, description="Overrides models.providers for this pack.")
    device_id: int | None = Field(None, ge=0, description="GPU index; null = models.device_id.")
    fp16: bool = Field(
        False, description="Half precision: TensorRT (trt_fp16_enable) and the torch backend on "
        "CUDA. The CUDA provider alone runs the graphs as stored (fp32).")
    trt_engine_cache_dir: Path | None = Field(
        None, description="TensorRT engine cache; null = rebuild the engines at every start.")
    trt_workspace_mb: int = Field(2048, gt=0, description="TensorRT builder workspace (MiB).")


class PackConfig(_Base):
    """A model pack: an SCRFD detector and an ArcFace-style recogniser, plus calibration."""

    detector: str = Field(description="Detector file name inside the pack folder.")
    recognizer: str = Field(description="Recogniser file name inside the pack folder.")
    det_input_size: tuple[int, int] | None = Field(
        None, description="Fixed detector input (w, h); null = fit each image's aspect.")
    det_max_side: int = Field(640, ge=32, description="Longest detector input side (null size).")
    det_upscale: bool = Field(False, description="Enlarge images smaller than det_max_side.")
    det_mean: float = Field(127.5, description="Detector input mean.")
    det_std: float = Field(128.0, description="Detector input std.")
    det_strides: tuple[int, ...] = Field((8, 16, 32), description="SCRFD feature strides.")
    det_anchors: int = Field(2, ge=1, description="Anchors per location.")
    det_batch: int = Field(32, ge=1, description="Largest detector batch (batched detection).")
    rec_mean: float = Field(127.5, description="Recogniser input mean (0 for raw pixels).")
    rec_std: float = Field(127.5, description="Recogniser input std (1 for raw pixels).")
    rec_input_size: int = Field(112, description="Aligned face crop side in pixels.")
    rec_batch: int = Field(8, ge=1, description="Largest recogniser batch (8 was fastest "
                           "per face on the 2-core CPU: benchmarks/bench_stages.py).")
    session_options: dict[str, str] = Field(
        default_factory=dict, description="onnxruntime session config entries."
    )
    execution: ExecutionConfig = Field(
        default_factory=ExecutionConfig, description="Providers, GPU and precision.")
    face_model_version: str = Field("7.0", pattern=r"^[0-9.]+$")
    calibration: list[CalibrationKnot] = Field(
        description="Monotonic (cosine, Similarity) knots; Similarity 80 = confident match."
    )
    confidence: list[ConfidenceKnot] = Field(
        default_factory=default_confidence,
        description="Monotonic (detector score, Confidence) knots; clear faces >= 99.")

    @field_validator("calibration")
    @classmethod
    def _monotonic(cls, knots: list[CalibrationKnot]) -> list[CalibrationKnot]:
        _increasing([(k.cosine, k.similarity) for k in knots], "calibration")
        return knots

    @field_validator("confidence")
    @classmethod
    def _monotonic_confidence(cls, knots: list[ConfidenceKnot]) -> list[ConfidenceKnot]:
        _increasing([(k.score, k.confidence) for k in knots], "confidence")
        return knots


def _knots(*pairs: tuple[float, float]) -> list[CalibrationKnot]:
    return [CalibrationKnot(cosine=c, similarity=s) for c, s in pairs]


# Knots for the 128-d test packs come from the photos in shared/data (README: Similarity).
_TEST_CALIBRATION = _knots((-1.0, 0.0), (0.0, 20.0), (0.25, 50.0), (0.40, 80.0), (0.60, 95.0),
                           (1.0, 100.0))
# ArcFace (w600k) packs: same-person cosines sit well above 0.3, impostors below 0.2.
_ARCFACE_CALIBRATION = _knots((-1.0, 0.0), (0.0, 20.0), (0.15, 50.0), (0.30, 80.0), (0.50, 95.0),
                              (1.0, 100.0))


def default_packs() -> dict[str, PackConfig]:
    """Packs known out of the box; config may add or override any of them."""
    return {
        "test_mfn": PackConfig(detector="det_500m.onnx",
                               recognizer="mobilefacenet_foamliu_128d.onnx",
                               calibration=_TEST_CALIBRATION),
        "test_sface": PackConfig(detector="det_500m.onnx",
                                 recognizer="sface_2021dec_int8bq_ortfix.onnx",
                                 rec_mean=0.0, rec_std=1.0,
                                 session_options={"session.disable_quant_qdq": "1"},
                                 calibration=_TEST_CALIBRATION),
        "buffalo_l": PackConfig(detector="det_10g.onnx", recognizer="w600k_r50.onnx",
                                calibration=_ARCFACE_CALIBRATION),
        "buffalo_s": PackConfig(detector="det_500m.onnx", recognizer="w600k_mbf.onnx",
                                calibration=_ARCFACE_CALIBRATION),
        "buffalo_sc": PackConfig(detector="det_500m.onnx", recognizer="w600k_mbf.onnx",
                                 calibration=_ARCFACE_CALIBRATION),
        # glintr100 is an ArcFace-loss ResNet-100 (Glint360K): the ArcFace knots apply.
        "antelopev2": PackConfig(detector="scrfd_10g_bnkps.onnx", recognizer="glintr100.onnx",
                                 calibration=_ARCFACE_CALIBRATION),
    }


class QualityLevel(_Base):
    """Minimum face quality for one QualityFilter level (README: Quality filter)."""

    min_confidence: float = Field(ge=0, le=100, description="Confidence below: LOW_CONFIDENCE.")
    min_face_px: int = Field(ge=0, description="Shorter box side below: SMALL_BOUNDING_BOX.")
    min_brightness: float = Field(ge=0, le=100, description="Below: LOW_BRIGHTNESS.")
    min_sharpness: float = Field(ge=0, le=100, description="Below: LOW_SHARPNESS.")
    max_abs_yaw: float = Field(ge=0, le=180, description="|Yaw| above: EXTREME_POSE.")
    max_pitch_down: float = Field(ge=0, le=180, description="Pitch below -this: EXTREME_POSE.")
    max_pitch_up: float = Field(ge=0, le=180, description="Pitch above: EXTREME_POSE.")


def _level(confidence: float, face_px: int, brightness: float, sharpness: float,
           yaw: float, down: float, up: float) -> QualityLevel:
    return QualityLevel(min_confidence=confidence, min_face_px=face_px,
                        min_brightness=brightness, min_sharpness=sharpness,
                        max_abs_yaw=yaw, max_pitch_down=down, max_pitch_up=up)


QUALITY_LEVELS = frozenset({"LOW", "AUTO", "MEDIUM", "HIGH"})


def default_quality() -> dict[str, QualityLevel]:
    """QualityFilter levels; AUTO is the one IndexFaces uses by default.

    Pose limits follow Rekognition's guidance for faces to index (yaw within 45 degrees,
    at most 30 down and 45 up) with margins for a 5-point estimate; 40 px is its minimum
    face size for images up to 1920x1080, 50 px its recommended one.
    """
    return {
        "LOW": _level(50, 20, 5, 10, yaw=75, down=60, up=60),
        "AUTO": _level(90, 40, 10, 20, yaw=55, down=40, up=50),
        "MEDIUM": _level(95, 50, 15, 35, yaw=45, down=30, up=45),
        "HIGH": _level(98, 64, 20, 55, yaw=30, down=25, up=30),
    }


class ModelsConfig(_Base):
    """Where the model packs live and how they run."""

    root: Path = Field(Path("~/.insightface"), description="insightface root: ROOT/models/PACK.")
    pack: str = Field("buffalo_l", description="Pack the daemon loads.")
    backend: Literal["onnxruntime", "torch"] = Field(
        "onnxruntime", description="onnxruntime, or PyTorch running the same ONNX graphs "
        "(extra streamproc[torch]) where onnxruntime-gpu is not available.")
    auto_pull: bool = Field(
        False, description="Download a missing pack at start-up (printing its licence). Off: "
        "nothing downloads unless the operator runs `streamproc models pull`.")
    mirror: str | None = Field(
        None, description="URL or folder holding PACK.zip archives, used by `models pull` and "
        "auto_pull instead of insightface's release URLs.")
    providers: ProviderChoice = Field(
        "auto", description="auto = CUDA first when onnxruntime has it, else CPU.")
    device_id: int = Field(0, ge=0, description="GPU index for CUDA / TensorRT / torch.")
    require_gpu: bool = Field(
        False, description="Refuse to start (exit 2) unless the models run on a GPU.")
    detect_batching: Literal["auto", "batched", "per_frame"] = Field(
        "auto", description="Detect the frames of several streams in one call; auto = "
        "batched on a GPU, per frame on CPU (measured faster there).")
    intra_op_threads: int = Field(0, ge=0, description="onnxruntime threads per session; 0=auto.")
    det_score_threshold: float = Field(0.5, ge=0, le=1, description="Detector score cut-off.")
    nms_threshold: float = Field(0.4, ge=0, le=1, description="Detector NMS IoU.")
    packs: dict[str, PackConfig] = Field(default_factory=default_packs)
    quality: dict[str, QualityLevel] = Field(
        default_factory=default_quality, description="QualityFilter levels LOW/AUTO/MEDIUM/HIGH.")

    @field_validator("quality")
    @classmethod
    def _all_levels(cls, levels: dict[str, QualityLevel]) -> dict[str, QualityLevel]:
        # A missing level would silently filter nothing (like NONE).
        if set(levels) != QUALITY_LEVELS:
            msg = f"quality needs exactly the levels {sorted(QUALITY_LEVELS)}"
            raise ValueError(msg)
        return levels


class ImagesConfig(_Base):
    """Limits on input images."""

    max_pixels: int = Field(40_000_000, gt=0, description="Reject larger images unread.")
    s3_max_bytes: int = Field(15 * 1024 * 1024, gt=0, description="S3 image size limit.")
    max_concurrent_decodes: int = Field(
        2, ge=1, description="Images read and decoded at once (the rest wait): peak decode "
        "memory is about this many times the largest image's decode.")


class ObjectsConfig(_Base):
    """Where ``S3Object`` references (images and videos) are read from."""

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


class NotificationTarget(_Base):
    """Where a job's completion notice goes."""

    topic: str = Field(min_length=1, description="Kafka topic.")
    bootstrap: str | None = Field(None, description="Cluster host:port[,...]; null = "
                                  "kafka.bootstrap.")


class JobsConfig(_Base):
    """Stored-video jobs (StartFaceDetection / StartFaceSearch)."""

    workers: int = Field(1, ge=1, description="Jobs decoded at once; the rest wait in order.")
    max_jobs: int = Field(20, ge=1, description="Jobs queued or running at once; more get "
                          "LimitExceededException (Rekognition's 20 concurrent jobs).")
    sample_fps: float = Field(5.0, gt=0, description="Frames analysed per second of video.")
    max_video_bytes: int = Field(10 * 1024 ** 3, gt=0, description="Larger objects: "
                                 "VideoTooLargeException at Start (Rekognition: 10 GB).")
    max_duration_s: float = Field(6 * 3600.0, gt=0, description="Longer videos: the job "
                                  "FAILS with VideoTooLargeException (Rekognition: 6 h).")
    max_matches: int = Field(10, ge=1, description="FaceMatches per person and timestamp.")
    embed_interval_s: float = Field(
        0.5, ge=0, description="A face tracked across sampled frames is re-embedded at most "
        "this often, in seconds of video (its latest embedding is searched at every "
        "timestamp), as processors.embed_interval_s; 0 = embed every sampled face.")
    frame_queue: int = Field(8, ge=1, description="Decoded frames waiting per job (BLOCK: "
                             "decoding waits for analysis; nothing is dropped).")
    batch_frames_beside_live: int = Field(
        1, ge=1, description="Job frames per analysis batch while stream processors run "
        "(a live frame waits at most one such batch; 1 was best for both the live latency "
        "and the job's speed in benchmarks/bench_jobs.py).")
    decode_nice: int = Field(10, ge=0, le=19, description="Niceness of job decoding threads "
                             "(Linux): live decoding gets the CPU first.")
    retention_s: float = Field(7 * 86400.0, gt=0, description="Finished jobs and their "
                               "results are deleted this long after they end (Rekognition: "
                               "7 days); their rows go an hour later, so that every cluster "
                               "node decides a reused ClientRequestToken alike.")
    max_attempts: int = Field(3, ge=1, description="A job interrupted by a daemon restart "
                              "(or in a cluster by its node leaving) starts again from the "
                              "beginning until it has been tried this often; then it FAILS. "
                              "1 = fail jobs interrupted so.")
    notification_topics: dict[str, NotificationTarget] = Field(
        default_factory=dict, description="SNS topic ARN (or topic name) -> Kafka topic and "
        "cluster; unmapped ARNs publish to their topic name on kafka.bootstrap.")


class StorageConfig(_Base):
    """Persistent state."""

    data_dir: Path = Field(Path("~/.streamproc"), description="SQLite + indexes live here.")
    max_collections: int = Field(
        1000, gt=0, description="CreateCollection refuses more (ServiceQuotaExceededException).")
    max_faces_per_collection: int = Field(20_000_000, gt=0)
    max_users_per_collection: int = Field(
        10_000_000, gt=0, description="CreateUser refuses more (ServiceQuotaExceededException).")
    flat_max_elements: int = Field(
        12_800_000, gt=0, description="Exact search while faces x dim stays under this; an "
        "IVF index (rebuilt in the background) above it.")
    ivf_nprobe: int = Field(32, ge=1, description="Inverted lists searched per IVF query.")
    faiss_threads: int = Field(1, ge=1, description="OpenMP threads for FAISS (searches are "
                               "small; more threads spin-wait).")


class KafkaSecurity(_Base):
    """How to reach one Kafka cluster: TLS and/or SASL (kafka-python's settings)."""

    protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="SSL = TLS; SASL_SSL = TLS + SASL (use it over SASL_PLAINTEXT).")
    ssl_cafile: Path | None = Field(None, description="CA bundle (PEM); system CAs if unset.")
    ssl_certfile: Path | None = Field(None, description="Client certificate (mutual TLS).")
    ssl_keyfile: Path | None = Field(None, description="Client private key (mutual TLS).")
    ssl_password: HiddenSecret | None = Field(
        None, description="Password of ssl_keyfile (or env:VAR, file:PATH).")
    ssl_check_hostname: bool = Field(True, description="Check the broker certificate's name.")
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="Needed with SASL_* protocols.")
    sasl_username: str | None = Field(None, description="SASL user.")
    sasl_password: HiddenSecret | None = Field(
        None, description="SASL password (env:VAR or file:PATH; never logged).")

    @model_validator(mode="after")
    def _complete(self) -> KafkaSecurity:
        sasl = self.protocol.startswith("SASL_")
        fields = (self.sasl_mechanism, self.sasl_username, self.sasl_password)
        if sasl and any(f is None for f in fields):
            msg = f"{self.protocol} needs sasl_mechanism, sasl_username and sasl_password"
            raise ValueError(msg)
        if not sasl and any(f is not None for f in fields):
            msg = f"sasl_* settings need a SASL_* protocol, not {self.protocol}"
            raise ValueError(msg)
        return self


class KafkaConfig(_Base):
    """Where match records go and how they are produced."""

    bootstrap: str | None = Field(
        None, description="Default cluster (host:port,...) for arn:aws:kinesis outputs.")
    linger_ms: int = Field(10, ge=0, description="Producer batching delay.")
    batch_size: int = Field(1048576, gt=0, description="Producer batch bytes per partition.")
    max_request_size: int = Field(4194304, gt=0, description="Largest produce request.")
    compression_type: Literal["gzip", "snappy", "lz4", "zstd"] | None = Field(
        "lz4", description="Record compression (lz4 ships with streamproc; snappy/zstd need "
        "their Python packages).")
    max_block_ms: int = Field(5000, gt=0, description="Longest a send may wait for metadata.")
    memory_records: int = Field(
        50000, gt=0, description="Records per cluster kept in memory; more spill to disk.")
    max_in_flight: int = Field(1000, gt=0, description="Unacknowledged records per cluster.")
    stall_s: float = Field(
        5.0, gt=0, description="No acknowledgement for this long = the cluster is down.")
    delivery_timeout_ms: int = Field(
        600000, gt=0, description="Producer's own retry window before a send fails.")
    unreachable_fail_s: float = Field(
        300.0, gt=0, description="Processors FAIL after their cluster is unreachable this long "
        "(their records stay spooled and are delivered when it returns).")
    flush_timeout_s: float = Field(5.0, gt=0, description="Flush bound at shutdown.")
    deleted_grace_s: float = Field(
        300.0, gt=0, description="Records of a processor (or job) gone this long are dropped "
        "(counted); a destination holding nothing that took no record this long is closed.")
    dead_letter_keep: int = Field(
        10000, ge=0, description="Records a cluster refused for good (illegal topic, too "
        "large) kept per cluster in the spool's dead_letter table; older ones are deleted.")
    topic_retry_max_s: float = Field(
        60.0, gt=0, description="A parked topic (missing, not authorised: its records held "
        "in order while the cluster's other topics go on) is checked again after 2 s, "
        "doubling up to this.")
    security: KafkaSecurity = Field(
        default_factory=KafkaSecurity, description="TLS/SASL for the default cluster.")
    clusters: dict[str, KafkaSecurity] = Field(
        default_factory=dict, description="TLS/SASL per other cluster, keyed by its "
        "bootstrap list exactly as kafka:// outputs name it.")

    def security_for(self, bootstrap: str) -> KafkaSecurity:
        """The settings for a cluster: its own entry, the default cluster's, or plaintext."""
        if bootstrap in self.clusters:
            return self.clusters[bootstrap]
        if bootstrap == self.bootstrap:
            return self.security
        return KafkaSecurity()


# No udp: a udp:// input listens (binds its port on every interface, takes datagrams from
# anyone), so it is allowed only where inputs.schemes lists it.
DEFAULT_MEDIA_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "srt", "tcp")
# Link-local (cloud metadata lives here) and the EC2 IPv6 metadata address.
DEFAULT_BLOCKED_NETWORKS = ("169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128")


class InputsConfig(_Base):
    """What processors (and stored-video jobs) may open: checked at Create and at connect."""

    schemes: list[str] = Field(
        default_factory=lambda: list(DEFAULT_MEDIA_SCHEMES),
        description="URL schemes a processor may open (file paths: media_roots).")
    hosts: list[str] = Field(
        default_factory=lambda: ["*"], description="Host name patterns (* and ?) a URL may "
        "name; IP literals are judged by networks only.")
    networks: list[str] = Field(
        default_factory=lambda: ["0.0.0.0/0", "::/0"],
        description="Every address a host resolves to must lie in one of these CIDRs.")
    blocked_networks: list[str] = Field(
        default_factory=lambda: list(DEFAULT_BLOCKED_NETWORKS),
        description="Refused even inside networks, unless an entry of networks names the "
        "address at least as narrowly.")
    media_roots: list[Path] = Field(
        default_factory=list, description="Directories file inputs must lie under "
        "(images.s3_local_root counts too); none = file inputs refused.")

    @field_validator("networks", "blocked_networks")
    @classmethod
    def _cidrs(cls, values: list[str]) -> list[str]:
        for value in values:
            ipaddress.ip_network(value, strict=False)  # ValueError names the bad entry
        return values

    @field_validator("schemes")
    @classmethod
    def _lower(cls, values: list[str]) -> list[str]:
        return [v.lower() for v in values]


class OutputsConfig(_Base):
    """Where processors may write records: checked at CreateStreamProcessor and Start."""

    clusters: list[str] = Field(
        default_factory=list, description="Kafka clusters (bootstrap lists, exactly as "
        "kafka:// outputs write them) processors may write to besides kafka.bootstrap and "
        "the kafka.clusters keys; none = only those.")
    topics: list[str] = Field(
        default_factory=lambda: ["*"], description="Topic name patterns (* and ?) an output "
        "may name; internal topics (_* and __*: Kafka's, Schema Registry's) and the "
        "cluster's own (ID.state, "
        "ID.placement) are refused whatever this lists.")


class ProcessorsConfig(_Base):
    """Stream processor data plane."""

    sample_fps: float = Field(5.0, gt=0, description="Frames analysed per second of video.")
    open_timeout_s: float = Field(10.0, gt=0, description="Source open timeout.")
    read_timeout_s: float = Field(5.0, gt=0, description="Source stall watchdog (no data).")
    reconnect_initial_s: float = Field(0.5, gt=0, description="First reconnect delay.")
    reconnect_max_s: float = Field(10.0, gt=0, description="Reconnect delay cap (doubling).")
    source_give_up_s: float = Field(
        300.0, gt=0, description="A source down this long fails the processor.")
    stop_timeout_s: float = Field(2.0, gt=0, description="Bound on StopStreamProcessor.")
    frame_queue: int = Field(2, ge=1, description="Frames buffered per processor (DROP_OLDEST).")
    batch_frames: int = Field(8, ge=1, description="Frames analysed together across streams.")
    emit: Literal["frame", "track"] = Field(
        "frame", description="frame = a record per analysed frame with faces; track = one "
        "record when a tracked person is first matched or the match changes. Per processor: "
        "tag streamproc:emit.")
    emit_empty_frames: bool = Field(False, description="Also publish frames with no faces.")
    embed_interval_s: float = Field(
        0.5, ge=0, description="A face tracked across frames is re-embedded at most this "
        "often (its latest embedding is searched every frame); 0 = embed every frame.")
    max_matches: int = Field(10, ge=1, description="MatchedFaces per detected face.")
    max_processors: int = Field(16, ge=1, description="LimitExceededException beyond this.")
    video_streams: dict[str, str] = Field(
        default_factory=dict, description="Kinesis-video-style ARN (or stream name) -> URL.")


class SupervisionConfig(_Base):
    """Restarts of threads that die: the shared stages and each processor's reader."""

    max_restarts: int = Field(5, ge=0, description="Restarts allowed per window, per stage "
                              "and per processor; past it the stage stays down (processors "
                              "FAILED) or the processor goes FAILED.")
    window_s: float = Field(60.0, gt=0, description="The sliding window for max_restarts.")
    backoff_initial_s: float = Field(0.5, ge=0, description="Delay before a stage's first "
                                     "restart; doubles with each recent restart.")
    backoff_max_s: float = Field(10.0, ge=0, description="Longest delay before a restart.")
    stuck_after_s: float = Field(30.0, gt=0, description="A live stage without progress for "
                                 "this long is reported stuck (/health answers 503).")


class ClusterConfig(_Base):
    """Several daemons sharing collections and processors through Kafka (cluster mode)."""

    bootstrap: str | None = Field(
        None, description="Kafka cluster (host:port,...) holding the shared state and the "
        "group membership; null = a single node with local SQLite only (--cluster).")
    id: str = Field("streamproc", pattern=r"^[A-Za-z0-9._-]{1,100}$", description="Names "
                    "the cluster's topics (ID.state, ID.placement) and consumer group.")
    node_id: str | None = Field(None, description="This node's name; null = host:port of "
                                "its API.")
    session_timeout_s: float = Field(6.0, ge=1, description="A node silent this long is "
                                     "dead to the group and its processors move.")
    heartbeat_interval_s: float = Field(1.0, gt=0, description="Group heartbeats.")
    fence_after_s: float = Field(
        3.0, ge=0, description="A node that has not reached the group for this long stops "
        "its processors (must be under session_timeout_s, so two nodes never run one "
        "processor at once); 0 = keep them running through broker outages (risking two "
        "nodes running one processor while this node is cut off).")
    placement_partitions: int = Field(16, ge=1, description="Partitions of ID.placement: "
                                      "at least the largest number of nodes.")
    replication_factor: int = Field(1, ge=1, description="Replicas of the cluster's topics "
                                    "when this node creates them (3 on a production Kafka).")
    write_timeout_s: float = Field(10.0, gt=0, description="A write (API call) waits this "
                                   "long for the log; then a retryable ThrottlingException.")
    join_timeout_s: float = Field(60.0, gt=0, description="Start-up: reach the broker, "
                                  "replay the log and join the group within this.")

    @property
    def state_topic(self) -> str:
        """The cluster's command log (every node applies its records)."""
        return f"{self.id}.state"

    @property
    def placement_topic(self) -> str:
        """The placement group's topic (and, with its epoch, the group's name)."""
        return f"{self.id}.placement"


class Config(_Base):
    """The whole daemon configuration."""

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, raw: Any) -> Any:
        """``images.s3_local_root`` (before objects were shared with videos) still works."""
        if not isinstance(raw, dict) or not isinstance(raw.get("images"), dict):
            return raw
        images = dict(raw["images"])
        if "s3_local_root" not in images:
            return raw
        root = images.pop("s3_local_root")
        objects = dict(raw.get("objects") or {})
        if objects.get("local_root") not in (None, root):
            msg = "images.s3_local_root and objects.local_root disagree; keep objects.local_root"
            raise ValueError(msg)
        objects["local_root"] = root
        return {**raw, "images": images, "objects": objects}

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        if self.auth.enabled and not (self.auth.access_keys or self.auth.access_keys_file):
            msg = "auth.enabled needs auth.access_keys or auth.access_keys_file"
            raise ValueError(msg)
        if self.auth.policy_file is not None and not self.auth.enabled:
            msg = "auth.policy_file needs auth.enabled: true (policies apply to access keys)"
            raise ValueError(msg)
        cluster = self.cluster
        if cluster.bootstrap and cluster.fence_after_s >= cluster.session_timeout_s:
            msg = "cluster.fence_after_s must be under cluster.session_timeout_s (or 0)"
            raise ValueError(msg)
        if (self.server.tls_certfile is None) != (self.server.tls_keyfile is None):
            msg = "server.tls_certfile and server.tls_keyfile go together"
            raise ValueError(msg)
        return self

    server: ServerConfig = ServerConfig()
    auth: AuthConfig = AuthConfig()
    kafka: KafkaConfig = KafkaConfig()
    processors: ProcessorsConfig = ProcessorsConfig()
    inputs: InputsConfig = InputsConfig()
    outputs: OutputsConfig = OutputsConfig()
    models: ModelsConfig = ModelsConfig()
    images: ImagesConfig = ImagesConfig()
    objects: ObjectsConfig = ObjectsConfig()
    jobs: JobsConfig = JobsConfig()
    storage: StorageConfig = StorageConfig()
    supervision: SupervisionConfig = SupervisionConfig()
    cluster: ClusterConfig = ClusterConfig()
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = Field(
        "text", description="json = one JSON object per line, for log shippers.")


def _set(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        tree = tree.setdefault(key, {})
    tree[leaf] = value


def load_config(path: Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Load YAML (if given), apply dotted-key overrides (CLI flags), validate."""
    raw: dict[str, Any] = {}
    if path is not None:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        if loaded is not None and not isinstance(loaded, dict):
            msg = f"{path}: top level must be a mapping"
            raise ValueError(msg)
        raw = loaded or {}
    for key, value in (overrides or {}).items():
        if value is not None:
            _set(raw, key, value)
    packs = raw.get("models", {}).get("packs")
    if packs is not None:
        # Configured packs extend the built-in ones instead of replacing them all.
        raw["models"]["packs"] = {**default_packs(), **packs}
    quality = raw.get("models", {}).get("quality")
    if quality is not None:
        # Likewise, configured levels replace only the built-in levels they name.
        raw["models"]["quality"] = {**default_quality(), **quality}
    return Config.model_validate(raw)
