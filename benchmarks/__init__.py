"""Benchmarks: the paper's table (quality) and, with the SDK, latency, memory and throughput."""
