"""The collection, face and user commands: what the API side submits, typed.

Appliers: :mod:`streamproc.collections.rules` (collections and faces) and
:mod:`streamproc.collections.user_rules` (users). Kinds and payload keys are the log's
contract with older nodes (see :mod:`streamproc.ledger`); the nested values (a
:class:`CollectionInfo`, faces with packed vectors) write the JSON they always wrote.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from streamproc.collections.membership import Membership
from streamproc.ledger import Command, pack_vector, unpack_vector
from streamproc.storage.collections import CollectionInfo, NewFace, StoredFace

DeletedFaces = tuple[list[str], list[str], list[StoredFace]]  # deleted, not found, kept


@dataclass(frozen=True)
class CreateCollection(Command[CollectionInfo]):
    """Create an empty collection bound to a model, with its tags."""

    kind: ClassVar[str] = "collection.create"
    info: CollectionInfo
    tags: dict[str, str] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        """The info's fields as an object beside the tags."""
        return {"info": asdict(self.info), "tags": dict(self.tags)}

    @classmethod
    def from_known(cls, payload: dict[str, Any]) -> CreateCollection:
        """Inverse of :meth:`payload`."""
        return cls(CollectionInfo(**payload["info"]), dict(payload["tags"]))


@dataclass(frozen=True)
class DeleteCollection(Command[None]):
    """Delete a collection and all its faces."""

    kind: ClassVar[str] = "collection.delete"
    collection_id: str


@dataclass(frozen=True)
class AddFaces(Command[list[StoredFace]]):
    """Add embedded faces to a collection (the inference happened before, once)."""

    kind: ClassVar[str] = "faces.add"
    collection_id: str
    faces: tuple[NewFace, ...]

    def payload(self) -> dict[str, Any]:
        """Each face's fields, its embedding as packed float32 text."""
        return {"collection_id": self.collection_id,
                "faces": [_face_payload(face) for face in self.faces]}

    @classmethod
    def from_known(cls, payload: dict[str, Any]) -> AddFaces:
        """Inverse of :meth:`payload`."""
        return cls(payload["collection_id"], tuple(_face(f) for f in payload["faces"]))


def _face_payload(face: NewFace) -> dict[str, Any]:
    return {"face_id": face.face_id, "image_id": face.image_id,
            "external_image_id": face.external_image_id, "bbox": face.bbox,
            "confidence": face.confidence, "embedding": pack_vector(face.embedding)}


def _face(f: dict[str, Any]) -> NewFace:
    return NewFace(f["face_id"], f["image_id"], f["external_image_id"], f["bbox"],
                   f["confidence"], unpack_vector(f["embedding"]))


@dataclass(frozen=True)
class DeleteFaces(Command[DeletedFaces]):
    """Delete faces by id (those a user holds are kept and named)."""

    kind: ClassVar[str] = "faces.delete"
    collection_id: str
    face_ids: list[str]


@dataclass(frozen=True)
class CreateUser(Command[None]):
    """CreateUser: a user without faces."""

    kind: ClassVar[str] = "user.create"
    collection_id: str
    user_id: str
    token: str | None = None  # the ClientRequestToken


@dataclass(frozen=True)
class DeleteUser(Command[None]):
    """DeleteUser: its faces are disassociated (they stay indexed), then it is deleted."""

    kind: ClassVar[str] = "user.delete"
    collection_id: str
    user_id: str
    token: str | None = None


@dataclass(frozen=True)
class AssociateFaces(Command[Membership]):
    """AssociateFaces: faces join a user if free and (past the first) similar enough."""

    kind: ClassVar[str] = "user.associate"
    collection_id: str
    user_id: str
    face_ids: list[str]
    threshold: float | None = None  # UserMatchThreshold; None: the default
    token: str | None = None


@dataclass(frozen=True)
class DisassociateFaces(Command[Membership]):
    """DisassociateFaces: the user's own faces leave it; others are reported."""

    kind: ClassVar[str] = "user.disassociate"
    collection_id: str
    user_id: str
    face_ids: list[str]
    token: str | None = None
