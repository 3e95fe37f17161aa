"""The HTTP control API's settings and its authentication."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from streamproc.config.base import Secret, Section

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


class ServerConfig(Section):
    """The HTTP control API."""

    host: str = Field("127.0.0.1", description="Bind address; loopback unless told otherwise.")
    port: int = Field(8085, ge=0, le=65535, description="TCP port; 0 picks a free one.")
    max_request_bytes: int = Field(
        8 * 1024 * 1024, gt=0, description="Largest request body accepted (5 MB image as base64)."
    )
    worker_threads: int = Field(8, ge=1, description="Threads that run API operations.")
    shutdown_timeout_s: float = Field(5.0, gt=0, description="Bound on graceful HTTP shutdown.")
    max_concurrent_requests: int = Field(
        64, ge=1, description="Requests in progress beyond this get LimitExceededException "
        "(counted once the body is read and its signature verified).")
    max_body_reads: int = Field(
        128, ge=1, description="Request bodies arriving at once beyond this get "
        "LimitExceededException (each holds up to max_request_bytes). A body that arrives "
        "with its headers is read at once and takes no place here.")
    max_body_reads_per_client: int = Field(
        16, ge=1, description="Of max_body_reads, at most this many from one client address "
        "(an IPv4 address, an IPv6 /64); above boto3's pool of 10 connections, so one "
        "client uploading in parallel is not refused; behind a proxy every client is the "
        "proxy's address.")
    max_body_reads_per_key: int | None = Field(
        None, ge=1, description="With auth on, of max_body_reads at most this many claiming "
        "one access key id (not yet verified); null = max_body_reads / 8, at least 1.")
    min_body_rate_bytes_s: float = Field(
        4096.0, ge=0, description="After body_rate_grace_s a body must have arrived at this "
        "average rate or faster, else RequestTimeoutException (408) and the connection is "
        "closed; 0 = no minimum (body_timeout_s alone).")
    body_rate_grace_s: float = Field(
        2.0, gt=0, description="How long a body may take before min_body_rate_bytes_s counts.")
    max_connections: int = Field(
        1024, ge=1, description="Open connections beyond this are closed as they arrive "
        "(the open-files limit is raised to fit at start, as far as the hard limit allows).")
    max_connections_per_client: int = Field(
        128, ge=1, description="Of max_connections, at most this many from one client address "
        "(an IPv4 address, an IPv6 /64).")
    body_timeout_s: float = Field(
        60.0, gt=0, description="A request body must arrive whole within this; "
        "else RequestTimeoutException (408) and the connection is closed. Also bounds the "
        "unread rest of a body refused early (too large, body budget full).")
    header_timeout_s: float = Field(
        20.0, gt=0, description="A request's line and headers must arrive within this (from "
        "connect, or from its first byte on a kept-alive connection); else it is closed.")
    keep_alive_s: int = Field(
        75, ge=1, description="Idle keep-alive connections are closed after this; longer "
        "than clients' pools keep them, so a client never reuses one being closed.")
    tls_certfile: Path | None = Field(None, description="PEM certificate: serve HTTPS.")
    tls_keyfile: Path | None = Field(None, description="PEM private key for tls_certfile.")
    region: str = Field("us-east-1", description="Region written into ARNs.")
    account_id: str = Field(
        "000000000000", pattern=r"^\d{12}$", description="Account id written into ARNs."
    )
    allow_unauthenticated: bool = Field(
        False, description="Serve a non-loopback address with auth off (warned at every start)."
    )


class AuthConfig(Section):
    """API authentication."""

    enabled: bool = Field(False, description="Verify AWS SigV4 signatures on every request.")
    access_keys: dict[str, Secret] = Field(
        default_factory=dict, description="access key id -> secret (or env:VARNAME, file:PATH).")
    access_keys_file: Path | None = Field(
        None, description="YAML mapping access key id -> secret (a mounted secret); merged "
        "with access_keys and re-read on SIGHUP.")
    policy_file: Path | None = Field(
        None, description="YAML/JSON mapping access key id -> IAM policy document; keys "
        "without one have full access. Re-read on SIGHUP.")
    max_clock_skew_s: float = Field(900.0, gt=0, description="Accepted X-Amz-Date skew.")


class ConsoleConfig(Section):
    """The web console at /console/ on the API's port (docs/security.md, Web console)."""

    enabled: bool = Field(
        True, description="Serve the console; never where the API is open beyond loopback "
        "without auth (allow_unauthenticated), whatever this says.")
    max_sessions: int = Field(
        1000, ge=1, description="Console sessions held at once (each is a signed-in browser).")
    session_ttl_s: float = Field(
        8 * 3600.0, gt=0, description="How long a session lasts from sign-in (not extended "
        "by use).")
    max_sessions_per_key: int = Field(
        10, ge=1, description="Console sessions one access key holds at once (with auth off, "
        "all sessions are one key's).")
    when_full: Literal["evict_least_recent", "refuse"] = Field(
        "evict_least_recent", description="With the key's max_sessions_per_key held, a new "
        "sign-in ends that key's session used longest ago; with max_sessions held, the "
        "oldest session of the key holding the most (evict_least_recent), so one key's "
        "sign-ins never push out a key holding fewer; or it is refused (refuse).")
    allowed_hosts: list[str] = Field(
        default_factory=list, description="Host header names the console answers besides "
        "localhost, 127.0.0.1, ::1, server.host and the bound address (the names browsers "
        "reach it by); any other Host gets 403 (DNS rebinding).")
    face_crops: bool = Field(
        True, description="Keep a small JPEG of each face IndexFaces adds (under "
        "storage.data_dir/crops) for the console's Collections grid. Rekognition keeps no "
        "images: turn this off on sites that must not keep any (the grid shows placeholders; "
        "crops kept before are removed at start). In cluster mode kept only in "
        "face_crops_bucket.")
    face_crops_bucket: str | None = Field(
        None, description="Keep the crops as objects under crops/ in this bucket of the "
        "object store (objects.s3_endpoint or objects.local_root; it must exist; an S3 "
        "bucket name: 3-63 lowercase letters, digits, dots and hyphens) instead of under "
        "storage.data_dir, so that every node of a cluster shows them and a delete on any "
        "node removes them for all; the cap and retention then hold for the bucket. Crops "
        "are kept only by nodes that serve the console; every node removes them "
        "(DeleteFaces, DeleteCollection). objects.buckets and objects.output_buckets must "
        "both be set and leave this bucket out (else the server does not start), so no "
        "request can read the crops or a job write over them. null: on this node's disk, "
        "and none in cluster mode.")
    face_crops_pending: int = Field(
        64, ge=1, description="With face_crops_bucket, crops waiting for the node's crop "
        "writer (the thread that does the bucket's I/O off the requests) at most; one more "
        "is not kept and is counted in streamproc_console_crops_dropped_total (drop_newest). "
        "Removals wait for room (up to 5 s) instead.")
    face_crops_sweep_s: float = Field(
        60.0, gt=0, description="With face_crops_bucket, how often at most a node lists the "
        "crops to apply retention and the cap to what every node wrote (at start, then "
        "queued for the node's crop writer by the next crop written or read once this has "
        "passed).")
    face_crops_max_bytes: int = Field(
        256 * 1024 * 1024, ge=1, description="Bytes the face crops take at most in all.")
    face_crops_retention_s: float = Field(
        30 * 86400.0, gt=0, description="How long a face crop is kept after it was written "
        "(the face itself stays in its collection).")
    face_crops_when_full: Literal["drop_oldest", "drop_newest"] = Field(
        "drop_oldest", description="With face_crops_max_bytes held, remove the oldest crops "
        "to make room (drop_oldest) or keep them and write no new one (drop_newest); each "
        "crop dropped is counted in streamproc_console_crops_dropped_total.")
    @field_validator("face_crops_bucket")
    @classmethod
    def _an_s3_bucket_name(cls, name: str | None) -> str | None:
        """S3's own bucket naming rules: a name S3 would refuse fails at load, not per crop."""
        if name is None:
            return None
        if not _BUCKET.fullmatch(name) or ".." in name or ".-" in name or "-." in name:
            msg = (f"{name!r} is not an S3 bucket name (3-63 lowercase letters, digits, dots "
                   "and hyphens; a letter or digit first and last; no '..', '.-' or '-.')")
            raise ValueError(msg)
        try:
            ipaddress.IPv4Address(name)
        except ValueError:
            return name
        msg = f"{name!r} is not an S3 bucket name (it is formatted as an IP address)"
        raise ValueError(msg)

    login_max_failures: int = Field(
        10, ge=1, description="Failed sign-ins allowed within login_window_s from one client "
        "(an IPv4 address, or an IPv6 address's /64); past that, sign-ins from it get 429 "
        "ThrottlingException until the oldest failure leaves the window (signed API calls "
        "are never throttled by this).")
    login_window_s: float = Field(
        300.0, gt=0, description="The window failed sign-ins are counted in (5 minutes).")
    frame_decoders: int = Field(
        2, ge=1, description="Frames the Jobs page's /console/jobs/.../frame decodes at once "
        "on this node (2); a request beyond that gets LimitExceededException (decoding takes "
        "CPU the jobs and streams need).")
    frame_max_copy_bytes: int = Field(
        512 * 1024 * 1024, ge=1, description="Largest S3 object the Jobs page copies into "
        "scratch for one frame (512 MiB); a larger video gets VideoTooLargeException and no "
        "frame (local objects are read in place, whatever their size).")
    enrol_video_max_bytes: int = Field(
        8 * 1024 * 1024, ge=1, description="Largest video the Collections page enrols by "
        "upload (8 MiB: a short clip); a larger one gets VideoTooLargeException before any "
        "decode. Read as API bodies are, so server.max_request_bytes caps it too.")
    feed_buffer: int = Field(
        50, ge=1, description="Match events one open live feed (/console/feed/<name>) holds "
        "for its browser (50); when full the oldest is dropped, counted in "
        "streamproc_console_feed_dropped_total and reported to that feed as 'dropped'.")
    max_feeds: int = Field(
        20, ge=1, description="Live feeds open at once on this node (20), all processors and "
        "sessions together, and as many frame requests (/console/frame/<name>) waiting; one "
        "more gets LimitExceededException.")
    max_feeds_per_key: int = Field(
        5, ge=1, description="Live feeds one access key holds open at once on this node (5), "
        "so one key cannot hold every feed. With auth off there are no keys: every session "
        "counts as one key's, so this is the node's limit on open feeds then.")
