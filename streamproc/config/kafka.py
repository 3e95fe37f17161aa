"""Kafka: how match records are produced, and how each cluster is reached (TLS, SASL)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from streamproc.config.base import HiddenSecret, Section


class KafkaSecurity(Section):
    """How to reach one Kafka cluster: TLS and/or SASL (kafka-python's settings)."""

    protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="SSL = TLS; SASL_SSL = TLS + SASL (use it over SASL_PLAINTEXT).")
    ssl_cafile: Path | None = Field(None, description="CA bundle (PEM); system CAs if unset.")
    ssl_certfile: Path | None = Field(None, description="Client certificate (mutual TLS).")
    ssl_keyfile: Path | None = Field(None, description="Client private key (mutual TLS).")
    ssl_password: HiddenSecret | None = Field(
        None, description="Password of ssl_keyfile (or env:VAR, file:PATH).")
    ssl_check_hostname: bool = Field(True, description="Check the broker certificate's name.")
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="Needed with SASL_* protocols.")
    sasl_username: str | None = Field(None, description="SASL user.")
    sasl_password: HiddenSecret | None = Field(
        None, description="SASL password (env:VAR or file:PATH; never logged).")

    @model_validator(mode="after")
    def _complete(self) -> KafkaSecurity:
        sasl = self.protocol.startswith("SASL_")
        fields = (self.sasl_mechanism, self.sasl_username, self.sasl_password)
        if sasl and any(f is None for f in fields):
            msg = f"{self.protocol} needs sasl_mechanism, sasl_username and sasl_password"
            raise ValueError(msg)
        if not sasl and any(f is not None for f in fields):
            msg = f"sasl_* settings need a SASL_* protocol, not {self.protocol}"
            raise ValueError(msg)
        return self


class KafkaConfig(Section):
    """Where match records go and how they are produced."""

    bootstrap: str | None = Field(
        None, description="Default cluster (host:port,...) for arn:aws:kinesis outputs.")
    linger_ms: int = Field(10, ge=0, description="Producer batching delay.")
    batch_size: int = Field(1048576, gt=0, description="Producer batch bytes per partition.")
    max_request_size: int = Field(4194304, gt=0, description="Largest produce request.")
    compression_type: Literal["gzip", "snappy", "lz4", "zstd"] | None = Field(
        "lz4", description="Record compression (lz4 ships with streamproc; snappy/zstd need "
        "their Python packages).")
    max_block_ms: int = Field(5000, gt=0, description="Longest a send may wait for metadata.")
    memory_records: int = Field(
        50000, gt=0, description="Records per cluster kept in memory; more spill to disk.")
    max_in_flight: int = Field(1000, gt=0, description="Unacknowledged records per cluster.")
    stall_s: float = Field(
        5.0, gt=0, description="No acknowledgement for this long = the cluster is down.")
    delivery_timeout_ms: int = Field(
        600000, gt=0, description="Producer's own retry window before a send fails.")
    unreachable_fail_s: float = Field(
        300.0, gt=0, description="Processors FAIL after their cluster is unreachable this long "
        "(their records stay spooled and are delivered when it returns).")
    flush_timeout_s: float = Field(5.0, gt=0, description="Flush bound at shutdown.")
    deleted_grace_s: float = Field(
        300.0, gt=0, description="Records of a processor (or job) gone this long are dropped "
        "(counted); a destination holding nothing that took no record this long is closed.")
    dead_letter_keep: int = Field(
        10000, ge=0, description="Records a cluster refused for good (illegal topic, too "
        "large) kept per cluster in the spool's dead_letter table; older ones are deleted.")
    topic_retry_max_s: float = Field(
        60.0, gt=0, description="A parked topic (missing, not authorised: its records held "
        "in order while the cluster's other topics go on) is checked again after 2 s, "
        "doubling up to this.")
    security: KafkaSecurity = Field(
        default_factory=KafkaSecurity, description="TLS/SASL for the default cluster.")
    clusters: dict[str, KafkaSecurity] = Field(
        default_factory=dict, description="TLS/SASL per other cluster, keyed by its "
        "bootstrap list exactly as kafka:// outputs name it.")

    def security_for(self, bootstrap: str) -> KafkaSecurity:
        """The settings for a cluster: its own entry, the default cluster's, or plaintext."""
        if bootstrap in self.clusters:
            return self.clusters[bootstrap]
        if bootstrap == self.bootstrap:
            return self.security
        return KafkaSecurity()
