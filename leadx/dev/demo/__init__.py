"""Simulated sellers and buyers for `leadx run`, the benchmarks and the integration tests."""
