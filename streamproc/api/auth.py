"""Optional AWS Signature Version 4 verification, so real credentials can guard the API.

The signature is recomputed with botocore's own SigV4 signer over exactly the headers the
client signed, then compared in constant time.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from datetime import datetime, timezone

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from streamproc.errors import AccessDeniedException

_AUTH = re.compile(r"^AWS4-HMAC-SHA256\s+Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/"
                   r"aws4_request,\s*SignedHeaders=([a-z0-9;.\-]+),\s*Signature=([0-9a-f]{64})$")
SERVICE = "rekognition"


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

    def verify(self, method: str, path: str, query: str, headers: dict[str, str],
               body: bytes) -> str:
        """Return the access key id of a correctly signed request, else raise."""
        header = headers.get("authorization")
        if not header:
            raise AccessDeniedException("Missing Authentication Token: requests must be "
                                        "signed with AWS Signature Version 4")
        match = _AUTH.match(header.strip())
        if match is None:
            raise AccessDeniedException("Authorization header is not a valid SigV4 header")
        key_id, day, region, service, signed, signature = match.groups()
        secret = self._secret_for(key_id)
        if secret is None or service != SERVICE:
            raise AccessDeniedException("The security token included in the request is invalid")
        stamp = headers.get("x-amz-date", "")
        self._check_time(stamp, day)
        names = signed.split(";")
        if "host" not in names or any(n not in headers for n in names):
            raise AccessDeniedException("SignedHeaders must include host and only sent headers")
        url = f"http://{headers['host']}{path}" + (f"?{query}" if query else "")
        request = AWSRequest(method=method, url=url, data=body,
                             headers={n: headers[n] for n in names})
        request.context["timestamp"] = stamp
        signer = SigV4Auth(Credentials(key_id, secret), SERVICE, region)
        canonical = signer.canonical_request(request)
        expected = signer.signature(signer.string_to_sign(request, canonical), request)
        if not hmac.compare_digest(expected, signature):
            raise AccessDeniedException(
                "The request signature we calculated does not match the signature you provided")
        return key_id

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
