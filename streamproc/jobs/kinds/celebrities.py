"""The celebrity job: StartCelebrityRecognition, a kind of video in the face stage.

Each sampled frame's faces are searched in the operator's gallery
(:class:`~streamproc.celebrities.gallery.Gallery`); every face recognised there is one
``Celebrities`` element ``{Timestamp, Celebrity}``, named from the catalog as it was at
launch. GetCelebrityRecognition pages them by TIMESTAMP (AWS's default) or by ID (the
celebrity's Id, then time). With an empty gallery at launch nothing is embedded and the
job finds nothing; a gallery this server's model cannot search FAILs it with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from streamproc.celebrities.gallery import Gallery
from streamproc.celebrities.shapes import celebrity_detail
from streamproc.dataplane.stored.jobrun import JobInput
from streamproc.dataplane.stored.stages import FACES, FaceAnalysis, Result, ResultBuilder
from streamproc.dataplane.stored.video import StoredFrame
from streamproc.jobs.kind import Paging
from streamproc.jobs.request import JobRequest
from streamproc.storage.jobs import ResultOrder

CELEBRITY_RECOGNITION = "CelebrityRecognition"  # the kind's name (jobs table, metrics label)


@dataclass(frozen=True, kw_only=True)
class CelebrityRecognitionRequest(JobRequest):
    """StartCelebrityRecognition, minus the token: Video, JobTag, NotificationChannel."""


class CelebrityResults:
    """``Celebrities[{Timestamp, Celebrity}]``: one element per recognised face."""

    def __init__(self, gallery: Gallery, active: bool) -> None:
        self._gallery = gallery
        # The face stage embeds a launch's faces only for a gallery there is to search.
        self.needs_embeddings = active

    def build(self, frame: StoredFrame, analysis: FaceAnalysis) -> list[Result]:
        """The frame's recognised faces, in the frame's order (largest first)."""
        embedded = [(f, f.embedding) for f in analysis.faces if f.embedding is not None]
        if not self.needs_embeddings or not embedded:
            return []
        matches = self._gallery.match([vector for _, vector in embedded])
        height, width = frame.image.shape[:2]
        return [Result(frame.timestamp_ms, None,
                       {"Timestamp": frame.timestamp_ms,
                        "Celebrity": celebrity_detail(face, match, width, height)},
                       name=match.celebrity_id)
                for (face, _), match in zip(embedded, matches, strict=True)
                if match is not None]


@dataclass(frozen=True)
class CelebrityLaunch:
    """A celebrity launch: whether the gallery had anything to search when it began."""

    active: bool
    gallery: Gallery = field(compare=False, repr=False)

    def builder(self) -> ResultBuilder[FaceAnalysis]:
        """A builder over the gallery."""
        return CelebrityResults(self.gallery, self.active)


class CelebrityRecognitionJobKind:
    """The gallery's celebrities in a video; by TIMESTAMP (default) or celebrity ID."""

    api = CELEBRITY_RECOGNITION
    operation = "StartCelebrityRecognition"  # its wire half's Start operation too
    input = JobInput.VIDEO
    stage = FACES
    request_type = CelebrityRecognitionRequest
    # Rows are written in timestamp order (SEQUENCE); ID sorts by the row's name, the Id.
    paging = Paging({"TIMESTAMP": ResultOrder.SEQUENCE, "ID": ResultOrder.NAME})

    def __init__(self, gallery: Gallery) -> None:
        self._gallery = gallery

    def check(self, request: CelebrityRecognitionRequest) -> None:
        """A gallery this model cannot search is refused now (InvalidParameterException)."""
        self._gallery.active()

    def results(self, request: CelebrityRecognitionRequest) -> CelebrityLaunch:
        """Whether there is a gallery to search, decided at launch."""
        return CelebrityLaunch(self._gallery.active(), self._gallery)
