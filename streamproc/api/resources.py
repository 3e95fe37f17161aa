"""Which resources a request touches, for policy evaluation: the one place that decides it.

As in Rekognition's IAM reference: a ``CollectionId`` names a collection ARN, a processor's
``Name`` a stream processor ARN, tagging calls their ``ResourceArn``; CreateStreamProcessor
touches both the processor and the collection it searches. Operations on no particular
resource (List*, DetectFaces, CompareFaces) touch ``*``, which only a statement with
``Resource: "*"`` (or a pattern matching the literal ``*``) allows, as in IAM.
"""

from __future__ import annotations

from typing import Any

from streamproc.rekognition.constants import Arns

SERVICE = "rekognition"
ANY = "*"


def action_name(operation: str) -> str:
    """``SearchFaces`` -> ``rekognition:SearchFaces``."""
    return f"{SERVICE}:{operation}"


def request_resources(operation: str, params: dict[str, Any], arns: Arns) -> list[str]:
    """The ARNs a (validated) request touches, or ``["*"]``."""
    found: list[str] = []
    collection = params.get("CollectionId")
    if isinstance(collection, str):
        found.append(arns.collection(collection))
    name = params.get("Name")
    if isinstance(name, str) and "StreamProcessor" in operation:
        found.append(arns.processor(name))
    settings = params.get("Settings")
    if isinstance(settings, dict):
        search = settings.get("FaceSearch")
        if isinstance(search, dict) and isinstance(search.get("CollectionId"), str):
            found.append(arns.collection(search["CollectionId"]))
    arn = params.get("ResourceArn")
    if isinstance(arn, str):
        found.append(arn)
    return found or [ANY]
