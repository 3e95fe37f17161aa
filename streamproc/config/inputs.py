"""What processors and jobs may open (inputs) and where they may write (outputs)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import Field, field_validator

from streamproc.config.base import Section

# Every URL scheme a processor's input may be written with (PyAV opens them all): the one
# list. The API's check of the input's form reads it; inputs.schemes narrows it.
MEDIA_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "srt", "udp", "tcp", "file")
# The default inputs.schemes: all of them but two. No udp: a udp:// input listens (binds its
# port on every interface, takes datagrams from anyone), so it is allowed only where
# inputs.schemes lists it. No file: file paths and file: URLs are judged by media_roots,
# never by scheme, so listing it would allow nothing.
DEFAULT_MEDIA_SCHEMES = tuple(s for s in MEDIA_SCHEMES if s not in ("udp", "file"))
# Link-local (cloud metadata lives here) and the EC2 IPv6 metadata address.
DEFAULT_BLOCKED_NETWORKS = ("169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128")


class InputsConfig(Section):
    """What processors (and stored-video jobs) may open: checked at Create and at connect."""

    schemes: list[str] = Field(
        default_factory=lambda: list(DEFAULT_MEDIA_SCHEMES),
        description="URL schemes a processor may open (file paths: media_roots).")
    hosts: list[str] = Field(
        default_factory=lambda: ["*"], description="Host name patterns (* and ?) a URL may "
        "name; IP literals are judged by networks only.")
    networks: list[str] = Field(
        default_factory=lambda: ["0.0.0.0/0", "::/0"],
        description="Every address a host resolves to must lie in one of these CIDRs.")
    blocked_networks: list[str] = Field(
        default_factory=lambda: list(DEFAULT_BLOCKED_NETWORKS),
        description="Refused even inside networks, unless an entry of networks names the "
        "address at least as narrowly.")
    media_roots: list[Path] = Field(
        default_factory=list, description="Directories file inputs must lie under "
        "(images.s3_local_root counts too); none = file inputs refused.")

    @field_validator("networks", "blocked_networks")
    @classmethod
    def _cidrs(cls, values: list[str]) -> list[str]:
        for value in values:
            ipaddress.ip_network(value, strict=False)  # ValueError names the bad entry
        return values

    @field_validator("schemes")
    @classmethod
    def _lower(cls, values: list[str]) -> list[str]:
        return [v.lower() for v in values]


class OutputsConfig(Section):
    """Where processors may write records: checked at CreateStreamProcessor and Start."""

    clusters: list[str] = Field(
        default_factory=list, description="Kafka clusters (bootstrap lists, exactly as "
        "kafka:// outputs write them) processors may write to besides kafka.bootstrap and "
        "the kafka.clusters keys; none = only those.")
    topics: list[str] = Field(
        default_factory=lambda: ["*"], description="Topic name patterns (* and ?) an output "
        "may name; internal topics (_* and __*: Kafka's, Schema Registry's) and the "
        "cluster's own (ID.state, "
        "ID.placement) are refused whatever this lists.")
