"""leadx — the shared package: config, events, Kafka plumbing, telemetry, SQL models and the CLI.

Every service under ``services/`` imports from here; nothing in here is copied per service.
"""
