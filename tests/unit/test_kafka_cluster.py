"""A Kafka cluster's brokers are configured as one: the same id and quorum, replicated topics."""

from __future__ import annotations

from pathlib import Path

from leadx.dev.kafka_broker import KafkaBroker, cluster


def properties_of(broker: KafkaBroker) -> dict[str, str]:
    broker.choose_ports()
    return dict(line.split("=", 1) for line in broker.server_properties().splitlines())


def test_three_brokers_form_one_quorum_and_replicate_every_topic_three_times(tmp_path: Path):
    brokers = cluster(3, tmp_path)
    configs = [properties_of(broker) for broker in brokers]

    assert [config["node.id"] for config in configs] == ["1", "2", "3"]
    assert len({broker.member.cluster_id for broker in brokers}) == 1
    voters = {config["controller.quorum.voters"] for config in configs}
    assert len(voters) == 1 and len(next(iter(voters)).split(",")) == 3
    # Each broker's own controller port is its entry in the quorum.
    for broker, config in zip(brokers, configs, strict=True):
        assert f"{broker.member.node_id}@127.0.0.1:{broker.ports['CONTROLLER']}" in config["controller.quorum.voters"]
        assert f"CONTROLLER://127.0.0.1:{broker.ports['CONTROLLER']}" in config["listeners"]
    for config in configs:
        assert config["default.replication.factor"] == config["offsets.topic.replication.factor"] == "3"
        assert config["min.insync.replicas"] == config["transaction.state.log.min.isr"] == "2"
    assert len({broker.workdir for broker in brokers}) == 3  # a data folder each


def test_a_broker_alone_is_its_own_quorum_with_single_replicas(tmp_path: Path):
    config = properties_of(KafkaBroker(workdir=tmp_path))
    assert config["node.id"] == "1"
    assert config["controller.quorum.voters"].startswith("1@127.0.0.1:")
    assert config["default.replication.factor"] == config["min.insync.replicas"] == "1"
