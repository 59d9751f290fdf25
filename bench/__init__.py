"""Benchmarks: ingest throughput, query latency and memory, with the figures quoted in the README."""
