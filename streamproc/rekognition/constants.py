"""Rekognition's numbers and name formats, in one place for every path that needs them."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import Enum
from functools import lru_cache

import botocore.session
from botocore.exceptions import UnknownRegionError

# Three thresholds that are 80 today, kept apart because Rekognition documents them as three
# rules of different parameters, each of which could change alone: the default of an
# omitted FaceMatchThreshold / SimilarityThreshold (searches, CompareFaces, jobs and
# processors alike), the floor a stream processor raises a lower FaceMatchThreshold to,
# and the default UserMatchThreshold (below).
# FaceMatchThreshold / SimilarityThreshold when the request gives none.
DEFAULT_THRESHOLD = 80.0
# Stream processors raise a lower FaceMatchThreshold to this (Describe shows the result).
MIN_STREAM_THRESHOLD = 80.0
# IndexFaces keeps at most this many faces per image, whatever MaxFaces says.
MAX_FACES_TO_INDEX = 100
# CompareFaces and DetectFaces report at most this many faces.
MAX_TARGET_FACES = 100
# SearchFaces / SearchFacesByImage MaxFaces when the request gives none.
DEFAULT_SEARCH_MAX_FACES = 4096
# List* pages when MaxResults is not given.
DEFAULT_PAGE_SIZE = 1000
# TagResource: tags per resource.
MAX_TAGS = 200
# SearchUsers / SearchUsersByImage UserMatchThreshold when the request gives none.
DEFAULT_USER_THRESHOLD = 80.0
# AssociateFaces UserMatchThreshold when the request gives none.
DEFAULT_ASSOCIATE_THRESHOLD = 75.0
# DescribeProjects MaxResults when the request gives none (also its maximum).
MAX_PROJECT_RESULTS = 100
# ListDatasetEntries / ListDatasetLabels MaxResults when the request gives none (its maximum).
MAX_DATASET_RESULTS = 100
# DescribeProjectVersions / ListProjectPolicies MaxResults when none is given (the maximum).
MAX_VERSION_RESULTS = 100
MAX_POLICY_RESULTS = 5
# MaxUserResults' maximum: SearchUsers MaxUsers and the ListUsers page when none is given.
MAX_USER_RESULTS = 500
# Faces one user may hold (AssociateFaces refuses more with ServiceQuotaExceededException).
MAX_FACES_PER_USER = 100
# How long a ClientRequestToken is remembered (same token + same request = same result).
IDEMPOTENCY_WINDOW_S = 24 * 3600.0
# The face-search processor setting (Settings.FaceSearch) and its record type; also the
# stored-video face-search job (StartFaceSearch), beside face detection (StartFaceDetection).
FACE_SEARCH = "FaceSearch"
FACE_DETECTION = "FaceDetection"
# GetFaceDetection / GetFaceSearch: MaxResults default and cap ("larger values are capped").
MAX_JOB_RESULTS = 1000
# "RecognizeCelebrities returns the 64 largest faces in the image" (botocore's model).
MAX_CELEBRITY_FACES = 64


def face_match_threshold(requested: float | None) -> float:
    """The FaceMatchThreshold / SimilarityThreshold an API call applies."""
    return DEFAULT_THRESHOLD if requested is None else float(requested)


class UserStatus(str, Enum):
    """A user's UserStatus.

    Changes here are synchronous, so a user is seen CREATED (no faces) or ACTIVE (faces
    associated); UPDATING and CREATING never last past a call.
    """

    ACTIVE = "ACTIVE"
    UPDATING = "UPDATING"
    CREATING = "CREATING"
    CREATED = "CREATED"

    @classmethod
    def of(cls, face_count: int) -> UserStatus:
        """The status of a user holding ``face_count`` faces."""
        return cls.ACTIVE if face_count else cls.CREATED


def stream_threshold(requested: float) -> float:
    """The FaceMatchThreshold a stream processor applies (and Describe shows)."""
    return max(float(requested), MIN_STREAM_THRESHOLD)


# A region as it may appear in an ARN (the model's ARN patterns use [a-z\d-]+).
_REGION = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
# A project's resource id is NAME/CREATION_MS (botocore's ProjectArn pattern).
_ARN = re.compile(r"^arn:[a-z0-9-]+:rekognition:[a-z0-9-]+:(\d{12}):"
                  r"(collection|streamprocessor|project)/(.+)$")
# A dataset's is NAME/dataset/train|test/CREATION_MS (botocore's DatasetArn pattern): its
# ARN is one under ``project/``, so policies on ``project/NAME/*`` cover a project's datasets.
# A version's is NAME/version/VERSION/CREATION_MS (botocore's ProjectVersionArn pattern).
_PROJECT_ID = re.compile(r"^[a-zA-Z0-9_.\-]{1,255}/([0-9]+|dataset/(train|test)/[0-9]+|"
                         r"version/[a-zA-Z0-9_.\-]{1,255}/[0-9]+)$")


def valid_region(region: str) -> bool:
    """True if ``region`` can be written into an ARN."""
    return _REGION.fullmatch(region) is not None


@lru_cache(maxsize=64)
def partition_for(region: str) -> str:
    """The AWS partition of a region (``aws``, ``aws-cn``, ...), from botocore's endpoint data.

    Regions botocore does not know (a private ``local``, say) are in ``aws``.
    """
    try:
        return botocore.session.get_session().get_partition_for_region(region)
    except UnknownRegionError:
        return "aws"


@dataclass(frozen=True)
class Arns:
    """The one owner of this server's ARNs: formats them for a region, parses them back.

    Resources live once in this daemon whatever region a client names, so ARNs are
    rendered in the region the client signed for and :meth:`parse` accepts any region
    (and partition) as long as the account is this server's.
    """

    region: str
    account_id: str
    # ``celebrities.gallery``: the collection the celebrity operations also touch for
    # policy evaluation (api/resources.py), though they name no CollectionId. Kept here, on
    # the one object access control is given, so the request path needs no config.
    gallery: str | None = None

    def _prefix(self) -> str:
        return f"arn:{partition_for(self.region)}:rekognition:{self.region}:{self.account_id}"

    def for_region(self, region: str) -> Arns:
        """The same account's ARNs in another region."""
        return replace(self, region=region)

    def collection(self, collection_id: str) -> str:
        """A collection's ARN."""
        return f"{self._prefix()}:collection/{collection_id}"

    def processor(self, name: str) -> str:
        """A stream processor's ARN."""
        return f"{self._prefix()}:streamprocessor/{name}"

    def project(self, name: str, created_ms: int) -> str:
        """A project's ARN: its name and creation time (epoch milliseconds), as AWS writes it."""
        return f"{self._prefix()}:project/{name}/{created_ms}"

    def dataset(self, project: str, type_: str, created_ms: int) -> str:
        """A dataset's ARN: its project's name, ``train`` or ``test``, its creation time."""
        return f"{self._prefix()}:project/{project}/dataset/{type_.lower()}/{created_ms}"

    def version(self, project: str, name: str, created_ms: int) -> str:
        """A project version's ARN: project, version name, creation time (AWS's layout)."""
        return f"{self._prefix()}:project/{project}/version/{name}/{created_ms}"

    def resource(self, kind: str, resource_id: str) -> str:
        """The ARN of a ``collection``, ``streamprocessor`` or ``project`` (``NAME/MS``)."""
        return f"{self._prefix()}:{kind}/{resource_id}"

    def parse(self, arn: str) -> tuple[str, str] | None:
        """``(type, id)`` for one of this account's ARNs.

        The type is ``collection``, ``streamprocessor`` or ``project``; the id is the name,
        or for a project ``NAME/CREATION_MS`` (a dataset: ``NAME/dataset/TYPE/CREATION_MS``).
        """
        match = _ARN.fullmatch(arn)
        if match is None or match.group(1) != self.account_id:
            return None
        kind, resource_id = match.group(2), match.group(3)
        if kind == "project" and _PROJECT_ID.fullmatch(resource_id) is None:
            return None
        return kind, resource_id
