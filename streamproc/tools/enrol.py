"""``streamproc enrol --collection C PATH...``: index folders of photos and videos.

Each person gets one ExternalImageId (sub-folder name or file stem, :mod:`.media`). A photo
contributes its largest face; a video its ``frames`` best frames, ranked by DetectFaces'
confidence, sharpness, frontal pose and face size (the rule is
:mod:`streamproc.console.enrolment`'s, which the console's video upload follows too).
The daemon derives FaceIds from the image content and ExternalImageId, so running the
same enrolment again adds nothing.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from botocore.exceptions import BotoCoreError, ClientError
from tqdm import tqdm

from streamproc.console.enrolment import CallRefused, best_frames, enrol_file
from streamproc.tools.media import Item, find_items, image_bytes, video_frames


@dataclass
class Summary:
    """What an enrolment did."""

    files: int = 0
    indexed: int = 0  # faces new to the collection
    present: int = 0  # faces that were already there (an earlier run)
    people: set[str] = field(default_factory=set)
    unindexed: Counter[str] = field(default_factory=Counter)  # reason -> faces
    failed: list[tuple[Path, str]] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)

    def report(self, collection: str, out: IO[str]) -> None:
        """Print the summary."""
        print(f"{collection}: {self.indexed} faces indexed, {self.present} already there, "
              f"for {len(self.people)} people from {self.files} files", file=out)
        if self.unindexed:
            reasons = ", ".join(f"{r}: {n}" for r, n in sorted(self.unindexed.items()))
            print(f"not indexed: {sum(self.unindexed.values())} faces ({reasons})", file=out)
        if self.skipped:
            print(f"skipped {len(self.skipped)} files that are neither images nor videos",
                  file=out)
        if self.failed:
            print(f"FAILED: {len(self.failed)} files", file=out)
            for path, reason in self.failed:
                print(f"  {path}: {reason}", file=out)


class _Boto:
    """:class:`FaceCalls` through a boto3 client: its errors as the rule's refusals."""

    def __init__(self, client: Any, collection: str) -> None:
        self._client = client
        self._collection = collection

    def detect_faces(self, jpeg: bytes) -> list[dict[str, Any]]:
        faces: list[dict[str, Any]] = self._ask(
            self._client.detect_faces, Image={"Bytes": jpeg})["FaceDetails"]
        return faces

    def index_faces(self, jpeg: bytes, person: str) -> dict[str, Any]:
        return self._ask(self._client.index_faces, CollectionId=self._collection,
                         Image={"Bytes": jpeg}, ExternalImageId=person, MaxFaces=1)

    @staticmethod
    def _ask(operation: Any, **params: Any) -> dict[str, Any]:
        try:
            out: dict[str, Any] = operation(**params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise CallRefused(f"{error.get('Code')}: {error.get('Message')}") from None
        except BotoCoreError as exc:  # connection lost, timeout
            raise CallRefused(str(exc)) from None
        return out


class Enroller:
    """Indexes items into one collection through the Rekognition API."""

    def __init__(self, client: Any, collection: str, frames: int = 3, candidates: int = 24,
                 ) -> None:
        self._client = client
        self._calls = _Boto(client, collection)
        self.collection = collection
        self._frames = frames
        self._candidates = candidates
        self._known: set[str] = set()

    def prepare(self, out: IO[str]) -> None:
        """Create the collection if needed and remember which faces it already holds."""
        try:
            self._client.create_collection(CollectionId=self.collection)
            print(f"created collection {self.collection}", file=out)
        except self._client.exceptions.ResourceAlreadyExistsException:
            pass
        for page in self._client.get_paginator("list_faces").paginate(
                CollectionId=self.collection, PaginationConfig={"PageSize": 4096}):
            self._known.update(f["FaceId"] for f in page["Faces"])

    def enrol(self, item: Item, summary: Summary) -> str | None:
        """Index one file; returns why it failed, or None."""

        def images() -> list[bytes]:
            if not item.video:
                return [image_bytes(item.path)]
            return best_frames(self._calls, video_frames(item.path, self._candidates),
                               self._frames)

        outcome = enrol_file(self._calls, images, item.person, self._known)
        summary.indexed += len(outcome.indexed)
        summary.present += len(outcome.present)
        summary.unindexed.update(outcome.unindexed)
        if outcome.problem is None:
            summary.people.add(item.person)
        return outcome.problem


def run_enrol(client: Any, collection: str, paths: list[Path], frames: int,
              out: IO[str] = sys.stdout) -> int:
    """Enrol every file under ``paths``; 0 when all of them gave a face, 1 otherwise."""
    enroller = Enroller(client, collection, frames)
    try:
        enroller.prepare(out)
    except (BotoCoreError, ClientError) as exc:
        print(f"streamproc enrol: cannot use collection {collection}: {exc}", file=sys.stderr)
        return 2
    items, skipped = find_items(paths)
    summary = Summary(files=len(items), skipped=skipped)
    with tqdm(items, unit="file", file=sys.stderr, desc=f"enrol {collection}") as bar:
        for item in bar:
            problem = enroller.enrol(item, summary)
            if problem is not None:
                summary.failed.append((item.path, problem))
                bar.write(f"{item.path}: {problem}", file=sys.stderr)
    summary.report(collection, out)
    return 1 if summary.failed else 0
