"""Cluster mode: several daemons sharing state and processors through Kafka."""

from __future__ import annotations

from pydantic import Field

from streamproc.config.base import Section


class ClusterConfig(Section):
    """Several daemons sharing collections and processors through Kafka (cluster mode)."""

    bootstrap: str | None = Field(
        None, description="Kafka cluster (host:port,...) holding the shared state and the "
        "group membership; null = a single node with local SQLite only (--cluster).")
    id: str = Field("streamproc", pattern=r"^[A-Za-z0-9._-]{1,100}$", description="Names "
                    "the cluster's topics (ID.state, ID.placement) and consumer group.")
    node_id: str | None = Field(None, description="This node's name; null = host:port of "
                                "its API.")
    session_timeout_s: float = Field(6.0, ge=1, description="A node silent this long is "
                                     "dead to the group and its processors move.")
    heartbeat_interval_s: float = Field(1.0, gt=0, description="Group heartbeats.")
    fence_after_s: float = Field(
        3.0, ge=0, description="A node that has not reached the group for this long stops "
        "its processors (must be under session_timeout_s, so two nodes never run one "
        "processor at once); 0 = keep them running through broker outages (risking two "
        "nodes running one processor while this node is cut off).")
    placement_partitions: int = Field(16, ge=1, description="Partitions of ID.placement: "
                                      "at least the largest number of nodes.")
    replication_factor: int = Field(1, ge=1, description="Replicas of the cluster's topics "
                                    "when this node creates them (3 on a production Kafka).")
    write_timeout_s: float = Field(10.0, gt=0, description="A write (API call) waits this "
                                   "long for the log; then a retryable ThrottlingException.")
    join_timeout_s: float = Field(60.0, gt=0, description="Start-up: reach the broker, "
                                  "replay the log and join the group within this.")

    @property
    def state_topic(self) -> str:
        """The cluster's command log (every node applies its records)."""
        return f"{self.id}.state"

    @property
    def placement_topic(self) -> str:
        """The placement group's topic (and, with its epoch, the group's name)."""
        return f"{self.id}.placement"
