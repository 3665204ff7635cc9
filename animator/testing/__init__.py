"""Tiny real models for tests, benchmarks and examples (random weights, real classes, built from configs in code)."""
