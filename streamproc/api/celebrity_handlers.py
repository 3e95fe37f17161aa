"""Wire handlers for the image celebrity operations: RecognizeCelebrities, GetCelebrityInfo.

Both answer from the operator's gallery (``celebrities.gallery``, docs/celebrities.md). The
image goes through the same :class:`~streamproc.api.images.ImageLoader` as the face
operations (same limits, same errors). ``OrientationCorrection`` is never answered: AWS
stopped estimating it in 2021 and answers null.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from streamproc.api.context import Params, RequestContext, Response
from streamproc.api.images import ImageLoader
from streamproc.celebrities.service import CelebrityService
from streamproc.celebrities.shapes import celebrity, info_wire
from streamproc.rekognition.shapes import compared_face


@dataclass
class CelebrityApi:
    """What the celebrity handlers call; built by the daemon."""

    celebrities: CelebrityService
    loader: ImageLoader


def recognize_celebrities(s: CelebrityApi, p: Params, ctx: RequestContext) -> Response:
    """RecognizeCelebrities: the 64 largest faces, each a celebrity or unrecognised."""
    found = s.celebrities.recognize(s.loader.load(p["Image"]))
    w, h = found.width, found.height
    return {"CelebrityFaces": [celebrity(face, match, w, h) for face, match in found.celebrities],
            "UnrecognizedFaces": [compared_face(face, w, h) for face in found.unrecognized]}


def get_celebrity_info(s: CelebrityApi, p: Params, ctx: RequestContext) -> Response:
    """GetCelebrityInfo: Urls, Name, KnownGender of a gallery celebrity."""
    return info_wire(s.celebrities.info(p["Id"]))


CELEBRITY_HANDLERS: dict[str, Callable[[CelebrityApi, Params, RequestContext], Response]] = {
    "RecognizeCelebrities": recognize_celebrities,
    "GetCelebrityInfo": get_celebrity_info,
}
