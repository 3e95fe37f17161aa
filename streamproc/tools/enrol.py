"""``streamproc enrol --collection C PATH...``: index folders of photos and videos.

Each person gets one ExternalImageId (sub-folder name or file stem, :mod:`.media`). A photo
contributes its largest face; a video its ``frames`` best frames, ranked by DetectFaces'
confidence, sharpness, frontal pose and face size. The daemon derives FaceIds from the image
content and ExternalImageId, so running the same enrolment again adds nothing.
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from botocore.exceptions import BotoCoreError, ClientError
from tqdm import tqdm

from streamproc.tools.media import Item, MediaError, find_items, image_bytes, video_frames


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


class Enroller:
    """Indexes items into one collection through the Rekognition API."""

    def __init__(self, client: Any, collection: str, frames: int = 3, candidates: int = 24,
                 ) -> None:
        self._client = client
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
        try:
            images = self._best_frames(item.path) if item.video else [image_bytes(item.path)]
            if not images:
                return "no face found in any sampled frame"
            new = reasons = 0
            for jpeg in images:
                out = self._client.index_faces(
                    CollectionId=self.collection, Image={"Bytes": jpeg},
                    ExternalImageId=item.person, MaxFaces=1)
                for record in out["FaceRecords"]:
                    fresh = record["Face"]["FaceId"] not in self._known
                    self._known.add(record["Face"]["FaceId"])
                    summary.indexed += fresh
                    summary.present += not fresh
                    new += 1
                for face in out["UnindexedFaces"]:
                    summary.unindexed["+".join(face["Reasons"])] += 1
                    reasons += 1
        except MediaError as exc:
            return str(exc)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            return f"{error.get('Code')}: {error.get('Message')}"
        except BotoCoreError as exc:  # connection lost, timeout
            return str(exc)
        if not new:
            return "no face passed the quality filter" if reasons else "no face found"
        summary.people.add(item.person)
        return None

    def _best_frames(self, path: Path) -> list[bytes]:
        scored: list[tuple[float, int, bytes]] = []
        for jpeg in video_frames(path, self._candidates):
            faces = self._client.detect_faces(Image={"Bytes": jpeg})["FaceDetails"]
            if faces:
                scored.append((_score(faces), len(scored), jpeg))
        scored.sort(key=lambda s: (-s[0], s[1]))
        return [jpeg for _, _, jpeg in scored[:self._frames]]


def _score(faces: list[dict[str, Any]]) -> float:
    """How good the largest face is for enrolment: sharp, confident, frontal and big."""
    face = max(faces, key=lambda f: f["BoundingBox"]["Width"] * f["BoundingBox"]["Height"])
    box, pose = face["BoundingBox"], face["Pose"]
    frontal = max(0.1, math.cos(math.radians(pose["Yaw"]))) * \
        max(0.1, math.cos(math.radians(pose["Pitch"])))
    return (face["Confidence"] / 100 * (face["Quality"]["Sharpness"] + 1) * frontal
            * math.sqrt(box["Width"] * box["Height"]))


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
