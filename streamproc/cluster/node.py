"""A daemon as a member of a cluster: the shared log, the group, and what it reports.

Start-up (:meth:`ClusterNode.join`): check that the data dir belongs to this cluster, make
the topics if they are missing, replay the shared log up to now, check that this node runs
the model the cluster's collections were made with, then join the placement group. Until
then the node serves nothing and runs nothing, so it never answers from a stale view.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry

from streamproc.cluster.commands import AdvanceEpoch
from streamproc.cluster.ledger import KafkaLedger, LedgerSettings
from streamproc.cluster.placement import Placement
from streamproc.config import Config
from streamproc.dataplane.output.transport import security_options
from streamproc.faces.engine import ModelIdentity
from streamproc.ledger import Applied, Appliers
from streamproc.lifecycle import Service
from streamproc.metrics import ClusterMetrics
from streamproc.search.searcher import model_mismatch
from streamproc.storage.cluster import ClusterLog
from streamproc.storage.collections import CollectionInfo
from streamproc.storage.db import Database

logger = logging.getLogger(__name__)


class ClusterError(RuntimeError):
    """The node cannot join its cluster (the reason is the message)."""


class ClusterNode:
    """The shared log, the placement group and the /cluster report of one node."""

    def __init__(self, config: Config, appliers: Appliers, db: Database, node_id: str,
                 endpoint: str, processors: Callable[[], list[str]],
                 registry: CollectorRegistry, on_change: Callable[[], None]) -> None:
        cluster = config.cluster
        assert cluster.bootstrap is not None
        self.node_id = node_id
        self.id = cluster.id
        self._config = config
        self._bootstrap = cluster.bootstrap
        self._options = security_options(config.kafka.security_for(cluster.bootstrap))
        self.metrics = ClusterMetrics.create(registry)
        self._log = ClusterLog(db, cluster.state_topic, cluster.id)
        self.ledger = KafkaLedger(appliers, LedgerSettings(
            cluster.bootstrap, cluster.state_topic, node_id, cluster.write_timeout_s,
            self._options), self._log, self.metrics)
        self.placement = Placement(
            cluster.bootstrap, self._group(0), cluster.placement_topic,
            {"node": node_id, "endpoint": endpoint}, processors, self.metrics,
            cluster.session_timeout_s, cluster.heartbeat_interval_s, cluster.fence_after_s,
            on_change, self._options, on_stuck=self._ask_for_new_epoch)
        appliers.register(AdvanceEpoch, self._apply_epoch)

    # ---- the placement group's epoch ----------------------------------------------------------
    def _group(self, epoch: int) -> str:
        base = self._config.cluster.placement_topic
        return base if epoch == 0 else f"{base}.{epoch}"

    def _ask_for_new_epoch(self) -> None:
        self.ledger.post(AdvanceEpoch(self._log.epoch()))

    def _apply_epoch(self, c: AdvanceEpoch, where: Applied) -> None:
        """Every node moves to the next group once; repeats from other nodes are no-ops."""
        if c.from_epoch != self._log.epoch():
            return
        epoch = c.from_epoch + 1
        self._log.save_epoch(epoch)
        self.placement.regroup(self._group(epoch))

    @property
    def services(self) -> list[Service]:
        """Threads to supervise."""
        return [self.ledger, self.placement]

    def prepare(self) -> None:
        """Check the data dir and the topics (before the ledger opens)."""
        joined = self._log.joined_cluster()
        if joined is not None and joined != self.id:
            msg = (f"this data dir belongs to cluster {joined!r}, not {self.id!r}; use an "
                   "empty data dir for this cluster")
            raise ClusterError(msg)
        if joined is None and self._log.holds_local_state():
            msg = ("this data dir holds single-node state (collections, processors or jobs) "
                   "that is not in the cluster's log; start a cluster node on an empty data "
                   "dir")
            raise ClusterError(msg)
        self._ensure_topics()

    def _ensure_topics(self) -> None:
        from kafka.admin import KafkaAdminClient, NewTopic
        from kafka.errors import KafkaError, TopicAlreadyExistsError

        cluster = self._config.cluster
        deadline = time.monotonic() + cluster.join_timeout_s
        try:
            admin = KafkaAdminClient(bootstrap_servers=self._bootstrap.split(","),
                                     request_timeout_ms=int(cluster.write_timeout_s * 1000),
                                     **self._options)
        except (KafkaError, OSError) as exc:
            msg = f"cannot reach the cluster's Kafka at {self._bootstrap}: {exc!r}"
            raise ClusterError(msg) from None
        try:
            replicas = cluster.replication_factor
            for topic in (NewTopic(cluster.state_topic, 1, replicas, topic_configs={
                    "retention.ms": "-1", "cleanup.policy": "delete"}),
                          NewTopic(cluster.placement_topic, cluster.placement_partitions,
                                   replicas)):
                try:
                    admin.create_topics([topic], timeout_ms=int(
                        max(1.0, deadline - time.monotonic()) * 1000))
                except TopicAlreadyExistsError:
                    pass
        except KafkaError as exc:
            msg = f"cannot make the cluster's topics on {self._bootstrap}: {exc!r}"
            raise ClusterError(msg) from None
        finally:
            admin.close()

    def join(self, model: ModelIdentity, collections: Callable[[], list[CollectionInfo]]
             ) -> None:
        """Replay the shared log up to now, check the model, then join the group."""
        started = time.monotonic()
        # The saved epoch first: an epoch the replay applies after this replaces it, never
        # the other way round.
        self.placement.regroup(self._group(self._log.epoch()))
        self.ledger.start()
        try:
            self.ledger.catch_up(self._config.cluster.join_timeout_s)
        except Exception as exc:
            msg = f"cannot replay the cluster's log from {self._bootstrap}: {exc}"
            raise ClusterError(msg) from None
        for info in collections():
            reason = model_mismatch(info, model)
            if reason is not None:
                msg = (f"this node runs model pack {model.pack} ({model.dim}-d) but the "
                       f"cluster's collections were made with another: {reason}")
                raise ClusterError(msg)
        logger.info("cluster %s: replayed the shared log in %.1f s; joining as %s", self.id,
                    time.monotonic() - started, self.node_id)
        self.placement.start()

    def owns(self, name: str) -> bool:
        """Whether this node should run ``name`` now."""
        return self.placement.owns(name)

    def live_members(self) -> set[str]:
        """The node ids of the group's current members, as this node last heard."""
        return {m["node"] for m in self.placement.members()}

    def jobs_here(self, active: Sequence[tuple[str, str | None]]) -> set[str]:
        """Which of the active stored-video jobs this node should run now."""
        return self.placement.jobs_here(active)

    def report(self, running: Callable[[], list[str]]) -> dict[str, Any]:
        """What GET /cluster shows."""
        assignment = self.placement.assignment()
        members = [{**m, "processors": sorted(n for n, node in assignment.items()
                                               if node == m["node"])}
                   for m in self.placement.members()]
        return {"cluster": self.id, "node": self.node_id, "fenced": self.placement.fenced,
                "running_here": running(), "members": members,
                "applied_offset": self._log.applied(), "placement_epoch": self._log.epoch()}

    def stop(self) -> None:
        """Leave the group (others take over at once), then stop applying the log."""
        self.placement.stop(5.0)
        self.ledger.stop(5.0)
