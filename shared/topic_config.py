"""The Kafka topic configuration of a registry topic: one rule for ``aqsha topics apply`` and Strimzi.

``shared.kafka.ensure_topics`` (``aqsha topics apply``, tests, ``make run``) and the generated Strimzi
``KafkaTopic`` manifests (``shared.ops.strimzi``) both take a topic's config from here, so a topic
is the same wherever it is created. The registry (``shared.topics``) gives the retention and, where
it matters, ``segment.ms``; replication is a property of the cluster, so the caller passes it.
Standard library and the registry only.
"""

from __future__ import annotations

from typing import Final

from shared.topics import TopicSpec

#: No topic is compacted: every record of a key matters (docs/deploy.md).
CLEANUP_POLICY: Final = "delete"


def topic_config(
    spec: TopicSpec, *, replication_factor: int, min_insync_replicas: int
) -> dict[str, str | int]:
    """``cleanup.policy``, ``retention.ms``, ``min.insync.replicas`` and (if set) ``segment.ms``.

    ``retention.ms`` -1 is Kafka's "keep forever". ``min.insync.replicas`` must lie between 1 and the
    replication factor: more would refuse every ``acks=all`` write (``ValueError`` here instead).
    """
    if not 1 <= min_insync_replicas <= replication_factor:
        raise ValueError(
            f"min.insync.replicas {min_insync_replicas} must be between 1 and the replication factor "
            f"{replication_factor}"
        )
    config: dict[str, str | int] = {
        "cleanup.policy": CLEANUP_POLICY,
        "retention.ms": spec.retention_ms,
        "min.insync.replicas": min_insync_replicas,
    }
    if spec.segment_ms is not None:
        config["segment.ms"] = spec.segment_ms
    return config
