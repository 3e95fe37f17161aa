"""Optional AWS Signature Version 4 verification, so real credentials can guard the API.

The signature is recomputed with botocore's own SigV4 signer over exactly the headers the
client signed, then compared in constant time. A signature must bind what the transport acts
on: the operation (``x-amz-target``), host, date and content type must be signed, each header
the signature covers must have been sent once, and the body is always hashed (a client's
``x-amz-content-sha256`` is checked against it, never trusted).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping, Set
from datetime import datetime, timezone
from typing import NamedTuple

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from streamproc.errors import AccessDeniedException

_AUTH = re.compile(r"^AWS4-HMAC-SHA256\s+Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/"
                   r"aws4_request,\s*SignedHeaders=([a-z0-9;.\-]+),\s*Signature=([0-9a-f]{64})$")
SERVICE = "rekognition"
# A region name as AWS spells them (us-east-1, us-gov-west-1, eusc-de-east-1): the scope's
# region is written into the ARNs a response names, so anything else is refused.
_REGION_NAME = re.compile(r"[a-z]{2,4}(-[a-z]+)+-\d{1,2}")
# botocore signs every header it sends but user-agent and a few hop-by-hop ones; these carry
# what the transport acts on, so a signature that leaves one out binds too little.
REQUIRED_SIGNED = ("content-type", "host", "x-amz-date", "x-amz-target")
# Read whether signed or not: each must be sent at most once.
SECURITY_HEADERS = ("authorization", "x-amz-content-sha256", "x-amz-security-token")
_INVALID_TOKEN = "The security token included in the request is invalid"
_MISMATCH = "The request signature we calculated does not match the signature you provided"
_BAD_REGION = "Credential should be scoped to a valid region"


class _Scope(NamedTuple):
    """What an Authorization header claims, once its key, date and header list check out."""

    key_id: str
    secret: str
    region: str
    stamp: str
    names: list[str]
    signature: str


def signed_region(headers: dict[str, str]) -> str | None:
    """The region in a SigV4 ``Authorization`` header's credential scope, unverified.

    boto3 signs every request (with dummy keys too), so this is the region the client was
    made for even when verification is off; None for unsigned or malformed headers.
    """
    match = _AUTH.match(headers.get("authorization", "").strip())
    return match.group(3) if match is not None else None


class SigV4Verifier:
    """Checks ``Authorization`` headers against configured access keys."""

    def __init__(self, secret_for: Callable[[str], str | None],
                 max_skew_s: float = 900.0) -> None:
        self._secret_for = secret_for  # looked up per request: keys can be reloaded
        self._skew = max_skew_s

    def screen(self, headers: Mapping[str, str], repeated: Set[str] = frozenset()) -> str:
        """Refuse, before its body is read, a request whose headers cannot verify.

        Everything :meth:`verify` checks but the body and the signature itself: a client
        without a known key, a fresh date and the required signed headers holds no body slot.
        Returns the access key id the headers claim, not yet verified.
        """
        return self._scope(headers, repeated).key_id

    def verify(self, method: str, path: str, query: str, headers: Mapping[str, str],
               body: bytes, repeated: Set[str] = frozenset()) -> str:
        """Return the access key id of a correctly signed request, else raise.

        ``headers`` holds one value per (lower-case) name; ``repeated`` names those the
        request sent more than once, none of which may be signed or security headers.
        """
        scope = self._scope(headers, repeated)
        _check_payload_hash(headers, body)
        url = f"http://{headers['host']}{path}" + (f"?{query}" if query else "")
        request = AWSRequest(method=method, url=url, data=body,
                             headers={n: headers[n] for n in scope.names})
        request.context["timestamp"] = scope.stamp
        signer = SigV4Auth(Credentials(scope.key_id, scope.secret), SERVICE, scope.region)
        expected = _signature(signer, request)
        if expected is None or not hmac.compare_digest(expected, scope.signature):
            raise AccessDeniedException(_MISMATCH)
        return scope.key_id

    def _scope(self, headers: Mapping[str, str], repeated: Set[str]) -> _Scope:
        header = headers.get("authorization")
        if not header:
            raise AccessDeniedException("Missing Authentication Token: requests must be "
                                        "signed with AWS Signature Version 4")
        match = _AUTH.match(header.strip())
        if match is None:
            raise AccessDeniedException("Authorization header is not a valid SigV4 header")
        key_id, day, region, service, signed, signature = match.groups()
        names = signed.split(";")
        _check_single(names, repeated)
        secret = self._secret_for(key_id)
        if secret is None or service != SERVICE or "x-amz-security-token" in headers:
            # No STS here: a session token is one this server cannot validate.
            raise AccessDeniedException(_INVALID_TOKEN)
        if _REGION_NAME.fullmatch(region) is None:
            raise AccessDeniedException(_BAD_REGION)
        stamp = headers.get("x-amz-date", "")
        self._check_time(stamp, day)
        _check_signed_headers(names, headers)
        return _Scope(key_id, secret, region, stamp, names, signature)

    def _check_time(self, stamp: str, day: str) -> None:
        try:
            when = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
        except ValueError:
            raise AccessDeniedException("X-Amz-Date is missing or malformed") from None
        if not stamp.startswith(day):
            raise AccessDeniedException("Credential scope date does not match X-Amz-Date")
        skew = abs((datetime.now(timezone.utc) - when).total_seconds())
        if skew > self._skew:
            raise AccessDeniedException("Signature expired: X-Amz-Date is too far from now")


def _check_single(signed: list[str], repeated: Set[str]) -> None:
    for name in (*REQUIRED_SIGNED, *SECURITY_HEADERS, *signed):
        if name in repeated:
            raise AccessDeniedException(f"Header {name} appears more than once")


def _check_signed_headers(names: list[str], headers: Mapping[str, str]) -> None:
    if any(n not in names for n in REQUIRED_SIGNED):
        raise AccessDeniedException(
            "SignedHeaders must include content-type, host, x-amz-date and x-amz-target")
    if any(n not in headers for n in names):
        raise AccessDeniedException("SignedHeaders names a header that was not sent")


def _check_payload_hash(headers: Mapping[str, str], body: bytes) -> None:
    claimed = headers.get("x-amz-content-sha256")
    # botocore's signer would put a present header into the canonical request verbatim;
    # only the body's own hash may stand there (no UNSIGNED-PAYLOAD, no STREAMING-*).
    if claimed is not None and claimed != hashlib.sha256(body).hexdigest():
        raise AccessDeniedException("X-Amz-Content-Sha256 must be the SHA-256 of the request "
                                    "body (unsigned and streaming payloads are refused)")


def _signature(signer: SigV4Auth, request: AWSRequest) -> str | None:
    """The request's SigV4 signature; None when its URL cannot be split (a bad Host)."""
    try:
        canonical = signer.canonical_request(request)
    except ValueError:  # "[" or "[::1" as Host: urlsplit refuses it, so it signs nothing
        return None
    return signer.signature(signer.string_to_sign(request, canonical), request)
