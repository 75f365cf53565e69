"""The platform layer: configuration, ids, logs, telemetry, health, the service life cycle, and the
adapters for Kafka, Redis and SQL. It knows nothing of leads, buyers or auctions."""
