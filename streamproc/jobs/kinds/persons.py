"""The person-tracking job: StartPersonTracking, a kind of video in the person stage.

Every sampled frame goes through the label pack (its ``Person`` boxes) and the face detector
(:data:`~streamproc.dataplane.stored.person_stage.PERSONS`); the launch's tracker turns the
boxes into persons with a stable Index (:mod:`~streamproc.dataplane.stored.person_results`),
which GetPersonTracking pages by SortBy TIMESTAMP (the default: by time, then Index) or INDEX
(by Index, then time). Rows are written while the job runs, so a page costs one indexed read.

Without a label pack (``detector`` None) Start answers LabelPackMissing, as DetectLabels
does, and a job queued while there was one FAILS with that message when it would launch.
"""

from __future__ import annotations

from dataclasses import dataclass

from streamproc.config.jobs import PersonTrackingConfig
from streamproc.dataplane.stored.jobrun import JobInput
from streamproc.dataplane.stored.person_results import PersonResults
from streamproc.dataplane.stored.person_stage import PERSONS, PersonAnalysis
from streamproc.dataplane.stored.person_tracker import TrackerSettings
from streamproc.dataplane.stored.stages import ResultBuilder
from streamproc.jobs.kind import Paging
from streamproc.jobs.request import JobRequest
from streamproc.labels.errors import LabelPackMissing
from streamproc.labels.types import LabelDetector
from streamproc.storage.jobs import ResultOrder

PERSON_TRACKING = "PersonTracking"  # the kind's name (jobs table, metrics label)


@dataclass(frozen=True, kw_only=True)
class PersonTrackingRequest(JobRequest):
    """StartPersonTracking, minus the token: only what every job has."""


@dataclass(frozen=True)
class PersonTrackingResults:
    """A person-tracking launch: the tracker's settings and the persons' threshold."""

    settings: TrackerSettings
    min_confidence: float

    def builder(self) -> ResultBuilder[PersonAnalysis]:
        """A builder with a fresh tracker (Indexes are the launch's own, from 0)."""
        return PersonResults(self.settings, self.min_confidence)


def tracker_settings(config: PersonTrackingConfig) -> TrackerSettings:
    """The config's tracker settings as the tracker takes them."""
    return TrackerSettings(min_iou=config.min_iou, max_misses=config.max_misses,
                           min_hits=config.min_hits, reid_distance=config.reid_distance,
                           max_size_ratio=config.max_size_ratio)


class PersonTrackingJobKind:
    """Every tracked person at every sampled timestamp, by TIMESTAMP (default) or INDEX."""

    api = PERSON_TRACKING
    operation = "StartPersonTracking"  # its wire half's Start operation too
    input = JobInput.VIDEO
    stage = PERSONS
    request_type = PersonTrackingRequest
    paging = Paging({"TIMESTAMP": ResultOrder.TIME_PERSON, "INDEX": ResultOrder.PERSON})

    def __init__(self, detector: LabelDetector | None, config: PersonTrackingConfig) -> None:
        self._detector = detector
        self._config = config

    def check(self, request: PersonTrackingRequest) -> None:
        """A label pack is loaded (LabelPackMissing otherwise)."""
        self._require_pack()

    def results(self, request: PersonTrackingRequest) -> PersonTrackingResults:
        """The tracker as configured now; no pack (this node has none now): the job FAILS."""
        self._require_pack()
        return PersonTrackingResults(tracker_settings(self._config),
                                     self._config.min_confidence)

    def _require_pack(self) -> None:
        if self._detector is None:
            raise LabelPackMissing()
