"""The stream processors' data plane and the restarts of threads that die."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from streamproc.config.base import Section


class ProcessorsConfig(Section):
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


class SupervisionConfig(Section):
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
