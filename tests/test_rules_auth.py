"""SigV4 verification rules on synthetic requests: expiry, skew, scope date, headers."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from streamproc.api import auth
from streamproc.api.auth import SigV4Verifier, signed_region
from streamproc.errors import AccessDeniedException

KEY, SECRET = "AKIDRULES0000000001", "rules/secret+key"
NOW = datetime(2026, 3, 4, 12, 0, 0, tzinfo=timezone.utc)
BODY = b'{"MaxResults": 5}'


class _FrozenClock(datetime):
    @classmethod
    def now(cls, tz: object = None) -> datetime:  # type: ignore[override]
        return NOW if tz is not None else NOW.replace(tzinfo=None)


@pytest.fixture(autouse=True)
def frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    """The verifier's clock reads NOW, so skews are exact to the second."""
    monkeypatch.setattr(auth, "datetime", _FrozenClock)


def sign(when: datetime = NOW, *, key: str = KEY, secret: str = SECRET,
         region: str = "eu-west-1", service: str = "rekognition", body: bytes = BODY,
         query: str = "", scope_day: str | None = None, extra: dict[str, str] | None = None,
         unsigned: tuple[str, ...] = ()) -> tuple[dict[str, str], str]:
    """Lower-case headers of a request signed at ``when`` (and the query it was sent with).

    The headers are botocore's for a JSON call (host, date, target, content type); those
    named in ``unsigned`` are sent but left out of SignedHeaders.
    """
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    headers = {"host": "127.0.0.1:8085", "x-amz-date": stamp,
               "x-amz-target": "RekognitionService.ListCollections",
               "content-type": "application/x-amz-json-1.1", **(extra or {})}
    signed = {n: v for n, v in headers.items() if n not in unsigned}
    url = "http://127.0.0.1:8085/" + (f"?{query}" if query else "")
    request = AWSRequest(method="POST", url=url, data=body, headers=signed)
    request.context["timestamp"] = stamp
    signer = SigV4Auth(Credentials(key, secret), service, region)
    signature = signer.signature(
        signer.string_to_sign(request, signer.canonical_request(request)), request)
    names = ";".join(sorted(signed))
    day = scope_day or stamp[:8]
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={key}/{day}/{region}/{service}/"
                                f"aws4_request, SignedHeaders={names}, Signature={signature}")
    return headers, query


def verify(headers: dict[str, str], query: str = "", body: bytes = BODY,
           skew: float = 900.0, repeated: frozenset[str] = frozenset()) -> str:
    return SigV4Verifier({KEY: SECRET, "AKIDOTHER": "other"}.get, skew).verify(
        "POST", "/", query, headers, body, repeated)


def test_a_correctly_signed_request_names_its_key() -> None:
    assert verify(*sign()) == KEY
    headers, query = sign(query="a=1&b=two")
    assert verify(headers, query) == KEY


@pytest.mark.parametrize("seconds", [-900, 900, -1, 1, 0])
def test_skew_up_to_the_limit_is_accepted(seconds: int) -> None:
    assert verify(*sign(NOW + timedelta(seconds=seconds))) == KEY


@pytest.mark.parametrize("seconds", [-901, 901, -3600, 86400])
def test_a_stale_or_future_date_is_refused(seconds: int) -> None:
    with pytest.raises(AccessDeniedException,
                       match="^Signature expired: X-Amz-Date is too far from now$"):
        verify(*sign(NOW + timedelta(seconds=seconds)))


def test_the_skew_limit_is_the_configured_one() -> None:
    headers, _ = sign(NOW - timedelta(seconds=61))
    with pytest.raises(AccessDeniedException, match="Signature expired"):
        verify(headers, skew=60)
    assert verify(*sign(NOW - timedelta(seconds=60)), skew=60) == KEY
    default = SigV4Verifier({KEY: SECRET}.get)  # 15 minutes, as AWS allows
    assert default.verify("POST", "/", "", sign(NOW - timedelta(seconds=900))[0], BODY) == KEY
    with pytest.raises(AccessDeniedException, match="Signature expired"):
        default.verify("POST", "/", "", sign(NOW - timedelta(seconds=901))[0], BODY)


def test_the_credential_scope_date_must_be_the_request_date() -> None:
    headers, _ = sign(scope_day="20260303")
    with pytest.raises(AccessDeniedException,
                       match="^Credential scope date does not match X-Amz-Date$"):
        verify(headers)


@pytest.mark.parametrize("stamp", ["", "2026-03-04T12:00:00Z", "20260304T120000", "garbage"])
def test_a_missing_or_malformed_date_is_refused(stamp: str) -> None:
    headers, _ = sign()
    headers["x-amz-date"] = stamp
    with pytest.raises(AccessDeniedException, match="^X-Amz-Date is missing or malformed$"):
        verify(headers)
    del headers["x-amz-date"]
    with pytest.raises(AccessDeniedException, match="^X-Amz-Date is missing or malformed$"):
        verify(headers)


def test_unsigned_and_malformed_authorization_are_refused() -> None:
    headers, _ = sign()
    del headers["authorization"]
    missing = ("^Missing Authentication Token: requests must be signed with AWS Signature "
               "Version 4$")
    with pytest.raises(AccessDeniedException, match=missing):
        verify(headers)
    headers["authorization"] = ""
    with pytest.raises(AccessDeniedException, match="^Missing Authentication Token"):
        verify(headers)
    good, _ = sign()
    for broken in (good["authorization"].replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1"),
                   good["authorization"].replace("/aws4_request", "/aws3_request"),
                   good["authorization"][:-1],
                   good["authorization"].replace("SignedHeaders=", "Signed=")):
        with pytest.raises(AccessDeniedException,
                           match="^Authorization header is not a valid SigV4 header$"):
            verify({**good, "authorization": broken})
    padded = {**good, "authorization": f"  {good['authorization']}  "}
    assert verify(padded) == KEY


def test_unknown_keys_and_other_services_are_refused() -> None:
    for headers, _ in (sign(key="AKIDUNKNOWN"), sign(service="s3")):
        with pytest.raises(AccessDeniedException,
                           match="^The security token included in the request is invalid$"):
            verify(headers)


def test_signatures_that_do_not_match_are_refused() -> None:
    mismatch = "^The request signature we calculated does not match the signature you provided$"
    cases = [(sign(secret="wrong")[0], "", BODY),  # wrong secret
             (sign(key="AKIDOTHER")[0], "", BODY),  # another key's id with this key's secret
             (sign()[0], "", b'{"MaxResults": 6}'),  # tampered body
             (sign(query="a=1")[0], "a=2", BODY),  # tampered query
             (sign()[0], "a=1", BODY)]  # query added after signing
    headers, _ = sign()
    headers["x-amz-target"] = "RekognitionService.DeleteCollection"  # tampered signed header
    cases.append((headers, "", BODY))
    headers, _ = sign(region="us-east-1")
    headers["authorization"] = headers["authorization"].replace("us-east-1", "eu-west-1")
    cases.append((headers, "", BODY))  # scope region changed
    for headers, query, body in cases:
        with pytest.raises(AccessDeniedException, match=mismatch):
            verify(headers, query, body)


REQUIRED = ("content-type", "host", "x-amz-date", "x-amz-target")


@pytest.mark.parametrize("name", REQUIRED)
def test_the_operation_and_its_framing_must_be_signed(name: str) -> None:
    """A request signed without its target (or host, date, type) cannot be replayed as another."""
    headers, _ = sign(unsigned=(name,))
    assert f"SignedHeaders={';'.join(n for n in sorted(REQUIRED) if n != name)}," in (
        headers["authorization"])
    with pytest.raises(AccessDeniedException, match=(
            "^SignedHeaders must include content-type, host, x-amz-date and x-amz-target$")):
        verify(headers)


def test_signed_headers_must_have_been_sent() -> None:
    headers, _ = sign(extra={"x-amz-meta": "1"})
    del headers["x-amz-meta"]
    with pytest.raises(AccessDeniedException,
                       match="^SignedHeaders names a header that was not sent$"):
        verify(headers)


@pytest.mark.parametrize("name", [*REQUIRED, "authorization", "x-amz-content-sha256",
                                  "x-amz-security-token", "x-amz-meta"])
def test_a_repeated_signed_or_security_header_is_refused(name: str) -> None:
    """The dispatcher and the verifier must see one value: a repeated header has two."""
    headers, _ = sign(extra={"x-amz-meta": "1"})
    assert verify(headers) == KEY
    with pytest.raises(AccessDeniedException,
                       match=f"^Header {name} appears more than once$"):
        verify(headers, repeated=frozenset({name}))


def test_a_repeated_unsigned_header_does_not_matter() -> None:
    headers, _ = sign()
    assert verify(headers, repeated=frozenset({"user-agent", "accept"})) == KEY


def test_the_body_is_hashed_even_under_a_signed_content_hash() -> None:
    """A signed X-Amz-Content-Sha256 is checked against the body, never trusted."""
    digest = hashlib.sha256(BODY).hexdigest()
    headers, _ = sign(extra={"x-amz-content-sha256": digest})
    assert verify(headers) == KEY
    message = ("^X-Amz-Content-Sha256 must be the SHA-256 of the request body "
               r"\(unsigned and streaming payloads are refused\)$")
    with pytest.raises(AccessDeniedException, match=message):
        verify(headers, body=b'{"MaxResults": 6}')  # body swapped under the signed hash
    swapped = b'{"MaxResults": 6}'
    headers, _ = sign(extra={"x-amz-content-sha256": digest}, body=swapped)
    with pytest.raises(AccessDeniedException, match=message):
        verify(headers, body=swapped)  # signed over the wrong hash: the hash decides nothing
    headers, _ = sign(extra={"x-amz-content-sha256": digest}, unsigned=("x-amz-content-sha256",))
    with pytest.raises(AccessDeniedException, match=message):
        verify(headers, body=swapped)


@pytest.mark.parametrize("payload", ["UNSIGNED-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
                                     "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                                     hashlib.sha256(BODY).hexdigest().upper()])
def test_unsigned_and_streaming_payloads_are_refused(payload: str) -> None:
    headers, _ = sign(extra={"x-amz-content-sha256": payload})
    with pytest.raises(AccessDeniedException, match="^X-Amz-Content-Sha256 must be the SHA-256"):
        verify(headers)


@pytest.mark.parametrize("unsigned", [(), ("x-amz-security-token",)])
def test_a_security_token_is_refused(unsigned: tuple[str, ...]) -> None:
    """streamproc has no STS: a session token is one it cannot validate."""
    headers, _ = sign(extra={"x-amz-security-token": "FwoGZXIvYXdzEgarbage"}, unsigned=unsigned)
    with pytest.raises(AccessDeniedException,
                       match="^The security token included in the request is invalid$"):
        verify(headers)


@pytest.mark.parametrize("host", ["[", "[::1", "a]b"])
def test_a_host_that_is_no_url_authority_is_denied_not_raised(host: str) -> None:
    headers, _ = sign()
    headers["host"] = host
    with pytest.raises(AccessDeniedException, match="^The request signature we calculated"):
        verify(headers)


def test_screening_checks_all_but_the_body_and_the_signature() -> None:
    """What the transport checks before it reads a body: headers alone decide."""
    verifier = SigV4Verifier({KEY: SECRET}.get)
    verifier.screen(sign(secret="wrong")[0])  # only the body and signature could tell
    verifier.screen(sign(extra={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})[0])
    good, _ = sign()
    cases = [({k: v for k, v in good.items() if k != "authorization"}, frozenset(),
              "^Missing Authentication Token"),
             ({**good, "authorization": "Bearer x"}, frozenset(), "^Authorization header is"),
             (sign(key="AKIDUNKNOWN")[0], frozenset(), "^The security token included"),
             (sign(extra={"x-amz-security-token": "t"})[0], frozenset(),
              "^The security token included"),
             (sign(NOW - timedelta(seconds=901))[0], frozenset(), "^Signature expired"),
             (sign(unsigned=("x-amz-target",))[0], frozenset(), "^SignedHeaders must include"),
             (good, frozenset({"x-amz-target"}), "^Header x-amz-target appears more than once$")]
    for headers, repeated, message in cases:
        with pytest.raises(AccessDeniedException, match=message):
            verifier.screen(headers, repeated)


def test_unsigned_extra_headers_do_not_matter() -> None:
    headers, _ = sign()
    headers["user-agent"] = "anything"
    assert verify(headers) == KEY


def test_signed_region_reads_the_scope_without_verifying() -> None:
    headers, _ = sign(region="ap-south-1", secret="whatever")
    assert signed_region(headers) == "ap-south-1"
    assert signed_region({"authorization": f"  {headers['authorization']}"}) == "ap-south-1"
    assert signed_region({}) is None
    assert signed_region({"authorization": "Bearer x"}) is None


@pytest.mark.parametrize("region", ["x" * 40, "xxxxxxxx", "US-EAST-1", "Us-east-1", "*",
                                    "us-east", "us-east-1-", "useast1", "us_east_1",
                                    "us-east-1a", "1-east-1", "u-east-1", "us--east-1",
                                    "local", "us-east-123"])
def test_a_scope_region_that_is_no_region_name_is_refused(region: str) -> None:
    """Checked on the headers, before the body: a region is what ARNs are written in."""
    headers, _ = sign(region=region)
    message = "^Credential should be scoped to a valid region$"
    with pytest.raises(AccessDeniedException, match=message):
        verify(headers)
    with pytest.raises(AccessDeniedException, match=message):
        SigV4Verifier({KEY: SECRET}.get).screen(headers)


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "eu-central-2", "ap-southeast-4",
                                    "us-gov-west-1", "cn-northwest-1", "us-iso-east-1",
                                    "us-isob-east-1", "il-central-1", "mx-central-1",
                                    "eusc-de-east-1", "ap-east-2"])
def test_every_kind_of_region_name_verifies(region: str) -> None:
    assert verify(*sign(region=region)) == KEY


def test_screening_names_the_key_it_let_through() -> None:
    """The transport counts a body against the key its headers claim (not yet verified)."""
    verifier = SigV4Verifier({KEY: SECRET, "AKIDOTHER": "other"}.get)
    assert verifier.screen(sign()[0]) == KEY
    assert verifier.screen(sign(key="AKIDOTHER", secret="not its secret")[0]) == "AKIDOTHER"
