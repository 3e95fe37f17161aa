"""Who may see a stream processor's matches: the one rule the live feed and the stats share.

A processor's match records name its collection's faces (FaceId, ExternalImageId, UserId),
and its crops and frames show the camera: more than DescribeStreamProcessor returns. So the
live feed, the current frame and the match facts of ``/console/stats`` (how many matches,
when the last one was) need a key that may ``DescribeStreamProcessor`` the processor **and**
``ListFaces`` on its collection, judged as the API would judge those two calls.
"""

from __future__ import annotations

from collections.abc import Callable

from streamproc.console.extension import ConsoleAccess
from streamproc.console.sessions import Session
from streamproc.errors import AccessDeniedException, ResourceNotFoundException

DESCRIBE = "DescribeStreamProcessor"
READ_FACES = "ListFaces"  # on the processor's collection: its records name its faces

Refusal = tuple[str, ResourceNotFoundException | AccessDeniedException]


def match_refusal(access: ConsoleAccess, session: Session, name: str,
                  collection_of: Callable[[str], str | None]) -> Refusal | None:
    """Why ``session`` may not see processor ``name``'s matches (a reason, an error), or None.

    An unknown processor is told (ResourceNotFoundException) only to a key that may
    describe it, so its existence tells other keys nothing.
    """
    if not access.allows(session, DESCRIBE, {"Name": name}):
        return "not_allowed", AccessDeniedException(
            f"This access key may not call {DESCRIBE} on stream processor {name}")
    collection = collection_of(name)
    if collection is None:
        return "not_found", ResourceNotFoundException(f"Stream processor {name} not found")
    if not access.allows(session, READ_FACES, {"CollectionId": collection}):
        return "not_allowed", AccessDeniedException(
            f"This access key may not call {READ_FACES} on collection {collection}, whose "
            f"faces the records of stream processor {name} name")
    return None
