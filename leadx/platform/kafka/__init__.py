"""Kafka plumbing shared by every aiokafka-based service: every client made with the brokers'
address and security (`clients`), the event envelope (`envelope`), topic creation (`admin`), the
producer (`producer`), the consumer group (`consumer`) and the true end of a partition
(`offsets`)."""
