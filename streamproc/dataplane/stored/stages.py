"""Where a job's frames are analysed: the analysis stages, and what one hands back per frame.

A job kind names the stage its frames go to (``JobKind.stage``; the launch's plan carries
it), and the job runtime picks the runner of that input and stage. A stage takes its frames
as background work (:class:`StoredStage`: a :class:`~.background.BackgroundFeed` of its own)
and hands each frame back to its owner as one typed value, which the kind's
:class:`ResultBuilder` turns into result elements.

:data:`FACES` is the analyzer (detection, IoU tracking, and embeddings when the builder
needs them), whose value is :class:`FaceAnalysis`. The whole-frame stages (moderation,
labels, persons) are :class:`~.batch_stage.BatchStage` subclasses, each with a value type
of its own and a runner registered for it in the daemon's wiring; a new one gives only its
``analyse``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

from streamproc.dataplane.stored.background import BackgroundFeed
from streamproc.dataplane.stored.video import StoredFrame
from streamproc.dataplane.tracking import Track
from streamproc.faces.types import Face

FACES = "faces"  # the face stage: the analyzer
MODERATION = "moderation"  # the moderation stage: whole images through the moderation pack


class FrameAnalysis(Protocol):
    """What every stage's per-frame value says."""

    @property
    def found(self) -> int:
        """How many things the frame held (faces): the jobs' faces-detected metric."""


A = TypeVar("A", bound=FrameAnalysis)  # one stage's per-frame value
A_contra = TypeVar("A_contra", bound=FrameAnalysis, contravariant=True)


@dataclass(frozen=True)
class FaceAnalysis:
    """The face stage's value: the frame's faces and, in the same order, their tracks."""

    faces: list[Face]  # inside the job's regions; embedded when the builder needs it
    tracks: list[Track]  # the launch's own IoU tracks

    @property
    def found(self) -> int:
        """The faces detected."""
        return len(self.faces)


@dataclass(frozen=True)
class Result:
    """One element of a job's results, before it is numbered."""

    timestamp_ms: int
    person: int | None
    item: dict[str, Any]
    listing: str = ""  # which of its kind's listings it is in ('' : the only one)
    name: str = ""  # what the NAME order sorts it by ('' : no such order)


class ResultBuilder(Protocol[A_contra]):
    """Turns one analysed frame into result elements (on the stage's thread)."""

    # The face stage embeds a launch's faces only if its builder says so (face search);
    # the builders of any other stage say False.
    needs_embeddings: bool

    def build(self, frame: StoredFrame, analysis: A_contra) -> list[Result]:
        """The frame's results; raise a domain error when the job cannot go on."""


@runtime_checkable
class EndsLaunch(Protocol):
    """A builder that holds results back until the launch ends (open segments).

    Optional beside :class:`ResultBuilder`: the launch calls :meth:`end_launch` once, after
    its last frame was analysed and before its last write, only when it succeeded.
    """

    def end_launch(self) -> list[Result]:
        """The results still held (on the launch's thread; no frame comes after)."""


class StoredStage(Protocol[A]):
    """An analysis stage that takes job frames as background work (the analyzer is one)."""

    def add_background(self, feed: BackgroundFeed[A], beside_live: int) -> None:
        """Analyse ``feed``'s frames (at most ``beside_live`` per batch beside live work)."""
