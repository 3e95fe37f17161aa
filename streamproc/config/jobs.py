"""Stored-video jobs and where their completion notices go."""

from __future__ import annotations

from pydantic import Field

from streamproc.config.base import Section


class NotificationTarget(Section):
    """Where a job's completion notice goes."""

    topic: str = Field(min_length=1, description="Kafka topic.")
    bootstrap: str | None = Field(None, description="Cluster host:port[,...]; null = "
                                  "kafka.bootstrap.")


class PersonTrackingConfig(Section):
    """How person-tracking jobs follow persons across sampled frames (docs/jobs.md)."""

    min_confidence: float = Field(
        40.0, ge=0, le=100, description="Person boxes below this confidence (percent) are "
        "not tracked. 40: the label pack finds each of the classroom clip's 4 people in "
        "every frame at 40, in only 32 of 45 at 50.")
    min_iou: float = Field(0.3, gt=0, le=1, description="A box continues a track whose "
                           "predicted box it overlaps at least this much (IoU).")
    max_misses: int = Field(5, ge=0, le=1000, description="Sampled frames a track may go "
                            "unseen (an occlusion) and still be re-identified; 5 at 5 fps: "
                            "one second.")
    min_hits: int = Field(2, ge=1, le=100, description="Frames a track must be seen on "
                          "before it gets an Index; a track seen less is a false detection "
                          "and is not reported.")
    reid_distance: float = Field(0.6, gt=0, description="A box left over by IoU continues "
                                 "a lost track whose predicted centre is at most this many "
                                 "of the track's heights away.")
    max_size_ratio: float = Field(1.5, ge=1, description="...and whose height is within "
                                  "this factor of the box's.")
    batch: int = Field(4, ge=1, le=64, description="Frames per person-stage batch (one "
                       "face-detector call) while no stream processor runs.")


class JobsConfig(Section):
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
    moderation_batch: int = Field(
        8, ge=1, le=256, description="Images per moderation-stage call while no stream "
        "processor runs (content-moderation videos, media-analysis manifests); beside live "
        "ones, batch_frames_beside_live. 8: one model call over a few images, without "
        "holding many decoded images.")
    label_batch: int = Field(
        8, ge=1, le=256, description="Frames the label stage takes at once while no stream "
        "processor runs (label-detection videos); beside live ones, batch_frames_beside_live. "
        "The pack labels them one call each, and the stage yields to live frames between "
        "them.")
    label_classifier_interval_s: float = Field(
        0.0, ge=0.0, le=60.0, description="Seconds of video a label job's whole-image "
        "classes (the pack's classifier) hold for: it runs on a job's first sampled frame, "
        "then on the first one at least this far after the last it ran on, and the frames "
        "between merge their own boxes with those classes. 0: every sampled frame, the "
        "labels DetectLabels gives each frame. The classifier is about a third of a frame's "
        "time on a CPU (docs/labels.md).")
    media_analysis_max_line_bytes: int = Field(
        100 * 1024, ge=64, description="Longest manifest line read (bytes); a longer line "
        "is an error entry in the summary, never held whole. 100 KiB: a source-ref and "
        "Ground Truth's other keys fit many times over.")
    media_analysis_max_lines: int = Field(
        1_000_000, ge=1, description="Manifest lines a media-analysis job reads; a longer "
        "manifest FAILS INVALID_MANIFEST when it reaches the next line (memory stays bounded "
        "whatever the size: this caps the time and disk one job takes).")
    media_analysis_checkpoint_lines: int = Field(
        256, ge=1, description="Manifest lines between two checkpoints of a media-analysis "
        "job (a restarted daemon redoes at most this many).")
    person_tracking: PersonTrackingConfig = Field(
        default_factory=PersonTrackingConfig, description="StartPersonTracking's tracker.")
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
