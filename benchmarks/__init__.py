"""Benchmarks: each module has ``main() -> str`` returning a markdown section with ratios measured side by side."""
