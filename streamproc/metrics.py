"""Prometheus metrics, built on a registry the daemon owns and passed to whoever needs them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass(frozen=True)
class ApiMetrics:
    """Control-plane metrics."""

    requests: Counter
    latency: Histogram
    faces: Gauge
    denied: Counter
    reloads: Counter
    connections_cut: Counter
    console_refused: Counter
    console_crops_dropped: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> ApiMetrics:
        """Register the control-plane metrics on ``registry``."""
        return cls(
            requests=Counter("streamproc_api_requests", "API requests by operation and result",
                             ["operation", "code"], registry=registry),
            latency=Histogram("streamproc_api_request_seconds", "API request latency",
                              ["operation"], registry=registry,
                              buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)),
            faces=Gauge("streamproc_collection_faces", "Faces per collection", ["collection"],
                        registry=registry),
            denied=Counter("streamproc_api_access_denied", "Requests refused by an access "
                           "key's policy (reason: explicit or implicit deny)",
                           ["operation", "reason"], registry=registry),
            reloads=Counter("streamproc_auth_reloads", "Reloads of access keys and policies "
                            "(SIGHUP) by result", ["result"], registry=registry),
            connections_cut=Counter(
                "streamproc_http_connections_cut", "Connections the server closed before a "
                "request reached the API (reason: header_timeout, drain_timeout, malformed, "
                "max_connections, max_connections_per_client)",
                ["reason"], registry=registry),
            console_refused=Counter(
                "streamproc_console_refused", "Console requests refused before any operation "
                "ran (reason: host, origin, no_session, csrf, login, bad_request, "
                "sessions_full, operation)", ["reason"], registry=registry),
            console_crops_dropped=Counter(
                "streamproc_console_crops_dropped", "Face crops not kept or removed for room "
                "(console.face_crops_when_full)", registry=registry),
        )


_PROCESSOR = ["processor"]


@dataclass(frozen=True)
class ProcessorMetrics:
    """Data-plane metrics, labelled by processor name (labels removed on delete)."""

    frames_decoded: Counter
    frames_analysed: Counter
    frames_dropped: Counter
    faces_detected: Counter
    matches: Counter
    records_emitted: Counter
    records_published: Counter
    publish_errors: Counter
    reconnects: Counter
    restarts: Counter
    latency: Histogram
    ingest_delay: Histogram
    last_match: Gauge
    status: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> ProcessorMetrics:
        """Register the data-plane metrics on ``registry``."""
        def counter(name: str, doc: str) -> Counter:
            return Counter(f"streamproc_processor_{name}", doc, _PROCESSOR, registry=registry)

        return cls(
            frames_decoded=counter("frames_decoded", "Frames sampled from the source"),
            frames_analysed=counter("frames_analysed", "Frames run through detection"),
            frames_dropped=counter("frames_dropped", "Sampled frames dropped (queue full)"),
            faces_detected=counter("faces_detected", "Faces detected"),
            matches=counter("matches", "Detected faces with at least one match"),
            records_emitted=counter("records_emitted", "Records handed to the publisher"),
            records_published=counter("records_published", "Records acknowledged by Kafka"),
            publish_errors=counter("publish_errors", "Records Kafka did not take"),
            reconnects=counter("reconnects", "Source reconnect attempts"),
            restarts=counter("restarts", "Sessions restarted after their reader crashed"),
            latency=Histogram("streamproc_processor_frame_to_publish_seconds",
                              "From frame decode to Kafka acknowledgement", _PROCESSOR,
                              registry=registry,
                              buckets=(0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2,
                                       0.3, 0.5, 0.75, 1, 2, 5, 10)),
            ingest_delay=Histogram(
                "streamproc_processor_ingest_delay_seconds",
                "From a frame's capture time (ProducerTimestamp + FrameOffsetInSeconds) to its "
                "decoding, for analysed frames", _PROCESSOR, registry=registry,
                buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30)),
            last_match=Gauge("streamproc_processor_last_match_timestamp_seconds",
                             "When a frame last had a face with a match (Unix time; 0: none "
                             "since the daemon started)", _PROCESSOR, registry=registry),
            status=Gauge("streamproc_processor_status", "1 for the processor's current status",
                         ["processor", "status"], registry=registry),
        )

    def sensor(self, name: str) -> ProcessorSensor:
        """Bound children for one processor."""
        return ProcessorSensor(self, name)

    def remove(self, name: str, statuses: list[str]) -> None:
        """Drop every series of a deleted processor."""
        for metric in (self.frames_decoded, self.frames_analysed, self.frames_dropped,
                       self.faces_detected, self.matches, self.records_emitted,
                       self.records_published,
                       self.publish_errors, self.reconnects, self.restarts, self.latency,
                       self.ingest_delay, self.last_match):
            try:
                metric.remove(name)
            except KeyError:
                pass
        for status in statuses:
            try:
                self.status.remove(name, status)
            except KeyError:
                pass


@dataclass(frozen=True)
class PublisherMetrics:
    """Per-cluster delivery state."""

    cluster_up: Gauge
    outbox: Gauge
    down_seconds: Gauge
    set_aside: Counter
    dropped: Counter
    topics_parked: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> PublisherMetrics:
        """Register the publisher metrics on ``registry``."""
        return cls(
            cluster_up=Gauge("streamproc_kafka_cluster_up",
                             "1 while the cluster acknowledges records, 0 during an outage",
                             ["cluster"], registry=registry),
            outbox=Gauge("streamproc_kafka_outbox_records",
                         "Records waiting for a cluster, in memory or spooled to disk",
                         ["cluster", "location"], registry=registry),
            down_seconds=Gauge("streamproc_kafka_cluster_down_seconds",
                               "How long the cluster's current outage has lasted (0 while "
                               "it acknowledges records)", ["cluster"], registry=registry),
            set_aside=Counter("streamproc_records_set_aside",
                              "Records a cluster refused for good (illegal topic, too large, "
                              "not authorised), moved to the spool's dead letters",
                              ["cluster", "error"], registry=registry),
            dropped=Counter("streamproc_records_dropped", "Records dropped undelivered "
                            "(processor_deleted: their processor or job was gone for "
                            "kafka.deleted_grace_s)", ["cluster", "reason"],
                            registry=registry),
            topics_parked=Gauge("streamproc_kafka_topics_parked",
                                "Topics whose records the cluster cannot take now (missing, "
                                "not authorised, not confirmed yet), held while its other "
                                "topics go on (/health names them)", ["cluster"],
                                registry=registry),
        )


@dataclass(frozen=True)
class StageMetrics:
    """Health of the shared stage threads (analyzer, publisher, reconciler, ...)."""

    up: Gauge
    restarts: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> StageMetrics:
        """Register the stage metrics on ``registry``."""
        return cls(
            up=Gauge("streamproc_stage_up", "1 while the stage's thread is alive and making "
                     "progress", ["stage"], registry=registry),
            restarts=Counter("streamproc_stage_restarts", "Times the stage's thread was "
                             "restarted after it died", ["stage"], registry=registry),
        )


@dataclass(frozen=True)
class InferenceMetrics:
    """Where the face models run: one series per model, labelled with its provider."""

    provider: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> InferenceMetrics:
        """Register the inference metrics on ``registry``."""
        return cls(provider=Gauge(
            "streamproc_inference_provider",
            "1 for the execution provider each model runs on (CPUExecutionProvider, "
            "CUDAExecutionProvider, TensorrtExecutionProvider, torch:cuda:0, ...); "
            "gpu_fallback=1 when a GPU was asked for and the model runs elsewhere",
            ["model", "role", "provider", "gpu_fallback"], registry=registry))

    def report(self, providers: dict[str, Any]) -> None:
        """Set the series from ``FaceEngine.provider_report()``."""
        for model in providers["models"]:
            self.provider.labels(model["model"], model["role"], model["provider"],
                                 "1" if model["fallback"] else "0").set(1)


@dataclass(frozen=True)
class ClusterMetrics:
    """Cluster mode: members, what this node runs, how far behind the shared log it is."""

    nodes: Gauge
    owned: Gauge
    fenced: Gauge
    applied: Gauge
    lag: Gauge
    skipped: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> ClusterMetrics:
        """Register the cluster metrics on ``registry``."""
        return cls(
            nodes=Gauge("streamproc_cluster_nodes", "Live members of the cluster's group",
                        registry=registry),
            owned=Gauge("streamproc_cluster_owned_processors",
                        "Processors placed on this node", registry=registry),
            fenced=Gauge("streamproc_cluster_fenced", "1 while this node is out of touch "
                         "with the group and runs nothing", registry=registry),
            applied=Gauge("streamproc_cluster_applied_offset",
                          "Offset of the last shared-log command applied here",
                          registry=registry),
            lag=Gauge("streamproc_cluster_replay_lag_records", "Commands in the shared log "
                      "not yet applied here (approximate: the broker's high watermark)",
                      registry=registry),
            skipped=Counter("streamproc_cluster_records_skipped", "Shared-log records "
                            "skipped (corrupt, unknown or failing)", ["reason"],
                            registry=registry),
        )


_API = ["api"]


@dataclass(frozen=True)
class JobMetrics:
    """Stored-video jobs, labelled by API (FaceDetection / FaceSearch), never by job id."""

    started: Counter
    finished: Counter
    queued: Gauge
    running: Gauge
    frames_decoded: Counter
    frames_analysed: Counter
    faces_detected: Counter
    video_seconds: Counter
    progress: Gauge
    duration: Histogram
    notices: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> JobMetrics:
        """Register the job metrics on ``registry``."""
        def counter(name: str, doc: str, labels: list[str] = _API) -> Counter:
            return Counter(f"streamproc_job_{name}", doc, labels, registry=registry)

        return cls(
            started=counter("started", "Jobs accepted by Start*"),
            finished=counter("finished", "Jobs that ended, by status", ["api", "status"]),
            queued=Gauge("streamproc_job_queued", "Jobs waiting for a worker",
                         registry=registry),
            running=Gauge("streamproc_job_running", "Jobs being analysed", registry=registry),
            frames_decoded=counter("frames_decoded", "Sampled frames decoded from videos"),
            frames_analysed=counter("frames_analysed", "Sampled frames analysed"),
            faces_detected=counter("faces_detected", "Faces found in job frames"),
            video_seconds=counter("video_seconds", "Seconds of video analysed (its rate is "
                                  "the jobs' throughput in video seconds per second)"),
            progress=Gauge("streamproc_job_progress_ratio", "Share of the running job's video "
                           "analysed so far", ["job_id"], registry=registry),
            duration=Histogram("streamproc_job_duration_seconds", "Wall time of a launch, "
                               "from its start to its end", _API, registry=registry,
                               buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600,
                                        7200, 21600)),
            notices=counter("notices", "Completion notices handed to the publisher, and "
                            "acknowledged or refused by Kafka; dropped: nowhere to send it "
                            "(its channel is refused since its job started)", ["result"]),
        )


class JobSensor:
    """What one launch of a job reports (the data plane never imports prometheus)."""

    def __init__(self, metrics: JobMetrics, api: str, job_id: str) -> None:
        self._m = metrics
        self._job_id = job_id
        self._decoded = metrics.frames_decoded.labels(api)
        self._analysed = metrics.frames_analysed.labels(api)
        self._faces = metrics.faces_detected.labels(api)
        self._seconds = metrics.video_seconds.labels(api)
        self._progress = metrics.progress.labels(job_id)
        self._position_s = 0.0

    def frame_decoded(self, position_s: float, duration_s: float | None) -> None:
        """A sampled frame at ``position_s`` was decoded."""
        self._decoded.inc()
        if position_s > self._position_s:
            self._seconds.inc(position_s - self._position_s)
            self._position_s = position_s
        if duration_s:
            self._progress.set(min(position_s / duration_s, 1.0))

    def frame_analysed(self, faces: int) -> None:
        """A sampled frame went through detection."""
        self._analysed.inc()
        self._faces.inc(faces)

    def close(self) -> None:
        """The launch ended: drop its progress series."""
        try:
            self._m.progress.remove(self._job_id)
        except KeyError:
            pass


class NoticeSensor:
    """The publisher's delivery callbacks for completion notices (a ProcessorSensor's shape)."""

    def __init__(self, metrics: JobMetrics) -> None:
        self._submitted = metrics.notices.labels("submitted")
        self._published = metrics.notices.labels("published")
        self._failed = metrics.notices.labels("failed")
        self._dropped = metrics.notices.labels("dropped")

    def emitted(self) -> None:
        """A notice was handed to the publisher."""
        self._submitted.inc()

    def published(self, count: int = 1) -> None:
        """Kafka acknowledged ``count`` notices."""
        self._published.inc(count)

    def observe_latency(self, seconds: float) -> None:
        """Not measured for notices."""

    def publish_failed(self) -> None:
        """Kafka refused a notice (it is sent again)."""
        self._failed.inc()

    def dropped(self) -> None:
        """A notice had nowhere to go (its channel is refused since its job started)."""
        self._dropped.inc()


class ProcessorSensor:
    """What the data plane reports about one processor (it never imports prometheus)."""

    def __init__(self, metrics: ProcessorMetrics, name: str) -> None:
        self._m = metrics
        self.name = name
        self._decoded = metrics.frames_decoded.labels(name)
        self._analysed = metrics.frames_analysed.labels(name)
        self._dropped = metrics.frames_dropped.labels(name)
        self._faces = metrics.faces_detected.labels(name)
        self._matches = metrics.matches.labels(name)
        self._published = metrics.records_published.labels(name)
        self._emitted = metrics.records_emitted.labels(name)
        self._errors = metrics.publish_errors.labels(name)
        self._reconnects = metrics.reconnects.labels(name)
        self._restarts = metrics.restarts.labels(name)
        self._latency = metrics.latency.labels(name)
        self._ingest_delay = metrics.ingest_delay.labels(name)
        self._last_match = metrics.last_match.labels(name)

    def frame_decoded(self) -> None:
        """A frame was sampled."""
        self._decoded.inc()

    def frames_dropped(self, count: int = 1) -> None:
        """Frames were dropped by a full queue."""
        self._dropped.inc(count)

    def frame_analysed(self, faces: int, matched: int) -> None:
        """A frame went through detection and search."""
        self._analysed.inc()
        self._faces.inc(faces)
        self._matches.inc(matched)
        if matched:
            self._last_match.set(time.time())  # the console's "last match" column

    def emitted(self) -> None:
        """A record was handed to the publisher."""
        self._emitted.inc()

    def published(self, count: int = 1) -> None:
        """Kafka acknowledged ``count`` records."""
        self._published.inc(count)

    def observe_latency(self, seconds: float) -> None:
        """Frame decode to Kafka acknowledgement, for one record."""
        self._latency.observe(seconds)

    def observe_ingest_delay(self, seconds: float) -> None:
        """How late an analysed frame reached us: decode time minus its capture time."""
        self._ingest_delay.observe(seconds)

    def publish_failed(self) -> None:
        """Kafka refused or lost a record."""
        self._errors.inc()

    def reconnect(self) -> None:
        """The source is being reopened."""
        self._reconnects.inc()

    def restarted(self) -> None:
        """The session was restarted after its reader crashed."""
        self._restarts.inc()

    def status(self, old: str, new: str) -> None:
        """Status changed."""
        self._m.status.labels(self.name, old).set(0)
        self._m.status.labels(self.name, new).set(1)
