"""Where a processor (or a job's completion notice) may write: the one owner of that rule.

An output is a Kafka cluster and a topic (``processors.urls.destination_of`` turns a
processor's output ARN or ``kafka://`` URL into the pair). Records carry FaceIds and names,
and a topic can hold state other parts trust, so:

* the cluster must be one the configuration names: ``kafka.bootstrap``, a
  ``kafka.clusters`` key or an ``outputs.clusters`` entry. They compare as written, as
  ``KafkaConfig.security_for`` finds a cluster's TLS settings, so a cluster spelled another
  way cannot get past its TLS settings either;
* the topic must match ``outputs.topics`` and never be internal: Kafka's own (names
  starting ``__``: ``__consumer_offsets``, ``__transaction_state``, ...), those of the
  systems that keep state beside it by the same convention (a leading ``_``: Schema
  Registry's ``_schemas``, ``_confluent-*``), or the streamproc cluster's ledger and
  placement topics (``ID.state``, ``ID.placement``), whose records every node applies.
"""

from __future__ import annotations

import fnmatch
from enum import Enum

from streamproc.config import ClusterConfig, Config, KafkaConfig, OutputsConfig


class OutputRule(str, Enum):
    """The ``outputs.*`` setting that refused an output."""

    CLUSTERS = "clusters"
    TOPICS = "topics"


class OutputRefused(Exception):
    """The output breaks a rule; ``rule`` names the outputs.* setting that refused it."""

    def __init__(self, rule: OutputRule, message: str) -> None:
        super().__init__(message)
        self.rule = rule.value
        self.message = message


def cluster_topics(cluster: ClusterConfig) -> tuple[str, str]:
    """The streamproc cluster's own topics: its ledger and its placement."""
    return cluster.state_topic, cluster.placement_topic


def is_internal_topic(topic: str, cluster: ClusterConfig) -> bool:
    """Kafka's and its neighbours' (``_*``) and the streamproc cluster's (``ID.state``, ...)."""
    return topic.startswith("_") or topic in cluster_topics(cluster)


class OutputAllowlist:
    """Checks (cluster, topic) outputs against ``outputs.*``; see the module docstring."""

    def __init__(self, outputs: OutputsConfig, kafka: KafkaConfig,
                 cluster: ClusterConfig) -> None:
        named = [kafka.bootstrap] if kafka.bootstrap else []
        self._clusters = frozenset([*named, *kafka.clusters, *outputs.clusters])
        # Only * and ?: a "[" is literal (fnmatch would read it as a character class).
        self._topics = [p.replace("[", "[[]") for p in outputs.topics]
        self._cluster = cluster

    @classmethod
    def for_config(cls, config: Config) -> OutputAllowlist:
        """The allowlist of a whole configuration."""
        return cls(config.outputs, config.kafka, config.cluster)

    def check(self, bootstrap: str, topic: str) -> None:
        """Judge an output; raise :class:`OutputRefused`."""
        if bootstrap not in self._clusters:
            msg = (f"cluster {bootstrap} is not configured (kafka.bootstrap, kafka.clusters "
                   "or outputs.clusters, as written)")
            raise OutputRefused(OutputRule.CLUSTERS, msg)
        self.check_topic(topic)

    def check_topic(self, topic: str) -> None:
        """Judge a topic alone (its cluster is one the configuration chose)."""
        if is_internal_topic(topic, self._cluster):
            own = " and ".join(cluster_topics(self._cluster))
            msg = (f"topic {topic} is internal (Kafka's own and its neighbours' start with _, "
                   f"the cluster's are {own})")
            raise OutputRefused(OutputRule.TOPICS, msg)
        if not any(fnmatch.fnmatchcase(topic, p) for p in self._topics):
            msg = f"topic {topic} matches no allowed topic pattern"
            raise OutputRefused(OutputRule.TOPICS, msg)
