"""Processor kinds: what a processor does with its frames, and the rules for setting it up.

Face search is the only kind today. A kind checks a definition when it is created and
started (raising domain errors the API returns) and resolves what its data-plane stage needs
at launch; the data plane has one analysis stage per kind, under the same name. Rekognition's
other kind (ConnectedHome label detection) would plug in here with a stage of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from streamproc.processors.spec import ProcessorSpec
from streamproc.rekognition.constants import FACE_SEARCH, stream_threshold
from streamproc.search.searcher import CollectionNotFound, FaceSearcher
from streamproc.storage.collections import CollectionInfo


@dataclass(frozen=True)
class Resolved:
    """What a launch of a face-search processor searches, and with which threshold."""

    collection: CollectionInfo
    threshold: float


class ProcessorKind(Protocol):
    """The rules of one kind of processor."""

    name: str

    def check(self, spec: ProcessorSpec) -> None:
        """At Create and Start: refuse a definition that cannot work (domain errors)."""

    def resolve(self, spec: ProcessorSpec) -> Resolved:
        """At launch: what the data plane needs; raises when it cannot run now."""


class FaceSearchKind:
    """Search every detected face in a collection made with this server's model."""

    name = FACE_SEARCH

    def __init__(self, searcher: FaceSearcher) -> None:
        self._searcher = searcher

    def check(self, spec: ProcessorSpec) -> None:
        """A collection from another model is refused now; a missing one fails at launch."""
        try:
            self._searcher.check(spec.collection_id)
        except CollectionNotFound:
            pass

    def resolve(self, spec: ProcessorSpec) -> Resolved:
        """The collection as it is now (pinned for the launch) and the applied threshold."""
        return Resolved(self._searcher.check(spec.collection_id),
                        stream_threshold(spec.threshold))
